"""Actions as MCP tools: listing them and calling one with the caller's credentials."""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

import mcp_types as types
import orjson

from host import Action, ActionsDirectory, BackstageError, Logger

#: What MCP allows in a tool name (SEP-986); other characters become ``_``.
_INVALID_TOOL_CHARS = re.compile(r"[^A-Za-z0-9._-]")


def tool_names(actions: list[Action]) -> dict[str, Action]:
    """Tool name -> action: the action's name, or ``<pluginId>.<name>`` where plugins share a name.

    Characters MCP does not allow in tool names (``notification:send``'s colon) become ``_``.
    """
    shared = Counter(action.name for action in actions)
    named: dict[str, Action] = {}
    for action in actions:
        raw = action.name if shared[action.name] == 1 else f"{action.plugin_id}.{action.name}"
        named[_INVALID_TOOL_CHARS.sub("_", raw)[:128]] = action
    return named


def describe_tool(name: str, action: Action) -> types.Tool:
    """The MCP tool of ``action``: its title, description, schemas and hints."""
    wire = action.describe()
    attributes = wire["attributes"]
    return types.Tool(
        name=name,
        title=action.title,
        description=action.description,
        input_schema=wire["schema"]["input"],
        output_schema=wire["schema"]["output"],
        annotations=types.ToolAnnotations(
            title=action.title,
            read_only_hint=attributes["readOnly"],
            destructive_hint=attributes["destructive"],
            idempotent_hint=attributes["idempotent"],
        ),
    )


def _error(message: str) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(text=message)], is_error=True)


async def call_tool(
    directory: ActionsDirectory, name: str, arguments: dict[str, Any] | None, credentials: Any, logger: Logger
) -> types.CallToolResult:
    """Invoke the action behind tool ``name`` as ``credentials``; errors become an error result.

    The action's policy (``allow=``), input and output models are enforced by its registry,
    exactly as on ``POST /api/<pluginId>/.backstage/actions/v1/actions/{id}/invoke``.
    """
    action = tool_names(directory.list()).get(name)
    if action is None:
        return _error(f'NotFoundError: Tool "{name}" not found')
    try:
        output = await directory.invoke(action.id, arguments or {}, credentials)
    except BackstageError as error:
        if error.status_code < 500 or error.status_code == 503:  # what the REST API would answer too
            return _error(f"{error.name}: {error.message}")
        logger.error("MCP tool call failed", exc_info=error, tool=name, action=action.id)
        return _error("Error: the action failed unexpectedly; see the server log")
    except Exception as error:
        logger.error("MCP tool call failed", exc_info=error, tool=name, action=action.id)
        return _error("Error: the action failed unexpectedly; see the server log")
    return types.CallToolResult(
        content=[types.TextContent(text=orjson.dumps(output).decode())], structured_content=output
    )
