"""The signals backend plugin (``pluginId: signals``).

Routes under ``/api/signals`` (all past the credentials barrier except
``/events``; the WebSocket handshake authenticates itself):

* ``/`` - the WebSocket (see :mod:`plugin_signals.websocket`);
* ``/events`` - the Server-Sent Events transport (see :mod:`plugin_signals.sse`);
* ``/health`` - ``{"status": "ok"}``;
* ``/client.js`` - the browser client (see ``docs/signals.md``).

Signals arrive on the events topic ``signals`` from any process (the events
bus carries them between workers and instances), are put in stream order by
a :class:`~plugin_signals.sequencer.Sequencer` and delivered to this
process's sockets and streams. The signal history (:mod:`plugin_signals.history`)
lives in Redis Streams with ``events.bus: redis``, else in this plugin's
database; the scheduler prunes it. On shutdown every socket is closed with
1012 (service restart), so clients reconnect to the next process, and every
event stream ends.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from host import SIGNALS_TOPIC, Config, Event, Provided, Registrar, bus_kind, core_services, create_backend_plugin
from plugin_signals.config_schema import SignalsConfig
from plugin_signals.connections import SignalLimits, SignalManager
from plugin_signals.history import HistorySettings, RedisHistory, SignalHistory, SqlHistory
from plugin_signals.routes import ClientScriptResource, HealthResource
from plugin_signals.sequencer import Sequencer
from plugin_signals.service import signals_history_ref, signals_service_factory
from plugin_signals.sse import SignalEventsResource, SseSettings
from plugin_signals.websocket import SignalsWebSocket

MIGRATIONS = Path(__file__).parent / "migrations"

#: Close code sent to every socket on shutdown. Backstage's browser client
#: reconnects on any code except 1000 and 1001, so "going away" (1001) would
#: leave browsers without signals after a deploy; 1012 ("service restart")
#: closes cleanly and makes them reconnect. uvicorn uses 1012 as well.
CLOSE_ON_SHUTDOWN = 1012


async def create_history(config: Config, database: Any, settings: HistorySettings) -> SignalHistory:
    """Redis Streams with the Redis bus (keys named after ``events.redis.channel``), else the plugin's database."""
    if bus_kind(config) == "redis":
        url = config.get_string("events.redis.url")
        namespace = config.get_optional_string("events.redis.channel") or "greenroom:events"
        return RedisHistory(url, namespace, settings)
    return SqlHistory(await database.get_engine(), settings)


def register(reg: Registrar) -> None:
    """Register the plugin's ``init``."""

    async def init(
        router: Any,
        logger: Any,
        auth: Any,
        http_auth: Any,
        user_info: Any,
        events: Any,
        root_lifecycle: Any,
        config: Any,
        database: Any,
        scheduler: Any,
        provided_history: Provided[SignalHistory | None],
    ) -> None:
        await database.migrate(MIGRATIONS)
        settings = HistorySettings.from_config(config)
        history: SignalHistory | None = None
        if settings.enabled:
            history = await create_history(config, database, settings)
            await history.start()
        manager = SignalManager(logger, SignalLimits.from_config(config), history)
        sequencer = Sequencer(
            manager.deliver, history, logger, settings.gap_timeout.total_seconds(), deliver_many=manager.deliver_many
        )
        if history is not None:
            sequencer.reset(await history.head())
        sse = SignalEventsResource(manager, http_auth, user_info, logger, SseSettings.from_config(config))
        router.add_route("/", SignalsWebSocket(manager, auth, user_info, logger))
        router.add_route("/events", sse)
        router.add_route("/health", HealthResource())
        router.add_route("/client.js", ClientScriptResource())
        for path in ("/", "/health", "/client.js"):  # the WebSocket handshake authenticates itself
            router.add_auth_policy(path, allow="unauthenticated")

        async def on_signal(event: Event) -> None:
            sequencer.push(event.payload)

        async def on_signals(_topic: str, signals: Sequence[Any]) -> None:
            sequencer.push_many(signals)

        # A distinct id per process: every process receives every signal (fan-out); a batch arrives whole.
        await events.subscribe(f"signals-{secrets.token_hex(8)}", [SIGNALS_TOPIC], on_signal, on_signals)

        if history is not None:
            await scheduler.schedule_task(
                id="signals-history-prune",
                frequency=settings.prune_interval,
                timeout=timedelta(minutes=5),
                fn=history.prune,
            )

            async def advance() -> None:
                manager.advance(sequencer.watermark)

            await scheduler.schedule_task(
                id="signals-positions",
                frequency=settings.position_interval,
                timeout=timedelta(minutes=1),
                fn=advance,
                initial_delay=settings.position_interval,
                scope="local",
            )
        provided_history.provide(history)

        async def end_streams() -> None:
            await sse.close_all()

        async def close_sockets() -> None:
            await sse.close_all()
            await manager.close_all(CLOSE_ON_SHUTDOWN)
            await sequencer.stop()
            if history is not None:
                await history.stop()

        root_lifecycle.add_before_shutdown_hook(end_streams)
        root_lifecycle.add_shutdown_hook(close_sockets)

    reg.register_init(
        deps={
            "router": core_services.http_router,
            "logger": core_services.logger,
            "auth": core_services.auth,
            "http_auth": core_services.http_auth,
            "user_info": core_services.user_info,
            "events": core_services.events,
            "root_lifecycle": core_services.root_lifecycle,
            "config": core_services.config,
            "database": core_services.database,
            "scheduler": core_services.scheduler,
            "provided_history": signals_history_ref,
        },
        init=init,
    )


#: The signals plugin; it provides the host's ``signals_service_ref`` with its history-aware publisher.
signals_plugin = create_backend_plugin(
    "signals", register, config_schema={"signals": SignalsConfig}, services=[signals_service_factory]
)
