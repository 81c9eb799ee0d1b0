"""The backend: collects features, wires services and starts plugins.

Startup, in order:

1. service factories go into the registry; circular factory deps fail;
2. plugins, modules and extension points are enumerated; duplicates, and
   modules whose plugin is not installed, fail with errors naming the ids;
3. root services that are not lazy are built;
4. every plugin starts concurrently: its ``always`` services (the HTTP
   router), then its modules in extension-point order, then its own init,
   then its lifecycle startup hooks (which open its HTTP routes);
5. failures are collected and judged by ``backend.startup`` (abort/continue);
6. root startup hooks run and readiness turns green.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from host.aio import await_me_maybe
from host.config import Config
from host.errors import format_error
from host.features import (
    BackendModule,
    BackendPlugin,
    ExtensionPoint,
    Registration,
    ServiceFactory,
    ServiceRef,
    StartupError,
)
from host.registry import ServiceRegistry, find_cycles
from host.services import core_services

T = TypeVar("T")
#: Appended to a startup failure that ``backend.startup`` allows (``%s``: plugin or module).
_BOOT_FAILURE_PERMITTED = ", but boot failure is permitted for this %s so startup will continue."


class BackendStartupError(StartupError):
    """A plugin or module failed to start and its boot-failure policy is ``abort``;
    ``result`` holds the per-plugin outcome."""

    name = "BackendStartupError"

    def __init__(self, result: StartupResult) -> None:
        lines = ["Backend startup failed due to the following errors:"]
        for plugin in result.plugins:
            for module in plugin.modules:
                if module.failure and not module.allowed:
                    lines.append(
                        f"  Module '{module.module_id}' for plugin '{plugin.plugin_id}' startup failed; "
                        f"caused by {format_error(module.failure)}"
                    )
            if plugin.failure and not plugin.allowed:
                lines.append(f"  Plugin '{plugin.plugin_id}' startup failed; caused by {format_error(plugin.failure)}")
        super().__init__("\n".join(lines))
        self.result = result


@dataclass
class ModuleResult:
    """Outcome of one module's init."""

    module_id: str
    failure: BaseException | None = None
    allowed: bool = False


@dataclass
class PluginResult:
    """Outcome of one plugin's init and of its modules."""

    plugin_id: str
    failure: BaseException | None = None
    allowed: bool = False
    modules: list[ModuleResult] = field(default_factory=list)


@dataclass
class StartupResult:
    """Outcome of :meth:`Backend.start`."""

    plugins: list[PluginResult] = field(default_factory=list)

    @property
    def outcome(self) -> str:
        """``success`` unless a failure that is not allowed happened."""
        for plugin in self.plugins:
            if plugin.failure and not plugin.allowed:
                return "failure"
            if any(m.failure and not m.allowed for m in plugin.modules):
                return "failure"
        return "success"


class InstanceMetadata:
    """Which plugins and modules this backend runs (``core.rootInstanceMetadata``)."""

    def __init__(self) -> None:
        self._plugins: dict[str, list[str]] = {}
        self._init_done: dict[str, asyncio.Event] = {}
        self._init_failures: dict[str, BaseException] = {}

    def _set(self, plugins: dict[str, list[str]]) -> None:
        self._plugins = plugins
        self._init_done = {plugin_id: asyncio.Event() for plugin_id in plugins}

    def _plugin_init_finished(self, plugin_id: str, failure: BaseException | None) -> None:
        """Record that ``plugin_id``'s init ran (``failure`` is ``None``) or that the plugin failed."""
        done = self._init_done[plugin_id]
        if done.is_set():
            return
        if failure is not None:
            self._init_failures[plugin_id] = failure
        done.set()

    async def wait_for_plugin_init(self, plugin_id: str) -> BaseException | None:
        """Wait until ``plugin_id``'s init has run; return why it failed, or ``None``."""
        await self._init_done[plugin_id].wait()
        return self._init_failures.get(plugin_id)

    def installed_plugins(self) -> list[dict[str, Any]]:
        """``[{"pluginId": ..., "modules": [{"moduleId": ...}]}]``."""
        return [
            {"pluginId": p, "modules": [{"moduleId": m} for m in mods]} for p, mods in sorted(self._plugins.items())
        ]

    def is_installed(self, plugin_id: str) -> bool:
        """Whether ``plugin_id`` runs in this backend."""
        return plugin_id in self._plugins


def load_feature(spec: Any) -> Any:
    """Resolve ``"package.module:attr"`` strings, factory callables and ``{"default": f}`` wrappers."""
    if isinstance(spec, str):
        module_name, _, attr = spec.partition(":")
        module = importlib.import_module(module_name)
        spec = getattr(module, attr) if attr else getattr(module, "default", module)
    while isinstance(spec, dict) and "default" in spec:
        spec = spec["default"]
    if not isinstance(spec, (ServiceFactory, BackendPlugin, BackendModule)) and callable(spec):
        spec = spec()
    if not isinstance(spec, (ServiceFactory, BackendPlugin, BackendModule)):
        raise TypeError(f"Failed to add feature, invalid feature {spec!r}")
    return spec


class Backend:
    """A backend hosting plugins. Build one with :func:`host.create_backend`."""

    def __init__(self, default_factories: list[ServiceFactory]) -> None:
        self._registry = ServiceRegistry(default_factories)
        self._features: list[Any] = []
        self._started = False
        self._stopped = False
        self._start_task: asyncio.Task[StartupResult] | None = None
        self._stop_task: asyncio.Task[None] | None = None
        self.instance_metadata = InstanceMetadata()
        self.plugin_ids: list[str] = []
        self.result: StartupResult | None = None

    # -- public API ------------------------------------------------------------

    def add(self, feature: Any) -> None:
        """Add a plugin, module or service factory (or an import path ``"pkg.mod:attr"``)."""
        if self._started:
            raise RuntimeError("feature can not be added after the backend has started")
        self._features.append(load_feature(feature))

    async def start(self) -> StartupResult:
        """Start every plugin.

        Raises :class:`StartupError` when the features do not fit together
        (before any init runs) and :class:`BackendStartupError` when a plugin
        or module fails and its boot-failure policy is ``abort``.
        """
        if self._stopped:
            raise RuntimeError("Backend has already stopped")
        if self._started:
            raise RuntimeError("Backend has already started")
        self._started = True
        self._start_task = asyncio.ensure_future(self._do_start())
        return await self._start_task

    async def stop(self) -> None:
        """Stop the backend: before-shutdown hooks, plugin shutdowns, then shutdown hooks."""
        if self._stop_task is None:
            self._stopped = True
            self._stop_task = asyncio.ensure_future(self._do_stop())
        await self._stop_task

    async def begin_shutdown(self) -> None:
        """Run the root before-shutdown hooks while requests are still served.

        Readiness turns 503 and ``backend.lifecycle.serverShutdownDelay`` passes;
        the server closes its listener afterwards and :meth:`stop` finishes the
        shutdown (the hooks run once either way).
        """
        if self._start_task is None:
            return
        with contextlib.suppress(Exception):  # a failed start is cleaned up by stop()
            await self._start_task  # startup hooks would mark readiness up again
        root_lifecycle = await self._registry.get(core_services.root_lifecycle, "root")
        await root_lifecycle.before_shutdown()

    async def get_service(self, ref: ServiceRef[T], plugin_id: str = "root") -> T:
        """Return the instance of ``ref`` for ``plugin_id`` (for tests and tools), typed as the ref."""
        service: T = await self._registry.get(ref, plugin_id)
        return service

    # -- startup ---------------------------------------------------------------

    async def _do_start(self) -> StartupResult:
        started_at = time.monotonic()
        self._registry.add(_constant_factory(core_services.instance_metadata, self.instance_metadata))
        registrations: list[Registration] = []
        for feature in self._features:
            if isinstance(feature, ServiceFactory):
                self._registry.add(feature)
            else:
                registrations.extend(feature.get_registrations())
        for feature in self._features:
            if isinstance(feature, BackendPlugin):
                for factory in feature.services:
                    self._registry.add_provided(factory, feature.plugin_id)
        self._registry.check_for_circular_deps()

        plugins: dict[str, Registration] = {}
        modules: dict[str, dict[str, Registration]] = {}
        extension_points: dict[str, tuple[str, Any]] = {}
        for reg in registrations:
            for ep, impl in reg.extension_points:
                if ep.id in extension_points:
                    raise StartupError(f"ExtensionPoint with ID '{ep.id}' is already registered")
                extension_points[ep.id] = (reg.plugin_id, impl)
            if reg.kind == "plugin":
                if reg.plugin_id in plugins:
                    raise StartupError(f"Plugin '{reg.plugin_id}' is already registered")
                plugins[reg.plugin_id] = reg
            else:
                per_plugin = modules.setdefault(reg.plugin_id, {})
                if reg.module_id in per_plugin:
                    raise StartupError(f"Module '{reg.module_id}' for plugin '{reg.plugin_id}' is already registered")
                per_plugin[reg.module_id or ""] = reg
        orphans = [
            f"Module '{module_id}' for plugin '{plugin_id}'"
            for plugin_id, mods in modules.items()
            if plugin_id not in plugins
            for module_id in mods
        ]
        if orphans:
            raise StartupError(
                f"{', '.join(orphans)} cannot start because plugin(s) "
                f"{', '.join(sorted({repr(p) for p in modules if p not in plugins}))} are not installed"
            )
        self._check_missing_deps(plugins, modules, extension_points)
        self.plugin_ids = sorted(plugins)
        self.instance_metadata._set({p: sorted(modules.get(p, {})) for p in plugins})

        for factory in self._registry.root_factories():
            await self._registry.get(factory.service, "root")
        root_logger = await self._registry.get(core_services.root_logger, "root")
        init_logger = root_logger.child(type="initialization")
        init_logger.info("Plugin initialization started: %s", ", ".join(repr(p) for p in self.plugin_ids))
        config: Config = await self._registry.get(core_services.config, "root")

        results = await asyncio.gather(
            *(
                self._start_plugin(pid, plugins[pid], modules.get(pid, {}), extension_points, config, init_logger)
                for pid in self.plugin_ids
            )
        )
        self.result = StartupResult(list(results))
        if self.result.outcome == "failure":
            raise BackendStartupError(self.result)
        root_lifecycle = await self._registry.get(core_services.root_lifecycle, "root")
        await root_lifecycle.startup()
        init_logger.info("Plugin initialization complete in %.2fs", time.monotonic() - started_at)
        return self.result

    def _check_missing_deps(
        self,
        plugins: dict[str, Registration],
        modules: dict[str, dict[str, Registration]],
        extension_points: dict[str, tuple[str, Any]],
    ) -> None:
        problems: list[str] = []
        for reg in [*plugins.values(), *(m for mods in modules.values() for m in mods.values())]:
            missing: list[str] = []
            for dep in reg.init.deps.values():
                if isinstance(dep, ExtensionPoint):
                    owner = extension_points.get(dep.id)
                    if owner is None:
                        missing.append(str(dep))
                    elif owner[0] != reg.plugin_id:
                        problems.append(
                            f"Illegal dependency: Module '{reg.module_id}' for plugin '{reg.plugin_id}' attempted "
                            f"to depend on extension point '{dep.id}' for plugin '{owner[0]}'. Extension points "
                            "can only be used within their plugin's scope."
                        )
                    elif reg.kind == "plugin":
                        problems.append(f"Rejected dependency on extension point {dep.id} from outside of a module")
                elif not self._registry.has(dep):
                    missing.append(str(dep))
            if missing:
                who = (
                    f"plugin '{reg.plugin_id}'"
                    if reg.kind == "plugin"
                    else f"module '{reg.module_id}' for plugin '{reg.plugin_id}'"
                )
                problems.append(
                    f"Service or extension point dependencies of {who} are missing for the following ref(s): "
                    f"{', '.join(missing)}"
                )
        if problems:
            raise StartupError("\n".join(problems))

    async def _start_plugin(
        self,
        plugin_id: str,
        plugin: Registration,
        modules: dict[str, Registration],
        extension_points: dict[str, tuple[str, Any]],
        config: Config,
        logger: Any,
    ) -> PluginResult:
        result = PluginResult(plugin_id)
        try:
            for factory in self._registry.always_plugin_factories():
                await self._registry.get(factory.service, plugin_id)
            order = _module_order(plugin_id, modules)
            done: dict[str, asyncio.Future[None]] = {m: asyncio.get_running_loop().create_future() for m in modules}
            module_results = {m: ModuleResult(m) for m in modules}
            result.modules = list(module_results.values())

            async def run_module(module_id: str) -> None:
                for waits_for in order[module_id]:
                    await done[waits_for]
                reg = modules[module_id]
                try:
                    deps = await self._resolve(reg, plugin_id, extension_points)
                    await _call_init(reg.init.func, deps)
                except Exception as error:
                    module_results[module_id].failure = error
                    allowed = _allowed(config, plugin_id, module_id)
                    module_results[module_id].allowed = allowed
                    logger.error(
                        "Module %s in Plugin '%s' threw an error during startup%s",
                        module_id,
                        plugin_id,
                        _BOOT_FAILURE_PERMITTED % "module" if allowed else ".",
                        exc_info=error,
                    )
                finally:
                    done[module_id].set_result(None)

            await asyncio.gather(*(run_module(m) for m in modules))
            fatal = [m for m in module_results.values() if m.failure and not m.allowed]
            if fatal:
                raise RuntimeError(f"Module '{fatal[0].module_id}' for plugin '{plugin_id}' failed to start")
            deps = await self._resolve(plugin, plugin_id, extension_points)
            await _call_init(plugin.init.func, deps)
            self.instance_metadata._plugin_init_finished(plugin_id, None)
            lifecycle = await self._registry.get(core_services.lifecycle, plugin_id)
            await lifecycle.startup()
        except Exception as error:
            self.instance_metadata._plugin_init_finished(plugin_id, error)
            result.failure = error
            result.allowed = _allowed(config, plugin_id, None)
            logger.error(
                "Plugin '%s' threw an error during startup%s",
                plugin_id,
                _BOOT_FAILURE_PERMITTED % "plugin" if result.allowed else ".",
                exc_info=error,
            )
            if result.allowed:
                lifecycle = await self._registry.get(core_services.lifecycle, plugin_id)
                lifecycle.mark_failed()
        return result

    async def _resolve(
        self, reg: Registration, plugin_id: str, extension_points: dict[str, tuple[str, Any]]
    ) -> dict[str, Any]:
        resolved: dict[str, Any] = {}
        for name, dep in reg.init.deps.items():
            if isinstance(dep, ExtensionPoint):
                resolved[name] = extension_points[dep.id][1]
            else:
                resolved[name] = await self._registry.get(dep, plugin_id)
        return resolved

    # -- shutdown --------------------------------------------------------------

    async def _do_stop(self) -> None:
        if self._start_task is None:
            return
        # Wait for startup to finish, failed or not (its error went to start()'s caller); then clean up.
        await asyncio.wait([self._start_task])
        root_lifecycle = await self._registry.get(core_services.root_lifecycle, "root")
        await root_lifecycle.before_shutdown()
        lifecycles = [await self._registry.get(core_services.lifecycle, pid) for pid in self.plugin_ids]
        await asyncio.gather(*(lc.shutdown() for lc in lifecycles), return_exceptions=True)
        await root_lifecycle.shutdown()


def _allowed(config: Config, plugin_id: str, module_id: str | None) -> bool:
    if module_id is None:
        value = config.get_optional(f"backend.startup.plugins.{plugin_id}.onPluginBootFailure") or config.get_optional(
            "backend.startup.default.onPluginBootFailure"
        )
    else:
        value = config.get_optional(
            f"backend.startup.plugins.{plugin_id}.modules.{module_id}.onPluginModuleBootFailure"
        ) or config.get_optional("backend.startup.default.onPluginModuleBootFailure")
    return str(value) == "continue"


def _module_order(plugin_id: str, modules: dict[str, Registration]) -> dict[str, list[str]]:
    """For each module, the modules it must wait for.

    A module that *provides* extension point X waits for every module that
    *consumes* X, so consumers contribute before the provider's init runs.
    """
    providers: dict[str, set[str]] = {}
    for module_id, reg in modules.items():
        for ep, _ in reg.extension_points:
            providers.setdefault(ep.id, set()).add(module_id)
    waits: dict[str, set[str]] = {m: set() for m in modules}
    for module_id, reg in modules.items():
        for dep in reg.init.deps.values():
            if isinstance(dep, ExtensionPoint):
                for provider in providers.get(dep.id, ()):
                    if provider != module_id:
                        waits[provider].add(module_id)
    cycles = find_cycles({m: set(w) for m, w in waits.items()})
    if cycles:
        raise StartupError(
            f"Circular dependency detected for modules of plugin '{plugin_id}', "
            + " -> ".join(f"'{c}'" for c in cycles[0])
        )
    return {m: sorted(w) for m, w in waits.items()}


async def _call_init(func: Any, deps: dict[str, Any]) -> None:
    await await_me_maybe(func(**deps))


def _constant_factory(ref: ServiceRef[Any], value: Any) -> ServiceFactory:
    return ServiceFactory(service=ref, factory=lambda: value)


def discover_features(config: Config, logger: Any | None = None) -> list[Any]:
    """Load every feature from the ``greenroom.backend_features`` entry-point group.

    ``backend.features.discovery: false`` disables discovery;
    ``backend.features.include`` / ``exclude`` filter entry-point names
    (``*`` is a wildcard). An entry point that fails to import, or two that
    provide the same plugin or module id, fail with the distributions named.
    """
    from importlib.metadata import entry_points

    if config.get_optional_boolean("backend.features.discovery") is False:
        return []
    include = config.get_optional_string_list("backend.features.include")
    exclude = config.get_optional_string_list("backend.features.exclude") or []
    found: list[tuple[Any, str]] = []
    seen: set[str] = set()
    for ep in sorted(entry_points(group="greenroom.backend_features"), key=lambda e: e.name):
        if ep.name in seen:
            continue
        seen.add(ep.name)
        if include is not None and not matches_any(ep.name, include):
            continue
        if matches_any(ep.name, exclude):
            continue
        try:
            feature = load_feature(ep.load())
        except Exception as error:
            raise RuntimeError(
                f"Failed to load backend feature from {feature_source(ep)} ({ep.value}): "
                f"{type(error).__name__}: {error}"
            ) from error
        if logger is not None:
            dist = getattr(ep, "dist", None)
            logger.info("Detected: %s", ep.name, package=getattr(dist, "name", None))
        found.append((feature, feature_source(ep)))
    duplicates = duplicate_feature_ids(found)
    if duplicates:
        raise StartupError("\n".join(duplicates))
    return [feature for feature, _ in found]


def feature_source(ep: Any) -> str:
    """``entry point 'x' of distribution 'pkg 1.0'``: where a discovered feature comes from."""
    dist = getattr(ep, "dist", None)
    where = f"distribution '{dist.name} {dist.version}'" if dist is not None else "an unknown distribution"
    return f"entry point '{ep.name}' of {where}"


def duplicate_feature_ids(features: list[tuple[Any, str]]) -> list[str]:
    """One message per plugin or module id that several ``(feature, source)`` pairs provide."""
    by_id: dict[str, list[str]] = {}
    for feature, source in features:
        if isinstance(feature, BackendPlugin):
            by_id.setdefault(f"Plugin '{feature.plugin_id}'", []).append(source)
        elif isinstance(feature, BackendModule):
            by_id.setdefault(f"Module '{feature.module_id}' for plugin '{feature.plugin_id}'", []).append(source)
    return [
        f"{what} is provided twice: by {' and by '.join(sources)}; uninstall one or exclude it "
        "with backend.features.exclude"
        for what, sources in by_id.items()
        if len(sources) > 1
    ]


def matches_any(name: str, patterns: Iterable[str]) -> bool:
    """Whether ``name`` matches one of the ``fnmatch`` ``patterns``."""
    import fnmatch

    return any(fnmatch.fnmatchcase(name, p) for p in patterns)
