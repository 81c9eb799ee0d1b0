"""The gunicorn worker class: uvicorn with Greenroom's WebSocket keepalive.

An ASGI app cannot send ping frames itself, so the server does: every 30 s a
ping, and a socket that has not answered within 60 s (two periods) is dropped,
as Backstage's signals backend does. ``backend.websocket.pingInterval``
changes the period (``greenroom start`` passes it to the workers).
"""

from __future__ import annotations

import os
from typing import Any

from uvicorn_worker import UvicornWorker

PING_INTERVAL_SECONDS = 30.0
PING_TIMEOUT_SECONDS = 60.0


class GreenroomWorker(UvicornWorker):  # type: ignore[misc]
    """``uvicorn_worker.UvicornWorker`` with keepalive pings and the sans-io WebSocket protocol."""

    CONFIG_KWARGS: dict[str, Any] = {
        "loop": "auto",
        "http": "auto",
        "ws": "websockets-sansio",
        "ws_ping_interval": PING_INTERVAL_SECONDS,
        "ws_ping_timeout": PING_TIMEOUT_SECONDS,
        "lifespan": "on",
        "access_log": False,  # request logging is the proxy's job; it costs ~5% per request
    }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        interval = os.environ.get("GREENROOM_WS_PING_INTERVAL")
        if interval:
            period = float(interval)
            self.CONFIG_KWARGS = {**self.CONFIG_KWARGS, "ws_ping_interval": period, "ws_ping_timeout": 2 * period}
        super().__init__(*args, **kwargs)
