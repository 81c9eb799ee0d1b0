"""Greenroom host: the backend system that plugins run on.

The public surface for plugin authors::

    from host import (
        core_services, create_backend_plugin, create_backend_module,
        create_service_ref, create_service_factory, create_extension_point,
    )
"""

from host.backend import Backend, BackendStartupError
from host.features import (
    BackendModule,
    BackendPlugin,
    ExtensionPoint,
    ServiceFactory,
    ServiceRef,
    create_backend_module,
    create_backend_plugin,
    create_extension_point,
    create_service_factory,
    create_service_ref,
)
from host.services import CoreServices, core_services


def create_backend(*args, **kwargs):  # type: ignore[no-untyped-def]
    """Create a backend with the default services (see :func:`host.defaults.create_backend`)."""
    from host.defaults import create_backend as _create_backend

    return _create_backend(*args, **kwargs)


__all__ = [
    "Backend",
    "BackendModule",
    "BackendPlugin",
    "BackendStartupError",
    "CoreServices",
    "ExtensionPoint",
    "ServiceFactory",
    "ServiceRef",
    "core_services",
    "create_backend",
    "create_backend_module",
    "create_backend_plugin",
    "create_extension_point",
    "create_service_factory",
    "create_service_ref",
]
