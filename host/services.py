"""Core service refs: what a plugin can put in its ``deps``.

=====================  =====================  ======  ==================================================
attribute              id                     scope   what you get
=====================  =====================  ======  ==================================================
``config``             core.rootConfig        root    :class:`host.config.Config`
``root_logger``        core.rootLogger        root    :class:`host.logging.Logger`
``logger``             core.logger            plugin  :class:`host.logging.Logger` tagged with the plugin
``root_database``      core.rootDatabase      root    :class:`host.database.DatabaseManager`
``database``           core.database          plugin  :class:`host.database.PluginDatabase`
``root_http_router``   core.rootHttpRouter    root    :class:`host.http.RootHttpRouter`
``http_router``        core.httpRouter        plugin  :class:`host.http.PluginHttpRouter` at ``/api/<id>``
``auth``               core.auth              plugin  :class:`host.auth.service.AuthService`
``http_auth``          core.httpAuth          plugin  :class:`host.auth.service.HttpAuthService`
``user_info``          core.userInfo          plugin  :class:`host.auth.service.UserInfoService`
``discovery``          core.discovery         plugin  :class:`host.discovery.Discovery`
``scheduler``          core.scheduler         plugin  :class:`host.scheduler.PluginScheduler`
``root_lifecycle``     core.rootLifecycle     root    :class:`host.lifecycle.RootLifecycle`
``lifecycle``          core.lifecycle         plugin  :class:`host.lifecycle.PluginLifecycle`
``events``             events.service         plugin  :class:`host.events.EventsService`
``plugin_metadata``    core.pluginMetadata    plugin  :class:`host.backend.PluginMetadata`
``instance_metadata``  core.rootInstanceMetadata root :class:`host.backend.InstanceMetadata`
``actions_registry``   core.actionsRegistry   plugin  :class:`host.actions.ActionsRegistry`
=====================  =====================  ======  ==================================================

Plugin services (notifications, signals, catalog) export their own refs from
their packages, for example ``plugin_catalog.catalog_service_ref``.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from host.features import ServiceRef, create_service_ref

config: ServiceRef[Any] = create_service_ref("core.rootConfig", "root")
root_logger: ServiceRef[Any] = create_service_ref("core.rootLogger", "root")
logger: ServiceRef[Any] = create_service_ref("core.logger", "plugin")
root_database: ServiceRef[Any] = create_service_ref("core.rootDatabase", "root")
database: ServiceRef[Any] = create_service_ref("core.database", "plugin")
root_http_router: ServiceRef[Any] = create_service_ref("core.rootHttpRouter", "root")
http_router: ServiceRef[Any] = create_service_ref("core.httpRouter", "plugin")
root_auth: ServiceRef[Any] = create_service_ref("core.rootAuth", "root")
auth: ServiceRef[Any] = create_service_ref("core.auth", "plugin")
http_auth: ServiceRef[Any] = create_service_ref("core.httpAuth", "plugin")
user_info: ServiceRef[Any] = create_service_ref("core.userInfo", "plugin")
discovery: ServiceRef[Any] = create_service_ref("core.discovery", "plugin")
root_scheduler: ServiceRef[Any] = create_service_ref("core.rootScheduler", "root")
scheduler: ServiceRef[Any] = create_service_ref("core.scheduler", "plugin")
root_lifecycle: ServiceRef[Any] = create_service_ref("core.rootLifecycle", "root")
lifecycle: ServiceRef[Any] = create_service_ref("core.lifecycle", "plugin")
root_events: ServiceRef[Any] = create_service_ref("core.rootEvents", "root")
events: ServiceRef[Any] = create_service_ref("events.service", "plugin")
plugin_metadata: ServiceRef[Any] = create_service_ref("core.pluginMetadata", "plugin")
instance_metadata: ServiceRef[Any] = create_service_ref("core.rootInstanceMetadata", "root")
actions_registry: ServiceRef[Any] = create_service_ref("core.actionsRegistry", "plugin")

#: Namespace form, so plugins can write ``core_services.logger``.
core_services = SimpleNamespace(
    config=config,
    root_config=config,
    root_logger=root_logger,
    logger=logger,
    root_database=root_database,
    database=database,
    root_http_router=root_http_router,
    http_router=http_router,
    root_auth=root_auth,
    auth=auth,
    http_auth=http_auth,
    user_info=user_info,
    discovery=discovery,
    root_scheduler=root_scheduler,
    scheduler=scheduler,
    root_lifecycle=root_lifecycle,
    lifecycle=lifecycle,
    root_events=root_events,
    events=events,
    plugin_metadata=plugin_metadata,
    instance_metadata=instance_metadata,
    actions_registry=actions_registry,
)
