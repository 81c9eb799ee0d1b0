"""The ASGI application: a backend plus its root router, started by ASGI lifespan.

``create_app()`` is what gunicorn's uvicorn workers load (``host.asgi:app``);
tests call it directly and serve it with uvicorn in-process.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Iterable
from typing import Any

from host.access_log import AccessLog
from host.backend import Backend
from host.config import Config
from host.connection_errors import short_error
from host.cors import with_cors
from host.defaults import create_backend
from host.security_headers import with_security_headers
from host.server_limits import config_paths_from_env
from host.services import core_services


class GreenroomApp:
    """An ASGI app that starts the backend on lifespan startup and stops it on shutdown."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self._router: Any = None

    async def start(self) -> None:
        """Start the backend (idempotent with the lifespan protocol)."""
        await self.backend.start()
        router = await self.backend.get_service(core_services.root_http_router)
        config = await self.backend.get_service(core_services.config)
        logger = await self.backend.get_service(core_services.root_logger)
        access_log = bool(config.get_optional_boolean("backend.logger.accessLog"))
        self._router = AccessLog(with_security_headers(with_cors(router, config), config), logger, enabled=access_log)
        # Everything built at startup lives as long as the process: keep it out of
        # the cyclic collector, whose full passes would otherwise stall requests.
        gc.collect()
        gc.freeze()

    async def stop(self) -> None:
        """Stop the backend (and let the collector see what startup froze)."""
        await self.backend.stop()
        gc.unfreeze()

    async def begin_shutdown(self) -> None:
        """First phase of a graceful stop, while still serving (see :meth:`Backend.begin_shutdown`)."""
        await self.backend.begin_shutdown()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if self._router is None:
            from host.http import send_json

            if scope["type"] == "http":
                await send_json(send, 503, {"message": "Backend has not started yet", "status": "error"})
            return
        await self._router(scope, receive, send)

    async def _lifespan(self, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.start()
                except Exception as error:
                    # One line an operator can act on; the traceback only at debug level.
                    logger = logging.getLogger("greenroom")
                    logger.error("Backend startup failed: %s", short_error(error))
                    logger.debug("Backend startup failed", exc_info=error)
                    await send({"type": "lifespan.startup.failed", "message": ""})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.stop()
                await send({"type": "lifespan.shutdown.complete"})
                return


def create_app(
    config_paths: Iterable[str] | None = None,
    *,
    overrides: dict[str, Any] | None = None,
    features: Iterable[Any] = (),
    discover: bool = True,
) -> GreenroomApp:
    """Build the ASGI app from config files (default: ``GREENROOM_CONFIG``) and extra features."""
    paths = list(config_paths) if config_paths is not None else config_paths_from_env()
    config = Config.load(paths, overrides=overrides)
    backend = create_backend(config, discover=discover)
    for feature in features:
        backend.add(feature)
    return GreenroomApp(backend)
