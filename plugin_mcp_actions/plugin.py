"""The ``mcp-actions`` backend plugin: an MCP server (Streamable HTTP) at ``/api/mcp-actions/v1``.

Built on the official ``mcp`` SDK's low-level :class:`mcp.server.Server` and its
:class:`~mcp.server.streamable_http_manager.StreamableHTTPSessionManager` in stateless
mode with JSON responses, so any worker answers any request. Requests go through the
plugin's Falcon router like every other route (the startup gate, the credentials barrier,
the body limit, Backstage's error bodies): a request without a valid user or service
token is a 401 before the MCP server sees it. The credentials travel in the ASGI scope
to the tool handlers, which invoke actions through the root actions directory, so each
action's ``allow=`` policy decides who may call it.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import falcon
import falcon.asgi
import mcp_types as types
from mcp.server import Server, ServerRequestContext
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager

from host import ActionsDirectory, BackstageError, Logger, Registrar, core_services, create_backend_plugin
from plugin_mcp_actions.bridge import CREDENTIALS_SCOPE_KEY, call_asgi
from plugin_mcp_actions.tools import call_tool, describe_tool, tool_names

PLUGIN_ID = "mcp-actions"
#: The MCP endpoint, relative to ``/api/mcp-actions``.
MCP_PATH = "/v1"


def create_mcp_server(directory: ActionsDirectory, logger: Logger) -> Server[Any]:
    """An MCP server whose tools are the directory's actions, called as the request's credentials."""

    async def list_tools(
        ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        return types.ListToolsResult(
            tools=[describe_tool(name, action) for name, action in tool_names(directory.list()).items()]
        )

    async def on_call_tool(ctx: ServerRequestContext[Any], params: types.CallToolRequestParams) -> types.CallToolResult:
        request = ctx.request
        credentials = getattr(request, "scope", {}).get(CREDENTIALS_SCOPE_KEY) if request is not None else None
        if credentials is None:  # only reachable if the transport dropped the HTTP request
            return types.CallToolResult(
                content=[types.TextContent(text="AuthenticationError: Missing credentials")], is_error=True
            )
        return await call_tool(directory, params.name, params.arguments, credentials, logger)

    return Server("greenroom-mcp-actions", version="1", on_list_tools=list_tools, on_call_tool=on_call_tool)


class MethodNotAllowedError(BackstageError):
    """405: the endpoint only takes POST (no GET stream, no session to DELETE)."""

    status_code = 405
    headers = {"Allow": "POST"}


class McpEndpoint:
    """``/api/mcp-actions/v1``: authenticates, then hands the request to the SDK's session manager."""

    def __init__(self, manager: StreamableHTTPSessionManager, http_auth: Any, running: asyncio.Event) -> None:
        self._manager = manager
        self._http_auth = http_auth
        self._running = running

    async def on_post(self, req: falcon.asgi.Request, resp: falcon.Response) -> None:
        """One JSON-RPC message (or batch) in, its JSON answer out (stateless: no session to resume)."""
        credentials = await self._http_auth.credentials(req, allow=("user", "service"))
        await self._running.wait()
        body = await req.stream.read()
        scope = dict(req.scope)
        scope[CREDENTIALS_SCOPE_KEY] = credentials
        status, headers, data = await call_asgi(self._manager.handle_request, scope, body)
        resp.status = status
        for name, value in headers:
            if name.lower() != "content-length":
                resp.append_header(name, value)
        resp.data = data

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.Response) -> None:
        """No server-initiated SSE stream in stateless mode: 405, as the MCP spec lets a server answer."""
        await self._http_auth.credentials(req, allow=("user", "service"))
        raise MethodNotAllowedError("The MCP endpoint serves no SSE stream in stateless mode; POST JSON-RPC messages")

    on_delete = on_get


def _register(reg: Registrar) -> None:
    async def init(router: Any, http_auth: Any, directory: ActionsDirectory, logger: Logger, lifecycle: Any) -> None:
        manager = StreamableHTTPSessionManager(create_mcp_server(directory, logger), json_response=True, stateless=True)
        running, stop = asyncio.Event(), asyncio.Event()

        async def serve() -> None:
            async with manager.run():
                running.set()
                await stop.wait()

        task: asyncio.Task[None] | None = None

        def start() -> None:
            nonlocal task
            task = asyncio.get_running_loop().create_task(serve(), name="mcp-actions:session-manager")

        async def shutdown() -> None:
            stop.set()
            if task is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await task

        lifecycle.add_startup_hook(start)
        lifecycle.add_shutdown_hook(shutdown)
        router.add_route(MCP_PATH, McpEndpoint(manager, http_auth, running))

    reg.register_init(
        deps={
            "router": core_services.http_router,
            "http_auth": core_services.http_auth,
            "directory": core_services.actions_directory,
            "logger": core_services.logger,
            "lifecycle": core_services.lifecycle,
        },
        init=init,
    )


#: The MCP actions plugin (``/api/mcp-actions/v1``).
mcp_actions_plugin = create_backend_plugin(PLUGIN_ID, _register)
