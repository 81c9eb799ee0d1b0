"""The signals backend plugin (``pluginId: signals``).

Routes under ``/api/signals`` (all past the credentials barrier; the
WebSocket handshake authenticates itself):

* ``/`` - the WebSocket (see :mod:`plugin_signals.websocket`);
* ``/health`` - ``{"status": "ok"}``;
* ``/client.js`` - the browser client (see ``docs/signals.md``).

Signals arrive on the events topic ``signals`` from any process (the events
bus carries them between workers and instances) and are delivered to this
process's sockets. On shutdown every socket is closed with 1012 (service
restart), so clients reconnect to the next process.
"""

from __future__ import annotations

import secrets
from typing import Any

from host import core_services, create_backend_plugin
from host.features import Registrar
from plugin_signals.connections import SignalLimits, SignalManager
from plugin_signals.routes import ClientScriptResource, HealthResource
from plugin_signals.service import SIGNALS_TOPIC
from plugin_signals.websocket import SignalsWebSocket

#: Close code sent to every socket on shutdown. Backstage's browser client
#: reconnects on any code except 1000 and 1001, so "going away" (1001) would
#: leave browsers without signals after a deploy; 1012 ("service restart")
#: closes cleanly and makes them reconnect. uvicorn uses 1012 as well.
CLOSE_ON_SHUTDOWN = 1012


def register(reg: Registrar) -> None:
    """Register the plugin's ``init``."""

    async def init(
        router: Any, logger: Any, auth: Any, user_info: Any, events: Any, root_lifecycle: Any, config: Any
    ) -> None:
        manager = SignalManager(logger, SignalLimits.from_config(config))
        router.add_route("/", SignalsWebSocket(manager, auth, user_info, logger))
        router.add_route("/health", HealthResource())
        router.add_route("/client.js", ClientScriptResource())
        for path in ("/", "/health", "/client.js"):  # the WebSocket handshake authenticates itself
            router.add_auth_policy(path, allow="unauthenticated")
        # A distinct id per process: every process receives every signal (fan-out).
        await events.subscribe(f"signals-{secrets.token_hex(8)}", [SIGNALS_TOPIC], manager.on_event)

        async def close_sockets() -> None:
            await manager.close_all(CLOSE_ON_SHUTDOWN)

        root_lifecycle.add_shutdown_hook(close_sockets)

    reg.register_init(
        deps={
            "router": core_services.http_router,
            "logger": core_services.logger,
            "auth": core_services.auth,
            "user_info": core_services.user_info,
            "events": core_services.events,
            "root_lifecycle": core_services.root_lifecycle,
            "config": core_services.config,
        },
        init=init,
    )


signals_plugin = create_backend_plugin("signals", register)
