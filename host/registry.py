"""The service registry: which factory builds each service, and the instances built so far."""

from __future__ import annotations

import asyncio
from typing import Any

from host.aio import await_me_maybe
from host.features import ServiceFactory, ServiceRef, StartupError

PLUGIN_METADATA_ID = "core.pluginMetadata"


class PluginMetadata:
    """What ``core.pluginMetadata`` gives a plugin: its own id."""

    def __init__(self, plugin_id: str) -> None:
        self.plugin_id = plugin_id

    def get_id(self) -> str:
        """The plugin id."""
        return self.plugin_id


class ServiceRegistry:
    """Holds service factories and memoises the instances they build.

    Root-scoped services are built once; plugin-scoped ones once per plugin id
    (their ``create_root_context`` once per factory).
    """

    def __init__(self, defaults: list[ServiceFactory]) -> None:
        self._defaults: dict[str, ServiceFactory] = {}
        for factory in defaults:
            if factory.service.id == PLUGIN_METADATA_ID:
                raise ValueError("The core.pluginMetadata service cannot be overridden")
            if factory.service.id in self._defaults:
                raise ValueError(f"Duplicate service implementations provided for {factory.service.id}")
            self._defaults[factory.service.id] = factory
        self._explicit: dict[str, list[ServiceFactory]] = {}
        #: Factories plugins bring (``create_backend_plugin(services=...)``): id -> (plugin id, factory).
        self._provided: dict[str, tuple[str, ServiceFactory]] = {}
        self._from_ref_defaults: dict[str, ServiceFactory] = {}
        self._instantiated: set[str] = set()
        self._instances: dict[tuple[int, str | None], asyncio.Future[Any]] = {}
        self._contexts: dict[int, asyncio.Future[Any]] = {}

    def add(self, factory: ServiceFactory) -> None:
        """Add an explicitly provided factory (``backend.add``)."""
        service_id = factory.service.id
        if service_id == PLUGIN_METADATA_ID:
            raise ValueError("The core.pluginMetadata service cannot be overridden")
        if service_id in self._instantiated:
            raise ValueError(
                f"Unable to set service factory with id {service_id}, service has already been instantiated"
            )
        existing = self._explicit.setdefault(service_id, [])
        if existing and not factory.service.multiton:
            raise ValueError(f"Duplicate service implementations provided for {service_id}")
        existing.append(factory)

    def add_provided(self, factory: ServiceFactory, plugin_id: str) -> None:
        """Add a factory plugin ``plugin_id`` brings; explicit factories win over it.

        Raises :class:`StartupError` naming both plugins when another plugin provides the same id.
        """
        service_id = factory.service.id
        if service_id == PLUGIN_METADATA_ID:
            raise StartupError(f"Plugin '{plugin_id}' cannot provide the core.pluginMetadata service")
        other = self._provided.get(service_id)
        if other is not None:
            raise StartupError(
                f"Service '{service_id}' is provided by both plugin '{other[0]}' and plugin '{plugin_id}'; "
                "install only one of them"
            )
        self._provided[service_id] = (plugin_id, factory)

    def factories_for(self, ref: ServiceRef[Any]) -> list[ServiceFactory]:
        """The factories that build ``ref``: explicit ones, else a plugin's, else the defaults."""
        if ref.id in self._explicit:
            explicit = self._explicit[ref.id]
            if ref.multiton and ref.id in self._defaults:
                return [self._defaults[ref.id], *explicit]
            return explicit
        if ref.id in self._provided:
            return [self._provided[ref.id][1]]
        if ref.id in self._defaults:
            return [self._defaults[ref.id]]
        if ref.default_factory is not None:
            if ref.id not in self._from_ref_defaults:
                self._from_ref_defaults[ref.id] = ref.default_factory(ref)
            return [self._from_ref_defaults[ref.id]]
        return []

    def has(self, ref: ServiceRef[Any]) -> bool:
        """Whether ``ref`` can be provided."""
        return ref.id == PLUGIN_METADATA_ID or bool(self.factories_for(ref)) or ref.multiton

    def all_factories(self) -> list[ServiceFactory]:
        """Every factory that is currently provided (explicit, defaults, ref defaults)."""
        seen: dict[str, list[ServiceFactory]] = {}
        for service_id, factory in self._defaults.items():
            seen[service_id] = [factory]
        for service_id, (_plugin_id, factory) in self._provided.items():
            seen[service_id] = [factory]
        for service_id, factories in self._explicit.items():
            seen[service_id] = factories
        for service_id, factory in self._from_ref_defaults.items():
            seen.setdefault(service_id, [factory])
        return [f for fs in seen.values() for f in fs]

    def check_for_circular_deps(self) -> None:
        """Raise :class:`StartupError` naming every cycle between factories."""
        graph: dict[str, set[str]] = {}
        pending = list(self.all_factories())
        while pending:
            factory = pending.pop()
            deps = graph.setdefault(factory.service.id, set())
            for dep in factory.deps.values():
                deps.add(dep.id)
                if dep.id not in graph:
                    pending.extend(self.factories_for(dep))
        cycles = find_cycles(graph)
        if cycles:
            lines = "\n".join("  " + " -> ".join(f"'{node}'" for node in cycle) for cycle in cycles)
            raise StartupError(f"Circular dependencies detected:\n{lines}")

    def root_factories(self) -> list[ServiceFactory]:
        """Root-scoped factories that are not lazy (built eagerly at startup)."""
        return [f for f in self.all_factories() if f.service.scope == "root" and f.initialization != "lazy"]

    def always_plugin_factories(self) -> list[ServiceFactory]:
        """Plugin-scoped factories with ``initialization="always"``."""
        return [f for f in self.all_factories() if f.service.scope == "plugin" and f.initialization == "always"]

    async def get(self, ref: ServiceRef[Any], plugin_id: str) -> Any:
        """Return the instance of ``ref`` for ``plugin_id``; ``None`` if nobody provides it."""
        self._instantiated.add(ref.id)
        if ref.id == PLUGIN_METADATA_ID:
            return PluginMetadata(plugin_id)
        factories = self.factories_for(ref)
        if not factories:
            return [] if ref.multiton else None
        instances = [await self._instance(factory, plugin_id) for factory in factories]
        return instances if ref.multiton else instances[0]

    async def _instance(self, factory: ServiceFactory, plugin_id: str) -> Any:
        key = (id(factory), None if factory.service.scope == "root" else plugin_id)
        future = self._instances.get(key)
        if future is None:
            future = asyncio.get_running_loop().create_future()
            self._instances[key] = future
            try:
                future.set_result(await self._build(factory, plugin_id))
            except BaseException as error:
                future.set_exception(error)
                future.exception()  # raised below; waiters see it too, so it is never "unretrieved"
                del self._instances[key]
                raise
        return await asyncio.shield(future)

    async def _resolve_deps(
        self, factory: ServiceFactory, plugin_id: str, deps: dict[str, ServiceRef[Any]]
    ) -> dict[str, Any]:
        missing = [ref.id for ref in deps.values() if not self.has(ref)]
        if missing:
            names = ", ".join(f"'{m}'" for m in missing)
            raise ValueError(
                f"Failed to instantiate service '{factory.service.id}' for '{plugin_id}' because the "
                f"following dependent services are missing: {names}"
            )
        resolved: dict[str, Any] = {}
        for name, ref in deps.items():
            if factory.service.scope == "root" and ref.scope != "root":
                raise ValueError(
                    f"Failed to instantiate 'root' scoped service '{factory.service.id}' because it depends on "
                    f"'{ref.scope}' scoped service '{ref.id}'."
                )
            resolved[name] = await self.get(ref, plugin_id)
        return resolved

    async def _build(self, factory: ServiceFactory, plugin_id: str) -> Any:
        if factory.service.scope == "root":
            deps = await self._resolve_deps(factory, "root", dict(factory.deps))
            try:
                return await await_me_maybe(factory.factory(**deps))
            except Exception as error:
                raise RuntimeError(
                    f"Failed to instantiate service '{factory.service.id}' because the factory function threw "
                    f"an error, {error}"
                ) from error
        root_deps = {k: v for k, v in factory.deps.items() if v.scope == "root"}
        context: Any = None
        if factory.create_root_context is not None:
            ctx_future = self._contexts.get(id(factory))
            if ctx_future is None:
                ctx_future = asyncio.get_running_loop().create_future()
                self._contexts[id(factory)] = ctx_future
                try:
                    resolved_root = await self._resolve_deps(factory, "root", root_deps)
                    ctx_future.set_result(await await_me_maybe(factory.create_root_context(**resolved_root)))
                except Exception as error:
                    del self._contexts[id(factory)]
                    ctx_future.set_exception(error)
                    raise RuntimeError(
                        f"Failed to instantiate service '{factory.service.id}' because create_root_context threw "
                        f"an error, {error}"
                    ) from error
            context = await asyncio.shield(ctx_future)
        deps = await self._resolve_deps(factory, plugin_id, dict(factory.deps))
        try:
            if factory.create_root_context is not None:
                return await await_me_maybe(factory.factory(context, **deps))
            return await await_me_maybe(factory.factory(**deps))
        except Exception as error:
            raise RuntimeError(
                f"Failed to instantiate service '{factory.service.id}' for '{plugin_id}' because the factory "
                f"function threw an error, {error}"
            ) from error


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every distinct cycle of ``graph`` (node -> nodes it depends on), each as a closed path."""
    cycles: list[list[str]] = []
    seen_cycles: set[frozenset[str]] = set()
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == 1:
                cycle = stack[stack.index(dep) :] + [dep]
                key = frozenset(cycle)
                if key not in seen_cycles:
                    seen_cycles.add(key)
                    cycles.append(cycle)
            elif dep not in state:
                visit(dep)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    return cycles
