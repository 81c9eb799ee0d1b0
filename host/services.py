"""Core service refs: what a plugin can put in its ``deps``.

Every core ref is an attribute of :data:`core_services` (the one spelling)::

    from host import core_services

    reg.register_init(deps={"logger": core_services.logger}, init=init)

The services a plugin receives are typed with the contracts below
(``typing.Protocol`` classes named as Backstage's service interfaces, such as
:class:`LoggerService` and :class:`HttpRouterService`): annotate your init
parameters with them, and a replacement factory may return any class that
has these methods. ``mypy --strict`` checks that the host's own
implementations (the classes in the table) satisfy them.

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
``actions_directory``  core.rootActionsDirectory root    :class:`host.actions_directory.ActionsDirectory`
=====================  ========================  ======  ==================================================

Contracts between plugins (the user directory, the signals service) are in
:mod:`host.contracts`; a plugin's own services export their refs from its
package, for example ``plugin_notifications.notification_service_ref``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Protocol, final

from host.features import ServiceRef, create_service_ref

if TYPE_CHECKING:
    from pydantic import BaseModel
    from sqlalchemy.ext.asyncio import AsyncEngine

    from host.actions import Action
    from host.actions_directory import ActionsDirectory
    from host.auth.credentials import Credentials, UserInfo
    from host.auth.tokens import TokenManager
    from host.config import Config
    from host.database import DatabaseManager
    from host.events import BatchHandler, EventHandler, RootEventsService
    from host.logging import Logger

Hook = Any  # a callable taking no arguments, sync or async


class LoggerService(Protocol):
    """``core.logger``: structured log lines tagged with the plugin."""

    def child(self, **fields: Any) -> LoggerService:
        """A logger adding ``fields`` to every line."""
        ...

    def debug(self, message: str, *args: Any, **fields: Any) -> None:
        """Log at debug level (``message % args``, formatted only if the line is written)."""
        ...

    def info(self, message: str, *args: Any, **fields: Any) -> None:
        """Log at info level."""
        ...

    def warning(self, message: str, *args: Any, exc_info: Any = None, **fields: Any) -> None:
        """Log at warning level."""
        ...

    def error(self, message: str, *args: Any, exc_info: Any = None, **fields: Any) -> None:
        """Log at error level (``exc_info`` adds the traceback)."""
        ...


class DatabaseService(Protocol):
    """``core.database``: the plugin's own database."""

    @property
    def is_postgres(self) -> bool:
        """Whether the database is PostgreSQL (else SQLite)."""
        ...

    async def get_engine(self) -> AsyncEngine:
        """The plugin's SQLAlchemy ``AsyncEngine``."""
        ...

    async def migrate(self, location: str | Path, *, version_table: str = ..., target: str = ...) -> None:
        """Apply the Alembic history at ``location``."""
        ...


class HttpRouterService(Protocol):
    """``core.httpRouter``: the plugin's routes under ``/api/<pluginId>``."""

    def add_route(self, path: str, resource: Any, **kwargs: Any) -> None:
        """Route ``path`` to a Falcon resource."""
        ...

    def add_auth_policy(self, path: str, allow: str = ...) -> None:
        """Let requests to ``path`` through without credentials."""
        ...

    def add_openapi(self, spec: dict[str, Any]) -> None:
        """Serve and enforce the plugin's OpenAPI document."""
        ...


class RootHttpRouterService(Protocol):
    """``core.rootHttpRouter``: mount ASGI apps outside ``/api``; itself the host's ASGI app."""

    def use(self, path: str, app: Any) -> None:
        """Serve ``app`` under ``path``."""
        ...

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """Serve one ASGI connection."""
        ...


class AuthService(Protocol):
    """``core.auth``: tokens and credentials."""

    async def authenticate(self, token: str) -> Credentials:
        """Verify ``token``."""
        ...

    def get_own_service_credentials(self) -> Credentials:
        """This plugin's own service credentials."""
        ...

    def get_none_credentials(self) -> Credentials:
        """Credentials of an unauthenticated caller."""
        ...

    async def get_plugin_request_token(self, *, on_behalf_of: Credentials, target_plugin_id: str) -> str:
        """A token for calling plugin ``target_plugin_id``."""
        ...


class HttpAuthService(Protocol):
    """``core.httpAuth``: the credentials of an HTTP request."""

    async def credentials(self, req: Any, allow: Iterable[str] | None = None) -> Credentials:
        """Authenticate ``req``; ``allow`` limits principal types (401 / 403)."""
        ...


class UserInfoService(Protocol):
    """``core.userInfo``: who a user is and what they own."""

    async def get_user_info(self, credentials: Credentials) -> UserInfo:
        """The user's entity ref and ownership refs."""
        ...


class DiscoveryService(Protocol):
    """``core.discovery``: where plugins are served."""

    async def get_base_url(self, plugin_id: str) -> str:
        """The internal base URL of ``plugin_id``."""
        ...

    async def get_external_base_url(self, plugin_id: str) -> str:
        """The external base URL of ``plugin_id``."""
        ...


class SchedulerService(Protocol):
    """``core.scheduler``: recurring tasks, optionally one process at a time."""

    async def schedule_task(
        self,
        *,
        id: str,
        frequency: Any,
        timeout: timedelta,  # noqa: ASYNC109 - each run's limit (Backstage's option), not this call's
        fn: Any,
        initial_delay: timedelta | None = None,
        scope: str = ...,
    ) -> None:
        """Run ``fn`` on ``frequency``."""
        ...

    async def trigger_task(self, id: str) -> None:
        """Run task ``id`` now."""
        ...


class LifecycleService(Protocol):
    """``core.lifecycle``: the plugin's startup and shutdown hooks."""

    def add_startup_hook(self, hook: Hook, logger: Any = None) -> None:
        """Run ``hook`` once the plugin has initialised (a failure fails the plugin)."""
        ...

    def add_shutdown_hook(self, hook: Hook, logger: Any = None) -> None:
        """Run ``hook`` when the backend stops."""
        ...


class RootLifecycleService(Protocol):
    """``core.rootLifecycle``: the backend's startup and shutdown phases."""

    def add_startup_hook(self, hook: Hook, logger: Any = None) -> None:
        """Run ``hook`` once every plugin has started."""
        ...

    def add_before_shutdown_hook(self, hook: Hook, logger: Any = None) -> None:
        """Run ``hook`` when shutdown begins."""
        ...

    def add_shutdown_hook(self, hook: Hook, logger: Any = None) -> None:
        """Run ``hook`` at the end of shutdown."""
        ...


class EventsService(Protocol):
    """``events.service``: publish and subscribe across every process of the backend."""

    async def publish(self, topic: str, payload: Any, metadata: dict[str, Any] | None = None) -> None:
        """Publish ``payload`` on ``topic``."""
        ...

    async def publish_many(self, topic: str, payloads: Sequence[Any]) -> None:
        """Publish several payloads at once."""
        ...

    async def subscribe(
        self, id: str, topics: Sequence[str], on_event: EventHandler, on_batch: BatchHandler | None = None
    ) -> None:
        """Call ``on_event(event)`` for each event on ``topics`` (``on_batch(topic, payloads)`` for whole batches)."""
        ...


class PluginMetadataService(Protocol):
    """``core.pluginMetadata``: which plugin this is."""

    def get_id(self) -> str:
        """The plugin id."""
        ...


class RootInstanceMetadataService(Protocol):
    """``core.rootInstanceMetadata``: which plugins this backend runs."""

    def installed_plugins(self) -> list[dict[str, Any]]:
        """``[{"pluginId": ..., "modules": [{"moduleId": ...}]}]``."""
        ...

    def is_installed(self, plugin_id: str) -> bool:
        """Whether ``plugin_id`` runs in this backend."""
        ...

    async def wait_for_plugin_init(self, plugin_id: str) -> BaseException | None:
        """Wait for ``plugin_id``'s init; return why it failed, or ``None``."""
        ...


class ActionsRegistryService(Protocol):
    """``core.actionsRegistry``: typed actions on the plugin's router."""

    def register(
        self,
        *,
        name: str,
        title: str,
        description: str,
        input_model: type[BaseModel],
        action: Any,
        allow: Sequence[str] | None = None,
        output_model: type[BaseModel] | None = None,
        attributes: dict[str, bool] | None = None,
    ) -> Action:
        """Register an action (``allow`` names who may invoke it)."""
        ...


@final
class CoreServices:
    """The refs of the services every backend provides; use the :data:`core_services` instance.

    Each attribute is a :class:`host.ServiceRef` typed with the service it
    resolves to, so ``deps={"logger": core_services.logger}`` hands the init
    function a :class:`host.logging.Logger`.
    """

    config: Final[ServiceRef[Config]] = create_service_ref("core.rootConfig", "root")
    root_logger: Final[ServiceRef[Logger]] = create_service_ref("core.rootLogger", "root")
    logger: Final[ServiceRef[LoggerService]] = create_service_ref("core.logger", "plugin")
    root_database: Final[ServiceRef[DatabaseManager]] = create_service_ref("core.rootDatabase", "root")
    database: Final[ServiceRef[DatabaseService]] = create_service_ref("core.database", "plugin")
    root_http_router: Final[ServiceRef[RootHttpRouterService]] = create_service_ref("core.rootHttpRouter", "root")
    http_router: Final[ServiceRef[HttpRouterService]] = create_service_ref("core.httpRouter", "plugin")
    root_auth: Final[ServiceRef[TokenManager]] = create_service_ref("core.rootAuth", "root")
    auth: Final[ServiceRef[AuthService]] = create_service_ref("core.auth", "plugin")
    http_auth: Final[ServiceRef[HttpAuthService]] = create_service_ref("core.httpAuth", "plugin")
    user_info: Final[ServiceRef[UserInfoService]] = create_service_ref("core.userInfo", "plugin")
    discovery: Final[ServiceRef[DiscoveryService]] = create_service_ref("core.discovery", "plugin")
    scheduler: Final[ServiceRef[SchedulerService]] = create_service_ref("core.scheduler", "plugin")
    root_lifecycle: Final[ServiceRef[RootLifecycleService]] = create_service_ref("core.rootLifecycle", "root")
    lifecycle: Final[ServiceRef[LifecycleService]] = create_service_ref("core.lifecycle", "plugin")
    root_events: Final[ServiceRef[RootEventsService]] = create_service_ref("core.rootEvents", "root")
    events: Final[ServiceRef[EventsService]] = create_service_ref("events.service", "plugin")
    plugin_metadata: Final[ServiceRef[PluginMetadataService]] = create_service_ref("core.pluginMetadata", "plugin")
    instance_metadata: Final[ServiceRef[RootInstanceMetadataService]] = create_service_ref(
        "core.rootInstanceMetadata", "root"
    )
    actions_registry: Final[ServiceRef[ActionsRegistryService]] = create_service_ref("core.actionsRegistry", "plugin")
    actions_directory: Final[ServiceRef[ActionsDirectory]] = create_service_ref("core.rootActionsDirectory", "root")

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"core_services.{name} is read-only")


#: The core service refs: ``core_services.logger``, ``core_services.http_router``, …
core_services: Final = CoreServices()


if TYPE_CHECKING:
    # Static proof (checked by mypy --strict) that the host's implementations satisfy the contracts.
    from host.actions import ActionsRegistry
    from host.auth import service as _auth
    from host.backend import InstanceMetadata
    from host.database import PluginDatabase
    from host.discovery import Discovery
    from host.events import EventsService as _EventsService
    from host.http import PluginHttpRouter, RootHttpRouter
    from host.lifecycle import PluginLifecycle, RootLifecycle
    from host.registry import PluginMetadata
    from host.scheduler import PluginScheduler

    def _implementations_satisfy_the_contracts(
        logger: Logger,
        database: PluginDatabase,
        router: PluginHttpRouter,
        root_router: RootHttpRouter,
        auth: _auth.AuthService,
        http_auth: _auth.HttpAuthService,
        user_info: _auth.UserInfoService,
        discovery: Discovery,
        scheduler: PluginScheduler,
        lifecycle: PluginLifecycle,
        root_lifecycle: RootLifecycle,
        events: _EventsService,
        metadata: PluginMetadata,
        instance: InstanceMetadata,
        actions: ActionsRegistry,
    ) -> None:
        contracts: tuple[
            LoggerService,
            DatabaseService,
            HttpRouterService,
            RootHttpRouterService,
            AuthService,
            HttpAuthService,
            UserInfoService,
            DiscoveryService,
            SchedulerService,
            LifecycleService,
            RootLifecycleService,
            EventsService,
            PluginMetadataService,
            RootInstanceMetadataService,
            ActionsRegistryService,
        ] = (
            logger,
            database,
            router,
            root_router,
            auth,
            http_auth,
            user_info,
            discovery,
            scheduler,
            lifecycle,
            root_lifecycle,
            events,
            metadata,
            instance,
            actions,
        )
        del contracts
