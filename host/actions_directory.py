"""The root-scoped actions directory: every plugin's actions registry, in one place.

Each plugin's :class:`host.actions.ActionsRegistry` adds itself here when it is
created, so a root-level consumer (the MCP actions plugin) can list and invoke
the actions of every plugin of the backend without knowing the plugins::

    directory = await backend.get_service(core_services.actions_directory)
    for action in directory.list():
        ...
    output = await directory.invoke(action.id, {"limit": 5}, credentials)
"""

from __future__ import annotations

from typing import Any

from host.actions import Action, ActionsRegistry
from host.errors import NotFoundError


class ActionsDirectory:
    """The registries of every plugin (``core_services.actions_directory``, root scope)."""

    def __init__(self) -> None:
        self._registries: dict[str, ActionsRegistry] = {}

    def add(self, registry: ActionsRegistry) -> None:
        """Record a plugin's registry (called by the registry's factory)."""
        self._registries[registry.plugin_id] = registry

    def list(self) -> list[Action]:
        """Every registered action of every plugin, by plugin id then registration order."""
        return [action for plugin_id in sorted(self._registries) for action in self._registries[plugin_id].list()]

    def _registry_of(self, action_id: str) -> ActionsRegistry:
        plugin_id = action_id.partition(":")[0]
        registry = self._registries.get(plugin_id)
        if registry is None:
            raise NotFoundError(f'Action "{action_id}" not found')
        return registry

    async def invoke(self, action_id: str, raw_input: Any, credentials: Any) -> dict[str, Any]:
        """Invoke ``action_id`` as its own plugin's router would: policy, input and output checked."""
        return await self._registry_of(action_id).invoke(action_id, raw_input, credentials)
