"""Registering pluggy plugins on the hook registries of extension points."""

from __future__ import annotations

import pluggy


def register_checked(plugin_manager: pluggy.PluginManager, plugin: object) -> None:
    """Register ``plugin`` on ``plugin_manager``; refuse (and unregister) it when its hooks match no spec.

    Raises ``pluggy.PluginValidationError`` for an implementation of a hook the
    manager's specs do not name, or one whose arguments do not fit its spec.
    """
    plugin_manager.register(plugin)
    try:
        plugin_manager.check_pending()
    except pluggy.PluginValidationError:
        plugin_manager.unregister(plugin)
        raise
