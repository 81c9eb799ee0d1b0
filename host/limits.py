"""Server-wide request limits (``backend.limits``) and the ASGI request-body limit.

Every key is optional; the defaults follow Backstage's backend where it has
one (``express.json``'s 100 kB body limit, Node's 60 s headers timeout and 5 s
keep-alive timeout):

==============================  =========  ==============================================
key                             default    meaning
==============================  =========  ==============================================
``maxBodyBytes``                102400     request body size; larger bodies get 413
``maxHeaderBytes``              16384      request line plus headers; larger get 431
``headersTimeout``              60 s       time to receive a request's headers
``keepAliveTimeout``            5 s        idle time between requests on a connection
``maxConnections``              1000 [*]_  open connections per worker (more are closed)
``maxWebSocketMessageBytes``    65536      one incoming WebSocket message
==============================  =========  ==============================================

.. [*] or the open-files limit minus :data:`host.server_limits.RESERVED_FILES` when that is lower,
   so connections alone never exhaust the process's file descriptors.

:class:`BodyLimit` answers 413 as soon as ``Content-Length`` announces too
much, or as soon as a streamed (chunked) body passes the limit, without
reading the rest; the response closes the connection.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import falcon
import orjson

from host.errors import error_body

ASGIApp = Callable[[dict[str, Any], Callable[..., Awaitable[Any]], Callable[..., Awaitable[Any]]], Awaitable[None]]

#: The message Backstage's body parser gives (its ``PayloadTooLargeError``).
TOO_LARGE_MESSAGE = "request entity too large"


class BodyTooLarge(falcon.HTTPContentTooLarge):
    """Raised from ``receive`` once a streamed body passes the limit.

    It is a Falcon HTTP error, so a plugin router answers it with its usual
    Backstage error body (413 ``PayloadTooLargeError``); any other app gets the
    same answer from :class:`BodyLimit`.
    """

    def __init__(self) -> None:
        super().__init__(description=TOO_LARGE_MESSAGE, headers={"Connection": "close"})


class BodyLimit:
    """Wraps an ASGI app so no HTTP request body larger than ``max_bytes`` is read."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self._app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await _reject(scope, send)
            return
        started = False

        async def tracking_send(message: dict[str, Any]) -> None:
            nonlocal started
            started = True
            await send(message)

        try:
            await self._app(scope, _bounded(receive, self.max_bytes), tracking_send)
        except BodyTooLarge:
            if not started:
                await _reject(scope, send)


def _bounded(receive: Any, limit: int) -> Callable[[], Awaitable[dict[str, Any]]]:
    received = 0

    async def bounded_receive() -> dict[str, Any]:
        nonlocal received
        message: dict[str, Any] = await receive()
        if message.get("type") == "http.request":
            received += len(message.get("body", b""))
            if received > limit:
                raise BodyTooLarge()
        return message

    return bounded_receive


def _content_length(scope: dict[str, Any]) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the server rejects malformed lengths itself
    return None


async def _reject(scope: dict[str, Any], send: Any) -> None:
    body = error_body(
        None,
        status=413,
        method=scope.get("method", "POST"),
        url=_plugin_relative(scope.get("path", "/")),
        name="PayloadTooLargeError",
        message=TOO_LARGE_MESSAGE,
    )
    payload = orjson.dumps(body)
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json; charset=utf-8"),
                (b"content-length", str(len(payload)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


def _plugin_relative(path: str) -> str:
    """``/api/<pluginId>/x`` -> ``/x``: error bodies report the URL as the plugin saw it."""
    parts = path.split("/", 3)
    if len(parts) >= 3 and parts[1] == "api":
        return "/" + (parts[3] if len(parts) > 3 else "")
    return path


def json_depth_exceeds(value: Any, max_depth: int) -> bool:
    """Whether ``value`` (decoded JSON) nests objects/arrays deeper than ``max_depth``.

    Iterative, so it never hits Python's recursion limit, and it stops at the
    first container past the limit.
    """
    stack: list[tuple[Any, int]] = [(value, 1)]
    children: Iterable[Any]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        if depth > max_depth:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False
