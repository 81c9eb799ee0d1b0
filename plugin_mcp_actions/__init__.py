"""MCP actions: every plugin's actions as Model Context Protocol tools at ``/api/mcp-actions/v1``.

* :data:`mcp_actions_plugin` - the backend plugin (entry point ``mcp-actions``).
* :func:`tool_names` - how action ids map to tool names.
"""

from plugin_mcp_actions.plugin import mcp_actions_plugin
from plugin_mcp_actions.tools import tool_names

__all__ = ["mcp_actions_plugin", "tool_names"]
