"""The renderer registry that channel modules (email, Slack, Teams) build their extension point on.

A channel module declares its renderer hooks in a hookspecs module (with a
``PROJECT_NAME``); other modules register objects implementing them. A
registration whose hook implementations do not match the specs is refused
and left unregistered.
"""

from __future__ import annotations

from types import ModuleType

import pluggy

from host import register_checked


class RendererRegistry:
    """A pluggy plugin manager for the renderer hooks of ``hookspecs`` (a module with ``PROJECT_NAME``)."""

    def __init__(self, hookspecs: ModuleType) -> None:
        self.plugin_manager = pluggy.PluginManager(hookspecs.PROJECT_NAME)
        self.plugin_manager.add_hookspecs(hookspecs)

    def add_renderer(self, renderer: object) -> None:
        """Register an object (or module) implementing some of the hooks; refuse one that does not match them."""
        register_checked(self.plugin_manager, renderer)
