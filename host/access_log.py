"""Request ids and the optional access log.

:class:`AccessLog` wraps the root ASGI app. Every HTTP request and WebSocket
gets a request id (the ``x-request-id`` header when the proxy sent one, else a
new one) that every log line written while serving it carries, and that is
sent back as ``x-request-id``. With ``backend.logger.accessLog: true`` one line
per request is logged when it ends: method, path, status, duration in
milliseconds and the caller's principal type (``user``, ``service``, ``none``).
"""

from __future__ import annotations

import contextvars
import re
import time
import uuid
from dataclasses import dataclass
from typing import Any

from host.logging import REQUEST_ID, Logger

ASGIApp = Any
_SAFE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


@dataclass
class _Request:
    principal: str | None = None


_CURRENT: contextvars.ContextVar[_Request | None] = contextvars.ContextVar("greenroom_request", default=None)


def note_principal(principal_type: str) -> None:
    """Record the principal type of the request being served (for its access-log line)."""
    request = _CURRENT.get()
    if request is not None:
        request.principal = principal_type


class AccessLog:
    """ASGI middleware: request ids on every line, and one access-log line per request when enabled."""

    def __init__(self, app: ASGIApp, logger: Logger, *, enabled: bool) -> None:
        self._app = app
        self._logger = logger.child(type="access")
        self._enabled = enabled

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self._app(scope, receive, send)
            return
        sent = dict(scope.get("headers") or ()).get(b"x-request-id", b"").decode("latin-1")
        request_id = sent if _SAFE_ID.match(sent) else uuid.uuid4().hex
        token = REQUEST_ID.set(request_id)
        request = _Request()
        current = _CURRENT.set(request)
        status = 101 if scope["type"] == "websocket" else 500
        started = time.perf_counter()

        async def send_with_id(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] in ("http.response.start", "websocket.http.response.start"):
                status = int(message["status"])
                message = {**message, "headers": [*message.get("headers", ()), (b"x-request-id", request_id.encode())]}
            elif message["type"] == "websocket.close" and status == 101:
                status = int(message.get("code", 1000))
            await send(message)

        try:
            await self._app(scope, receive, send_with_id)
        finally:
            if self._enabled:
                self._logger.info(
                    f"{scope.get('method', 'GET')} {scope.get('path', '/')} {status}",  # noqa: G004 - host Logger
                    method=scope.get("method", "WEBSOCKET") if scope["type"] == "http" else "WEBSOCKET",
                    path=scope.get("path", "/"),
                    status=status,
                    durationMs=round((time.perf_counter() - started) * 1000, 1),
                    principal=request.principal or "none",
                )
            _CURRENT.reset(current)
            REQUEST_ID.reset(token)
