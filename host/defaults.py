"""Default factories for every core service, and :func:`create_backend`."""

from __future__ import annotations

import asyncio
from typing import Any

from host.actions import ActionsRegistry
from host.actions_directory import ActionsDirectory
from host.auth.service import AuthService, HttpAuthService, UserInfoService
from host.auth.tokens import TokenManager
from host.backend import Backend
from host.config import Config
from host.connection_errors import CONNECTION_ERRORS
from host.database import DatabaseManager
from host.database_health import DEFAULT_INTERVAL_SECONDS, DEFAULT_TIMEOUT_SECONDS, DatabaseProbe
from host.discovery import Discovery
from host.environment import log_format
from host.event_buses import bus_failure_for, check_bus_for_workers, create_bus
from host.events import EventsService, RootEventsService
from host.features import ServiceFactory, create_service_factory
from host.http import PluginHttpRouter, RootHttpRouter
from host.lifecycle import PluginLifecycle, RootLifecycle
from host.logging import Logger, create_root_logger
from host.scheduler import PluginScheduler
from host.server_limits import ServerLimits
from host.services import core_services


def _root_logger(config: Config) -> Logger:
    return create_root_logger(
        config.get_optional_string("backend.logger.level"), log_format(config), config.secret_values()
    )


def _root_http_router(
    config: Config, logger: Logger, lifecycle: RootLifecycle, databases: DatabaseManager
) -> RootHttpRouter:
    router = RootHttpRouter(logger, ServerLimits.from_config(config))
    _probe_databases(router, config, logger, lifecycle, databases)

    def mark_up() -> None:
        router.health.state = "up"

    def mark_stopping() -> None:
        router.health.state = "stopping"

    lifecycle.add_startup_hook(mark_up)
    lifecycle.add_before_shutdown_hook(mark_stopping)
    # As Backstage: keep serving (readiness already 503) for this long before the listener closes,
    # so load balancers take the instance out of rotation first.
    delay = config.get_optional_duration("backend.lifecycle.serverShutdownDelay")
    if delay is not None and delay.total_seconds() > 0:
        lifecycle.add_before_shutdown_hook(lambda: asyncio.sleep(delay.total_seconds()))
    return router


def _probe_databases(
    router: RootHttpRouter, config: Config, logger: Logger, lifecycle: RootLifecycle, databases: DatabaseManager
) -> None:
    """Readiness fails while the databases cannot be written (see :mod:`host.database_health`)."""
    interval = config.get_optional_duration("backend.health.databaseProbeInterval")
    timeout = config.get_optional_duration("backend.health.databaseProbeTimeout")
    probe = DatabaseProbe(
        databases,
        logger.child(component="database-probe"),
        interval.total_seconds() if interval else DEFAULT_INTERVAL_SECONDS,
        timeout.total_seconds() if timeout else DEFAULT_TIMEOUT_SECONDS,
    )
    router.health.database = probe
    lifecycle.add_startup_hook(probe.start)
    lifecycle.add_before_shutdown_hook(probe.stop)


def _root_database(config: Config, lifecycle: RootLifecycle) -> DatabaseManager:
    manager = DatabaseManager(config)
    lifecycle.add_shutdown_hook(manager.dispose)
    return manager


async def _root_events(
    config: Config, logger: Logger, databases: DatabaseManager, lifecycle: RootLifecycle
) -> RootEventsService:
    check_bus_for_workers(config, int(config.get_optional_number("backend.workers") or 1))
    bus = create_bus(config, databases, logger.child(component="events-bus"))
    root = RootEventsService(bus, logger.child(component="events"))
    # What starting the bus raises when its server cannot be reached (a bus class may add its own).
    unreachable = (*CONNECTION_ERRORS, *getattr(bus, "connection_errors", ()))
    try:
        await root.start()
    except unreachable as error:
        raise bus_failure_for(config, error) from error
    lifecycle.add_shutdown_hook(root.stop)
    return root


def _scheduler(
    plugin_metadata: Any, database: Any, logger: Logger, config: Config, root_lifecycle: RootLifecycle
) -> PluginScheduler:
    period = config.get_optional_duration("backend.scheduler.checkPeriod")
    scheduler = PluginScheduler(
        plugin_metadata.get_id(), database, logger, check_period=period.total_seconds() if period else 5.0
    )
    root_lifecycle.add_before_shutdown_hook(scheduler.close)
    return scheduler


def _http_router(
    plugin_metadata: Any,
    config: Config,
    logger: Logger,
    http_auth: HttpAuthService,
    lifecycle: PluginLifecycle,
    root: RootHttpRouter,
) -> PluginHttpRouter:
    return PluginHttpRouter(
        plugin_metadata.get_id(), config=config, logger=logger, http_auth=http_auth, lifecycle=lifecycle, root=root
    )


def default_service_factories() -> list[ServiceFactory]:
    """Factories for every core service except ``config`` (given to :func:`create_backend`)."""
    s = core_services
    return [
        create_service_factory(s.root_logger, _root_logger, deps={"config": s.config}),
        create_service_factory(
            s.logger,
            lambda root, plugin_metadata: root.child(plugin=plugin_metadata.get_id()),
            deps={"root": s.root_logger, "plugin_metadata": s.plugin_metadata},
        ),
        create_service_factory(s.root_lifecycle, lambda logger: RootLifecycle(logger), deps={"logger": s.root_logger}),
        create_service_factory(
            s.lifecycle,
            lambda plugin_metadata, logger: PluginLifecycle(plugin_metadata.get_id(), logger),
            deps={"plugin_metadata": s.plugin_metadata, "logger": s.logger},
        ),
        create_service_factory(
            s.root_database, _root_database, deps={"config": s.config, "lifecycle": s.root_lifecycle}
        ),
        create_service_factory(
            s.database,
            lambda manager, plugin_metadata: manager.for_plugin(plugin_metadata.get_id()),
            deps={"manager": s.root_database, "plugin_metadata": s.plugin_metadata},
        ),
        create_service_factory(
            s.root_http_router,
            _root_http_router,
            deps={
                "config": s.config,
                "logger": s.root_logger,
                "lifecycle": s.root_lifecycle,
                "databases": s.root_database,
            },
        ),
        create_service_factory(
            s.http_router,
            _http_router,
            initialization="always",
            deps={
                "plugin_metadata": s.plugin_metadata,
                "config": s.config,
                "logger": s.logger,
                "http_auth": s.http_auth,
                "lifecycle": s.lifecycle,
                "root": s.root_http_router,
            },
        ),
        create_service_factory(
            s.root_auth,
            _token_manager,
            deps={
                "config": s.config,
                "databases": s.root_database,
                "logger": s.root_logger,
                "lifecycle": s.root_lifecycle,
            },
        ),
        create_service_factory(
            s.auth,
            lambda plugin_metadata, tokens: AuthService(plugin_metadata.get_id(), tokens),
            deps={"plugin_metadata": s.plugin_metadata, "tokens": s.root_auth},
        ),
        create_service_factory(s.http_auth, lambda auth: HttpAuthService(auth), deps={"auth": s.auth}),
        create_service_factory(s.user_info, lambda: UserInfoService()),
        create_service_factory(s.discovery, lambda config: Discovery(config), deps={"config": s.config}),
        create_service_factory(
            s.scheduler,
            _scheduler,
            deps={
                "plugin_metadata": s.plugin_metadata,
                "database": s.database,
                "logger": s.logger,
                "config": s.config,
                "root_lifecycle": s.root_lifecycle,
            },
        ),
        create_service_factory(
            s.root_events,
            _root_events,
            deps={
                "config": s.config,
                "logger": s.root_logger,
                "databases": s.root_database,
                "lifecycle": s.root_lifecycle,
            },
        ),
        create_service_factory(
            s.events,
            lambda root, plugin_metadata: EventsService(root, plugin_metadata.get_id()),
            deps={"root": s.root_events, "plugin_metadata": s.plugin_metadata},
        ),
        create_service_factory(
            s.actions_registry,
            _actions_registry,
            deps={
                "plugin_metadata": s.plugin_metadata,
                "router": s.http_router,
                "http_auth": s.http_auth,
                "logger": s.logger,
                "directory": s.actions_directory,
            },
        ),
        create_service_factory(s.actions_directory, lambda: ActionsDirectory()),
    ]


def _token_manager(
    config: Config, databases: DatabaseManager, logger: Logger, lifecycle: RootLifecycle
) -> TokenManager:
    """The token manager; the sign-in plugin hands it its key database during startup."""
    tokens = TokenManager(config, databases, logger)
    lifecycle.add_startup_hook(tokens.backend_started)
    return tokens


def _actions_registry(
    plugin_metadata: Any, router: Any, http_auth: Any, logger: Any, directory: ActionsDirectory
) -> ActionsRegistry:
    """A plugin's actions registry, recorded in the root actions directory."""
    registry = ActionsRegistry(plugin_metadata.get_id(), router, http_auth, logger)
    directory.add(registry)
    return registry


def create_backend(config: Config | None = None, *, discover: bool = True) -> Backend:
    """Create a backend with every default service and, unless ``discover=False`` or
    ``backend.features.discovery: false``, every feature installed through entry points."""
    from host.backend import discover_features

    config = config or Config.load()
    backend = Backend(default_service_factories())
    backend.add(create_service_factory(core_services.config, lambda: config))
    if discover:
        for feature in discover_features(config):
            backend.add(feature)
    return backend
