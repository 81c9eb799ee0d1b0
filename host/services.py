"""Core service refs: what a plugin can put in its ``deps``.

Every core ref is an attribute of :data:`core_services` (the one spelling)::

    from host import core_services

    reg.register_init(deps={"logger": core_services.logger}, init=init)

=====================  ========================  ======  ==================================================
attribute              id                        scope   what you get
=====================  ========================  ======  ==================================================
``config``             core.rootConfig           root    :class:`host.config.Config`
``root_logger``        core.rootLogger           root    :class:`host.logging.Logger`
``logger``             core.logger               plugin  :class:`host.logging.Logger` tagged with the plugin
``root_database``      core.rootDatabase         root    :class:`host.database.DatabaseManager`
``database``           core.database             plugin  :class:`host.database.PluginDatabase`
``root_http_router``   core.rootHttpRouter       root    :class:`host.http.RootHttpRouter`
``http_router``        core.httpRouter           plugin  :class:`host.http.PluginHttpRouter` at ``/api/<id>``
``root_auth``          core.rootAuth             root    :class:`host.auth.tokens.TokenManager`
``auth``               core.auth                 plugin  :class:`host.auth.service.AuthService`
``http_auth``          core.httpAuth             plugin  :class:`host.auth.service.HttpAuthService`
``user_info``          core.userInfo             plugin  :class:`host.auth.service.UserInfoService`
``discovery``          core.discovery            plugin  :class:`host.discovery.Discovery`
``scheduler``          core.scheduler            plugin  :class:`host.scheduler.PluginScheduler`
``root_lifecycle``     core.rootLifecycle        root    :class:`host.lifecycle.RootLifecycle`
``lifecycle``          core.lifecycle            plugin  :class:`host.lifecycle.PluginLifecycle`
``root_events``        core.rootEvents           root    :class:`host.events.RootEventsService`
``events``             events.service            plugin  :class:`host.events.EventsService`
``plugin_metadata``    core.pluginMetadata       plugin  :class:`host.registry.PluginMetadata`
``instance_metadata``  core.rootInstanceMetadata root    :class:`host.backend.InstanceMetadata`
``actions_registry``   core.actionsRegistry      plugin  :class:`host.actions.ActionsRegistry`
=====================  ========================  ======  ==================================================

Plugin services (notifications, signals, catalog) export their own refs from
their packages, for example ``plugin_catalog.catalog_service_ref``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final, final

from host.features import ServiceRef, create_service_ref

if TYPE_CHECKING:
    from host.actions import ActionsRegistry
    from host.auth.service import AuthService, HttpAuthService, UserInfoService
    from host.auth.tokens import TokenManager
    from host.backend import InstanceMetadata
    from host.config import Config
    from host.database import DatabaseManager, PluginDatabase
    from host.discovery import Discovery
    from host.events import EventsService, RootEventsService
    from host.http import PluginHttpRouter, RootHttpRouter
    from host.lifecycle import PluginLifecycle, RootLifecycle
    from host.logging import Logger
    from host.registry import PluginMetadata
    from host.scheduler import PluginScheduler


@final
class CoreServices:
    """The refs of the services every backend provides; use the :data:`core_services` instance.

    Each attribute is a :class:`host.ServiceRef` typed with the service it
    resolves to, so ``deps={"logger": core_services.logger}`` hands the init
    function a :class:`host.logging.Logger`.
    """

    config: Final[ServiceRef[Config]] = create_service_ref("core.rootConfig", "root")
    root_logger: Final[ServiceRef[Logger]] = create_service_ref("core.rootLogger", "root")
    logger: Final[ServiceRef[Logger]] = create_service_ref("core.logger", "plugin")
    root_database: Final[ServiceRef[DatabaseManager]] = create_service_ref("core.rootDatabase", "root")
    database: Final[ServiceRef[PluginDatabase]] = create_service_ref("core.database", "plugin")
    root_http_router: Final[ServiceRef[RootHttpRouter]] = create_service_ref("core.rootHttpRouter", "root")
    http_router: Final[ServiceRef[PluginHttpRouter]] = create_service_ref("core.httpRouter", "plugin")
    root_auth: Final[ServiceRef[TokenManager]] = create_service_ref("core.rootAuth", "root")
    auth: Final[ServiceRef[AuthService]] = create_service_ref("core.auth", "plugin")
    http_auth: Final[ServiceRef[HttpAuthService]] = create_service_ref("core.httpAuth", "plugin")
    user_info: Final[ServiceRef[UserInfoService]] = create_service_ref("core.userInfo", "plugin")
    discovery: Final[ServiceRef[Discovery]] = create_service_ref("core.discovery", "plugin")
    scheduler: Final[ServiceRef[PluginScheduler]] = create_service_ref("core.scheduler", "plugin")
    root_lifecycle: Final[ServiceRef[RootLifecycle]] = create_service_ref("core.rootLifecycle", "root")
    lifecycle: Final[ServiceRef[PluginLifecycle]] = create_service_ref("core.lifecycle", "plugin")
    root_events: Final[ServiceRef[RootEventsService]] = create_service_ref("core.rootEvents", "root")
    events: Final[ServiceRef[EventsService]] = create_service_ref("events.service", "plugin")
    plugin_metadata: Final[ServiceRef[PluginMetadata]] = create_service_ref("core.pluginMetadata", "plugin")
    instance_metadata: Final[ServiceRef[InstanceMetadata]] = create_service_ref(
        "core.rootInstanceMetadata", "root")
    actions_registry: Final[ServiceRef[ActionsRegistry]] = create_service_ref("core.actionsRegistry", "plugin")

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"core_services.{name} is read-only")


#: The core service refs: ``core_services.logger``, ``core_services.http_router``, …
core_services: Final = CoreServices()
