"""Graceful stop of a served worker: readiness turns 503 before the listener closes.

Plain uvicorn closes its listening socket the moment SIGTERM arrives, so a
load balancer polling readiness sees 200 and then "connection refused", never
503. :class:`DrainingServer` does what Backstage does instead: on the first
SIGTERM (or SIGINT) it runs the app's before-shutdown hooks while it keeps
serving — readiness turns 503, then ``backend.lifecycle.serverShutdownDelay``
passes — and only then starts uvicorn's own shutdown (listener closed,
in-flight requests finished, lifespan shutdown, where plugins finish their
background work within ``backend.lifecycle.shutdownTimeout``). A second signal
skips what is left of the delay.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from types import FrameType
from typing import Any

import uvicorn

_log = logging.getLogger("uvicorn.error")


class DrainingServer(uvicorn.Server):
    """A uvicorn server whose first stop signal runs ``begin_shutdown`` before it stops serving."""

    def __init__(
        self,
        config: uvicorn.Config,
        begin_shutdown: Callable[[], Awaitable[None]] | None,
        on_started: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(config)
        self._begin_shutdown = begin_shutdown
        self._on_started = on_started
        self._loop: asyncio.AbstractEventLoop | None = None
        self._draining = False
        self._drain: asyncio.Task[None] | None = None

    async def serve(self, sockets: Any = None) -> None:
        """Serve as uvicorn does, remembering the loop for the signal handler."""
        self._loop = asyncio.get_running_loop()
        await super().serve(sockets=sockets)

    async def startup(self, sockets: Any = None) -> None:
        """uvicorn's startup (lifespan, listener), then ``on_started`` once the app serves."""
        await super().startup(sockets=sockets)
        if self.started and self._on_started is not None:
            self._on_started()

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        """First signal: drain, then exit; any later one: uvicorn's behaviour (exit now, or force)."""
        if self._draining or self.should_exit or self._begin_shutdown is None or self._loop is None:
            super().handle_exit(sig, frame)
            return
        self._draining = True
        # Runs in the signal handler: only schedule work on the loop.
        self._loop.call_soon_threadsafe(self._start_drain)

    def _start_drain(self) -> None:
        self._drain = asyncio.get_running_loop().create_task(self._drain_then_exit(), name="greenroom-drain")

    async def _drain_then_exit(self) -> None:
        assert self._begin_shutdown is not None
        try:
            await self._begin_shutdown()
        except Exception:  # noqa: BLE001 - last resort: a failing hook must not keep the worker alive
            _log.exception("Before-shutdown hooks failed")
        finally:
            self.should_exit = True
