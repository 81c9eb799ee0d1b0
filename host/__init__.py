"""Greenroom host: the backend system that plugins run on.

Everything a plugin author needs is importable from ``host`` and listed in
:data:`__all__`::

    from host import (
        core_services, create_backend_plugin, create_backend_module,
        create_service_ref, create_service_factory, create_extension_point,
        Config, InputError, NotFoundError, Credentials, Event, json_body,
    )

The contracts between plugins (:mod:`host.contracts`: the user directory and
the signals service) and entity-ref parsing (:mod:`host.entity_refs`) are here
too. A plugin's own services export their refs and markers from its package
(``plugin_notifications.notification_service_ref`` and ``hookimpl``,
``plugin_catalog.catalog_service_ref``): the host never imports a plugin.

Only the plugin API (:mod:`host.features`, :mod:`host.services`) is imported
eagerly; every other name is loaded on first use, so ``import host`` stays
light (the gunicorn master imports it).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from host.features import (
    BackendModule,
    BackendPlugin,
    ExtensionPoint,
    Registrar,
    ServiceFactory,
    ServiceRef,
    StartupError,
    create_backend_module,
    create_backend_plugin,
    create_extension_point,
    create_service_factory,
    create_service_ref,
)
from host.services import (
    ActionsRegistryService,
    AuthService,
    CoreServices,
    DatabaseService,
    DiscoveryService,
    EventsService,
    HttpAuthService,
    HttpRouterService,
    LifecycleService,
    LoggerService,
    PluginMetadataService,
    RootHttpRouterService,
    RootInstanceMetadataService,
    RootLifecycleService,
    SchedulerService,
    UserInfoService,
    core_services,
)

if TYPE_CHECKING:
    from host.actions import Action
    from host.actions_directory import ActionsDirectory
    from host.aio import await_me_maybe, cancel_and_wait
    from host.auth.credentials import Credentials, NonePrincipal, Principal, ServicePrincipal, UserInfo, UserPrincipal
    from host.auth.hookspecs import auth_hookimpl
    from host.auth.plugin import sign_in_resolver_extension_point
    from host.backend import Backend, BackendStartupError
    from host.cli import run_headless
    from host.config import Config, ConfigError, parse_duration
    from host.config_schema import ConfigSection, Duration, PositiveDuration, by_kind, read_section
    from host.contracts import (
        SIGNALS_TOPIC,
        SignalsService,
        UserDirectory,
        signal_payload,
        signals_service_ref,
        user_directory_ref,
    )
    from host.database import DatabaseManager
    from host.entity_refs import (
        DEFAULT_NAMESPACE,
        entity_ref_of,
        normalize_entity_ref,
        parse_entity_ref,
        stringify_entity_ref,
    )
    from host.environment import is_production
    from host.errors import (
        AuthenticationError,
        BackstageError,
        ConflictError,
        ForwardedError,
        InputError,
        NotAllowedError,
        NotFoundError,
        ServiceUnavailableError,
        is_database_unavailable,
    )
    from host.event_buses import bus_kind
    from host.events import Event
    from host.hooks import register_checked
    from host.limits import json_depth_exceeds
    from host.logging import Logger
    from host.openapi import json_body, openapi_document, path_param, pydantic_schemas, query_param, ref, responses
    from host.provided import Provided, create_provided_ref
    from host.scheduler import Schedule
    from host.worker import PING_INTERVAL_SECONDS, PING_TIMEOUT_SECONDS

#: Lazily imported names: name -> defining module.
_LAZY = {
    "Action": "host.actions",
    "ActionsDirectory": "host.actions_directory",
    **dict.fromkeys(("await_me_maybe", "cancel_and_wait"), "host.aio"),
    **dict.fromkeys(
        ("Credentials", "NonePrincipal", "Principal", "ServicePrincipal", "UserInfo", "UserPrincipal"),
        "host.auth.credentials",
    ),
    "sign_in_resolver_extension_point": "host.auth.plugin",
    "auth_hookimpl": "host.auth.hookspecs",
    **dict.fromkeys(("Backend", "BackendStartupError"), "host.backend"),
    "run_headless": "host.cli",
    **dict.fromkeys(("Config", "ConfigError", "parse_duration"), "host.config"),
    **dict.fromkeys(("ConfigSection", "Duration", "PositiveDuration", "by_kind", "read_section"), "host.config_schema"),
    **dict.fromkeys(
        (
            "SIGNALS_TOPIC",
            "SignalsService",
            "UserDirectory",
            "signal_payload",
            "signals_service_ref",
            "user_directory_ref",
        ),
        "host.contracts",
    ),
    "DatabaseManager": "host.database",
    **dict.fromkeys(
        ("DEFAULT_NAMESPACE", "entity_ref_of", "normalize_entity_ref", "parse_entity_ref", "stringify_entity_ref"),
        "host.entity_refs",
    ),
    "is_production": "host.environment",
    **dict.fromkeys(
        (
            "AuthenticationError",
            "BackstageError",
            "ConflictError",
            "ForwardedError",
            "InputError",
            "NotAllowedError",
            "NotFoundError",
            "ServiceUnavailableError",
            "is_database_unavailable",
        ),
        "host.errors",
    ),
    "bus_kind": "host.event_buses",
    "Event": "host.events",
    "register_checked": "host.hooks",
    "json_depth_exceeds": "host.limits",
    "Logger": "host.logging",
    **dict.fromkeys(
        ("json_body", "openapi_document", "path_param", "pydantic_schemas", "query_param", "ref", "responses"),
        "host.openapi",
    ),
    **dict.fromkeys(("Provided", "create_provided_ref"), "host.provided"),
    "Schedule": "host.scheduler",
    **dict.fromkeys(("PING_INTERVAL_SECONDS", "PING_TIMEOUT_SECONDS"), "host.worker"),
}


def __getattr__(name: str) -> Any:
    """Import a public name on first use (PEP 562)."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'host' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


def create_backend(*args: Any, **kwargs: Any) -> Backend:
    """Create a backend with the default services (see :func:`host.defaults.create_backend`)."""
    from host.defaults import create_backend as _create_backend

    return _create_backend(*args, **kwargs)


__all__ = [
    # plugin API
    "BackendModule",
    "BackendPlugin",
    "CoreServices",
    "ExtensionPoint",
    "Provided",
    "Registrar",
    "ServiceFactory",
    "ServiceRef",
    "core_services",
    "create_backend_module",
    "create_backend_plugin",
    "create_extension_point",
    "create_provided_ref",
    "create_service_factory",
    "create_service_ref",
    # the contracts of the core services (typing.Protocol)
    "ActionsRegistryService",
    "AuthService",
    "DatabaseService",
    "DiscoveryService",
    "EventsService",
    "HttpAuthService",
    "HttpRouterService",
    "LifecycleService",
    "LoggerService",
    "PluginMetadataService",
    "RootHttpRouterService",
    "RootInstanceMetadataService",
    "RootLifecycleService",
    "SchedulerService",
    "UserInfoService",
    # contracts between plugins (host.contracts)
    "SignalsService",
    "UserDirectory",
    "signals_service_ref",
    "user_directory_ref",
    "SIGNALS_TOPIC",
    "signal_payload",
    # entity refs
    "DEFAULT_NAMESPACE",
    "entity_ref_of",
    "normalize_entity_ref",
    "parse_entity_ref",
    "stringify_entity_ref",
    # the backend itself
    "Backend",
    "BackendStartupError",
    "StartupError",
    "create_backend",
    "run_headless",
    # config
    "Config",
    "ConfigError",
    "parse_duration",
    "is_production",
    # config schemas (pydantic models of a plugin's config sections)
    "ConfigSection",
    "Duration",
    "PositiveDuration",
    "by_kind",
    "read_section",
    # errors (Backstage's error names and HTTP statuses)
    "AuthenticationError",
    "BackstageError",
    "ConflictError",
    "ForwardedError",
    "InputError",
    "NotAllowedError",
    "NotFoundError",
    "ServiceUnavailableError",
    "is_database_unavailable",
    # credentials and auth
    "Credentials",
    "NonePrincipal",
    "Principal",
    "ServicePrincipal",
    "UserInfo",
    "UserPrincipal",
    "auth_hookimpl",
    "sign_in_resolver_extension_point",
    # values the services hand out
    "Action",
    "Event",
    "Schedule",
    # OpenAPI helpers
    "json_body",
    "openapi_document",
    "path_param",
    "pydantic_schemas",
    "query_param",
    "ref",
    "responses",
    # for the first-party plugins that extend the host's own machinery
    "ActionsDirectory",
    "DatabaseManager",
    "Logger",
    "PING_INTERVAL_SECONDS",
    "PING_TIMEOUT_SECONDS",
    "bus_kind",
    "json_depth_exceeds",
    # pluggy: register a plugin whose hook implementations must all match a spec
    "register_checked",
    # asyncio helpers
    "await_me_maybe",
    "cancel_and_wait",
]
