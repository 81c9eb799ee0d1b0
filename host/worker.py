"""The gunicorn worker class: uvicorn with Greenroom's WebSocket keepalive and graceful drain.

An ASGI app cannot send ping frames itself, so the server does: every 30 s a
ping, and a socket that has not answered within 60 s (two periods) is dropped,
as Backstage's signals backend does. ``backend.websocket.pingInterval``
changes the period (``greenroom start`` passes it to the workers).

Connection limits (``backend.limits``: headers timeout, header size, keep-alive
timeout, connection cap, WebSocket message size) come from the config files in
``GREENROOM_CONFIG``; see :mod:`host.http_protocol`.

On SIGTERM the worker keeps serving while readiness turns 503 and the drain
delay passes, then closes its listener (see :mod:`host.shutdown`).

A worker whose startup fails exits with gunicorn's boot-error code, which
stops the whole instance, only while no worker of this instance has started
yet (a broken config or an unreachable database fails the first start at
once). A later one, replacing a worker that died, waits
``RESPAWN_DELAY_SECONDS`` and exits normally, so gunicorn starts another and
the running workers keep serving (e.g. while PostgreSQL restarts).
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import sys
from typing import Any

from gunicorn.arbiter import Arbiter
from uvicorn_worker import UvicornWorker

from host.shutdown import DrainingServer

PING_INTERVAL_SECONDS = 30.0
PING_TIMEOUT_SECONDS = 60.0
RESPAWN_DELAY_SECONDS = 5.0

_log = logging.getLogger("uvicorn.error")
# Created when gunicorn's master loads the worker class, so every forked worker shares it:
# set once any worker of this instance has started serving.
_instance_served = multiprocessing.RawValue("b", 0)


def _mark_served() -> None:
    _instance_served.value = 1


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
        "server_header": False,  # no "server: uvicorn" (Backstage sends none either)
    }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        interval = os.environ.get("GREENROOM_WS_PING_INTERVAL")
        if interval:
            period = float(interval)
            self.CONFIG_KWARGS = {**self.CONFIG_KWARGS, "ws_ping_interval": period, "ws_ping_timeout": 2 * period}
        self.CONFIG_KWARGS = {**self.CONFIG_KWARGS, **_limit_options()}
        super().__init__(*args, **kwargs)

    async def _serve(self) -> None:
        """uvicorn_worker's ``_serve`` with :class:`host.shutdown.DrainingServer` (readiness 503 first)."""
        self.config.app = self.wsgi
        server = DrainingServer(self.config, getattr(self.wsgi, "begin_shutdown", None), on_started=_mark_served)
        self._install_sigquit_handler()
        try:
            await server.serve(sockets=self.sockets)
        except SystemExit:  # uvicorn exits with its own code 3 when the app's startup fails
            if server.started:
                raise
        if not server.started:
            if not _instance_served.value:
                sys.exit(Arbiter.WORKER_BOOT_ERROR)  # the first start: fail fast, stop the instance
            _log.warning(
                f"Worker startup failed; exiting in {RESPAWN_DELAY_SECONDS:g} s for gunicorn to start "
                "another, the other workers keep serving"
            )
            await asyncio.sleep(RESPAWN_DELAY_SECONDS)  # keeps gunicorn from restarting it in a tight loop
            sys.exit(1)


def _limit_options() -> dict[str, Any]:
    """uvicorn settings enforcing ``backend.limits`` of the configured files."""
    from host.config import Config
    from host.http_protocol import raise_open_files_limit, server_options
    from host.server_limits import ServerLimits, config_paths_from_env

    raise_open_files_limit()  # before the limits are read: the default connection cap follows it
    return server_options(ServerLimits.from_config(Config.load(config_paths_from_env())))
