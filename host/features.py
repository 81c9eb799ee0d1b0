"""The plugin API: service refs, service factories, extension points, plugins and modules.

A *feature* is anything :meth:`host.backend.Backend.add` accepts: a
:class:`ServiceFactory`, a :class:`BackendPlugin` or a :class:`BackendModule`.

Example::

    from host import core_services, create_backend_plugin

    def register(reg):
        async def init(logger, router):
            router.add_route("/hello", Hello())
            logger.info("hello plugin ready")

        reg.register_init(
            deps={"logger": core_services.logger, "router": core_services.http_router},
            init=init,
        )

    hello_plugin = create_backend_plugin("hello", register)
"""

from __future__ import annotations

import inspect
import re
import warnings
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar

T = TypeVar("T")
Scope = Literal["plugin", "root"]

#: What a plugin or module declares with ``config_schema=``: dotted config keys it owns
#: (``"notifications"``, ``"notifications.processors.email"``) mapped to the pydantic model
#: of that section. ``greenroom config check`` validates the merged config against them.
ConfigSchema = Mapping[str, type[Any]]

ID_PATTERN = re.compile(r"^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$", re.IGNORECASE)
ID_PATTERN_OLD = re.compile(r"^[a-z][a-z0-9]*(?:[-_][a-z0-9]+)*$", re.IGNORECASE)


class StartupError(Exception):
    """The backend's features do not fit together: a duplicate id, a missing dependency,
    a dependency cycle, or ``deps`` that do not match an init function's parameters.

    Raised by :meth:`host.backend.Backend.start` before any plugin's init runs.
    """

    name = "StartupError"


class ServiceRef(Generic[T]):
    """A typed key for a service.

    ``scope="root"`` services exist once per backend; ``scope="plugin"``
    services are created once for each plugin that depends on them.
    ``default_factory`` is a callable returning a :class:`ServiceFactory`,
    used only when no factory for this id was added to the backend.
    """

    __slots__ = ("id", "scope", "multiton", "default_factory")

    def __init__(
        self,
        id: str,
        scope: Scope = "plugin",
        *,
        multiton: bool = False,
        default_factory: Callable[[ServiceRef[T]], ServiceFactory] | None = None,
    ) -> None:
        if scope not in ("plugin", "root"):
            raise ValueError(f"Invalid service scope '{scope}' for {id}, expected 'plugin' or 'root'")
        self.id = id
        self.scope: Scope = scope
        self.multiton = multiton
        self.default_factory = default_factory

    def __repr__(self) -> str:
        return f"serviceRef{{{self.id}}}"

    __str__ = __repr__


def create_service_ref(
    id: str,
    scope: Scope = "plugin",
    *,
    multiton: bool = False,
    default_factory: Callable[[ServiceRef[Any]], ServiceFactory] | None = None,
) -> ServiceRef[Any]:
    """Create a :class:`ServiceRef` (Backstage's ``createServiceRef``)."""
    return ServiceRef(id, scope, multiton=multiton, default_factory=default_factory)


@dataclass(eq=False)
class ServiceFactory:
    """How to build one service.

    ``factory`` receives the resolved ``deps`` as keyword arguments. For
    plugin-scoped services an optional ``create_root_context`` runs once (with
    root-scoped deps only) and its result is passed to ``factory`` as the
    first positional argument. Either may be sync or async.
    """

    service: ServiceRef[Any]
    factory: Callable[..., Any]
    deps: Mapping[str, ServiceRef[Any]] = field(default_factory=dict)
    create_root_context: Callable[..., Any] | None = None
    initialization: Literal["always", "lazy"] | None = None
    feature_type: str = field(default="service", init=False)

    def __repr__(self) -> str:
        return f"ServiceFactory({self.service.id})"


def create_service_factory(
    service: ServiceRef[T],
    factory: Callable[..., T | Awaitable[T]],
    *,
    deps: Mapping[str, ServiceRef[Any]] | None = None,
    create_root_context: Callable[..., Any] | None = None,
    initialization: Literal["always", "lazy"] | None = None,
) -> ServiceFactory:
    """Create a :class:`ServiceFactory` (Backstage's ``createServiceFactory``).

    ``factory`` must build what ``service`` is typed with (``ServiceRef[T]``),
    which a type checker verifies.
    """
    deps = dict(deps or {})
    if service.scope == "root":
        for ref in deps.values():
            if ref.scope != "root":
                raise ValueError(
                    f"Failed to instantiate 'root' scoped service '{service.id}' because it depends on "
                    f"'{ref.scope}' scoped service '{ref.id}'."
                )
    return ServiceFactory(
        service=service,
        factory=factory,
        deps=deps,
        create_root_context=create_root_context,
        initialization=initialization,
    )


class ExtensionPoint(Generic[T]):
    """A typed key for an extension point: registered by a plugin, used by its modules."""

    __slots__ = ("id",)

    def __init__(self, id: str) -> None:
        self.id = id

    def __repr__(self) -> str:
        return f"extensionPoint{{{self.id}}}"

    __str__ = __repr__


def create_extension_point(id: str) -> ExtensionPoint[Any]:
    """Create an :class:`ExtensionPoint` (Backstage's ``createExtensionPoint``)."""
    return ExtensionPoint(id)


Dep = ServiceRef[Any] | ExtensionPoint[Any]
InitFn = Callable[..., Awaitable[None] | None]


@dataclass
class InitRegistration:
    """What ``register_init`` recorded: the dependencies and the init function."""

    deps: dict[str, Dep]
    func: InitFn


@dataclass
class Registration:
    """The result of running a plugin's or module's ``register`` callback."""

    kind: Literal["plugin", "module"]
    plugin_id: str
    module_id: str | None
    extension_points: list[tuple[ExtensionPoint[Any], Any]]
    init: InitRegistration


class Registrar:
    """The object handed to ``register``: call :meth:`register_init` exactly once."""

    def __init__(self, owner: str) -> None:
        #: Who registers, for messages: ``plugin 'alpha'`` or ``module 'm1' for plugin 'alpha'``.
        self._owner = owner
        self.extension_points: list[tuple[ExtensionPoint[Any], Any]] = []
        self.init: InitRegistration | None = None

    def register_extension_point(self, extension_point: ExtensionPoint[Any], implementation: Any) -> None:
        """Offer ``implementation`` to this plugin's modules under ``extension_point``."""
        if self.init is not None:
            raise StartupError(f"register_extension_point called after register_init by {self._owner}")
        self.extension_points.append((extension_point, implementation))

    def register_init(self, *, deps: Mapping[str, Dep], init: InitFn) -> None:
        """Declare the dependencies and the ``init`` function (called with deps as keyword arguments).

        Raises :class:`StartupError` naming the owner and the key when a
        ``deps`` key is not a parameter of ``init``, or a parameter of
        ``init`` without a default has no ``deps`` key.
        """
        if self.init is not None:
            raise StartupError(f"register_init must only be called once, by {self._owner}")
        for name, dep in deps.items():
            if not isinstance(dep, (ServiceRef, ExtensionPoint)):
                raise StartupError(f"Dependency '{name}' of {self._owner} is not a service ref or extension point")
        _check_init_parameters(self._owner, init, deps)
        self.init = InitRegistration(deps=dict(deps), func=init)


class BackendPlugin:
    """A backend plugin: owns ``/api/<plugin_id>``, its database and its logger."""

    feature_type = "registrations"

    def __init__(
        self,
        plugin_id: str,
        register: Callable[[Registrar], None],
        config_schema: ConfigSchema | None = None,
        services: Sequence[ServiceFactory] = (),
    ) -> None:
        _validate_id(plugin_id, f"pluginId '{plugin_id}'", f"Invalid pluginId '{plugin_id}'")
        self.plugin_id = plugin_id
        self._register = register
        self.config_schema: dict[str, type[Any]] = dict(config_schema or {})
        #: Service factories the plugin brings: the contracts it provides to other plugins.
        self.services: list[ServiceFactory] = list(services)

    def get_registrations(self) -> list[Registration]:
        """Run ``register`` and return the plugin registration."""
        reg = Registrar(f"plugin '{self.plugin_id}'")
        self._register(reg)
        if reg.init is None:
            raise StartupError(f"register_init was not called by the register function of plugin '{self.plugin_id}'")
        return [Registration("plugin", self.plugin_id, None, reg.extension_points, reg.init)]

    def __repr__(self) -> str:
        return f"plugin{{pluginId={self.plugin_id}}}"


class BackendModule:
    """A module that extends one plugin; initialised before that plugin."""

    feature_type = "registrations"

    def __init__(
        self,
        plugin_id: str,
        module_id: str,
        register: Callable[[Registrar], None],
        config_schema: ConfigSchema | None = None,
    ) -> None:
        _validate_id(
            module_id,
            f"moduleId '{module_id}' for plugin '{plugin_id}'",
            f"Invalid moduleId '{module_id}' for plugin '{plugin_id}'",
        )
        self.plugin_id = plugin_id
        self.module_id = module_id
        self._register = register
        self.config_schema: dict[str, type[Any]] = dict(config_schema or {})

    def get_registrations(self) -> list[Registration]:
        """Run ``register`` and return the module registration."""
        reg = Registrar(f"module '{self.module_id}' for plugin '{self.plugin_id}'")
        self._register(reg)
        if reg.init is None:
            raise StartupError(
                f"register_init was not called by the register function of module '{self.module_id}' "
                f"for plugin '{self.plugin_id}'"
            )
        return [Registration("module", self.plugin_id, self.module_id, reg.extension_points, reg.init)]

    def __repr__(self) -> str:
        return f"module{{moduleId={self.module_id},pluginId={self.plugin_id}}}"


def create_backend_plugin(
    plugin_id: str,
    register: Callable[[Registrar], None],
    *,
    config_schema: ConfigSchema | None = None,
    services: Sequence[ServiceFactory] = (),
) -> BackendPlugin:
    """Create a backend plugin (Backstage's ``createBackendPlugin``).

    ``config_schema`` maps the config sections the plugin reads to their
    pydantic models, e.g. ``{"catalog": CatalogConfig}``.

    ``services`` are factories of the services the plugin provides to other
    plugins (the contracts of :mod:`host.contracts`, such as the user
    directory). They are in the backend exactly when the plugin is; a factory
    added with ``backend.add`` for the same id wins over them, and two plugins
    providing the same service fail startup.
    """
    return BackendPlugin(plugin_id, register, config_schema, services)


def create_backend_module(
    plugin_id: str,
    module_id: str,
    register: Callable[[Registrar], None],
    *,
    config_schema: ConfigSchema | None = None,
) -> BackendModule:
    """Create a backend module for ``plugin_id`` (Backstage's ``createBackendModule``).

    ``config_schema`` is as for :func:`create_backend_plugin`.
    """
    return BackendModule(plugin_id, module_id, register, config_schema)


Feature = ServiceFactory | BackendPlugin | BackendModule


_KEYWORD_KINDS = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)


def _check_init_parameters(owner: str, init: InitFn, deps: Mapping[str, Dep]) -> None:
    """Fail now, naming ``owner`` and the key, if ``init(**deps)`` could not be called."""
    try:
        parameters = list(inspect.signature(init).parameters.values())
    except (TypeError, ValueError):  # a callable without a signature (some builtins): checked at call time
        return
    accepted = {p.name for p in parameters if p.kind in _KEYWORD_KINDS}
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)
    unknown = [] if takes_any else [key for key in deps if key not in accepted]
    if unknown:
        raise StartupError(
            f"The init function of {owner} has no parameter for deps key(s) {', '.join(map(repr, unknown))}; "
            f"its parameters are: {', '.join(sorted(accepted)) or '(none)'}"
        )
    required = [
        p.name
        for p in parameters
        if p.default is inspect.Parameter.empty
        and p.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
        and p.name not in deps
    ]
    if required:
        raise StartupError(
            f"The init function of {owner} requires parameter(s) {', '.join(map(repr, required))} that have no deps key"
        )


def _validate_id(value: str, label: str, error_prefix: str) -> None:
    if not isinstance(value, str) or not ID_PATTERN_OLD.match(value):
        raise ValueError(
            f"{error_prefix}, must match the pattern {ID_PATTERN.pattern} "
            "(letters, digits, and dashes only, starting with a letter)"
        )
    if not ID_PATTERN.match(value):
        warnings.warn(
            f"WARNING: The {label} will be invalid soon, please change it to match the pattern {ID_PATTERN.pattern}",
            stacklevel=3,
        )
