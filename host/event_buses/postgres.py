"""PostgreSQL ``LISTEN``/``NOTIFY`` event bus.

Every process keeps one dedicated connection that ``LISTEN``\\ s on a channel
(``greenroom_events`` by default) and reconnects with back-off when it is
lost; a small pool publishes with ``SELECT pg_notify(channel, payload)``.

``NOTIFY`` payloads must stay under 8000 bytes. A larger envelope is written
to the table ``greenroom_event_payloads`` and only its id is notified (one
statement does both); the receivers read the row by id. Rows older than the retention (5 minutes by
default) are deleted by every process, at most once a minute.

Delivery is at-most-once: events published while a listener is reconnecting
are not replayed to it.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import asyncpg

from host.aio import cancel_and_wait
from host.event_buses.base import EnvelopePublisher, InboundDispatcher, reconnect
from host.event_buses.envelope import decode
from host.events import Delivery

if TYPE_CHECKING:
    from host.logging import Logger

#: Envelopes at or above this many bytes go through the payload table (PostgreSQL's limit is 8000).
MAX_NOTIFY_BYTES = 7900
DEFAULT_CHANNEL = "greenroom_events"
DEFAULT_TABLE = "greenroom_event_payloads"
CLEANUP_INTERVAL_SECONDS = 60.0

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
# Errors that mean "the database is unreachable or the connection broke", as opposed to bugs.
_CONNECTION_ERRORS = (OSError, asyncio.TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError)


class PostgresBus(EnvelopePublisher):
    """Carries events between processes through PostgreSQL ``LISTEN``/``NOTIFY``.

    ``connect_kwargs`` are passed to :func:`asyncpg.connect` (``dsn`` or
    ``host``/``port``/``user``/``password``/``database``). Every process of
    one deployment must use the same database and ``channel``.
    """

    name = "postgres"

    def __init__(
        self,
        connect_kwargs: dict[str, Any],
        logger: Logger,
        *,
        channel: str = DEFAULT_CHANNEL,
        table: str = DEFAULT_TABLE,
        pool_size: int = 4,
        payload_retention: timedelta = timedelta(minutes=5),
        keepalive_interval: float = 30.0,
    ) -> None:
        for label, value in (("channel", channel), ("table", table)):
            if not _IDENTIFIER.match(value):
                raise ValueError(f"Invalid PostgreSQL events {label} '{value}', expected a plain identifier")
        self._connect_kwargs = dict(connect_kwargs)
        self._logger = logger
        self.channel = channel
        self._table = table
        self._pool_size = pool_size
        self._retention = payload_retention
        self._keepalive_interval = keepalive_interval
        self._dispatcher = InboundDispatcher(self.name, logger, resolve=self._read_stored)
        self._pool: asyncpg.Pool | None = None
        self._listener: asyncpg.Connection | None = None
        self._lost = asyncio.Event()
        self._supervisor: asyncio.Task[None] | None = None
        self._last_cleanup = 0.0
        self._notifier: asyncpg.Connection | None = None
        self._pending: list[tuple[str, asyncio.Future[None]]] = []
        self._flusher: asyncio.Task[None] | None = None

    @property
    def origin(self) -> str:
        """The id this process puts on the events it publishes."""
        return self._dispatcher.origin

    async def start(self, deliver: Delivery) -> None:
        """Open the publish pool and the ``LISTEN`` connection; raises if PostgreSQL is unreachable."""
        self._dispatcher.start(deliver)
        self._pool = await asyncpg.create_pool(min_size=1, max_size=self._pool_size, **self._connect_kwargs)
        await self._ensure_table()
        await self._listen()
        self._supervisor = asyncio.get_running_loop().create_task(self._supervise(), name="postgres-bus-listener")

    async def _send(self, envelope: bytes, topic: str) -> None:
        if self._pool is None:
            raise RuntimeError("PostgresBus.publish called before start")
        try:
            if len(envelope) < MAX_NOTIFY_BYTES:
                await self._notify_batched(envelope.decode())
                return
            # One statement (atomic on its own): the row is committed when the reference is notified.
            await self._pool.execute(
                f"WITH stored AS (INSERT INTO {self._table} (body) VALUES (convert_from($3::bytea, 'UTF8')) RETURNING id)"
                " SELECT pg_notify($1, json_build_object('o', $2::text, 'r', stored.id)::text) FROM stored",
                self.channel,
                self.origin,
                envelope,
            )
        except _CONNECTION_ERRORS as error:
            self._logger.error('Failed to publish event on topic "%s" to the postgres bus', topic, exc_info=error)

    async def _notify_batched(self, payload: str) -> None:
        """NOTIFY through one dedicated connection, many payloads per round trip.

        Publishes that arrive while a batch is on the wire wait for the next
        batch, which is sent with one pipelined ``executemany``; this keeps
        their order and costs one round trip per batch instead of a pool
        checkout (and reset) per event.
        """
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((payload, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.get_running_loop().create_task(self._flush(), name="postgres-bus-notify")
        await future

    async def _flush(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            try:
                if self._notifier is None or self._notifier.is_closed():
                    self._notifier = await asyncpg.connect(
                        **self._connect_kwargs,
                        server_settings={"application_name": f"greenroom-events-pub-{self.origin[:12]}"},
                    )
                await self._notifier.executemany(
                    "SELECT pg_notify($1, $2)", [(self.channel, payload) for payload, _ in batch]
                )
            except BaseException as error:
                if self._notifier is not None and not self._notifier.is_closed():
                    self._notifier.terminate()
                self._notifier = None
                for _, future in batch:
                    if not future.done():
                        future.set_exception(error if isinstance(error, Exception) else ConnectionError(str(error)))
                if not isinstance(error, Exception):
                    raise
                continue
            for _, future in batch:
                if not future.done():
                    future.set_result(None)

    async def stop(self) -> None:
        """Stop listening and close every connection."""
        await cancel_and_wait(self._supervisor)
        self._supervisor = None
        await self._close_listener()
        if self._flusher is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(self._flusher), timeout=5)
        if self._notifier is not None:
            self._notifier.terminate()
            self._notifier = None
        await self._dispatcher.stop()
        if self._pool is not None:
            pool, self._pool = self._pool, None
            try:
                await asyncio.wait_for(pool.close(), timeout=5)
            except (TimeoutError, *_CONNECTION_ERRORS):
                pool.terminate()

    # -- listening -------------------------------------------------------------

    async def _listen(self) -> None:
        conn = await asyncpg.connect(
            **self._connect_kwargs, server_settings={"application_name": f"greenroom-events-{self.origin[:12]}"}
        )
        try:
            self._lost.clear()
            conn.add_termination_listener(lambda _conn: self._lost.set())
            await conn.add_listener(self.channel, self._on_notify)
        except BaseException:
            conn.terminate()
            raise
        self._listener = conn

    def _on_notify(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        self._dispatcher.push(payload)

    async def _supervise(self) -> None:
        """Keep the ``LISTEN`` connection alive: ping it, and reconnect with back-off when it drops."""
        while True:
            if self._listener is not None and not self._lost.is_set():
                try:
                    await asyncio.wait_for(self._lost.wait(), timeout=self._keepalive_interval)
                except TimeoutError:
                    try:
                        await self._listener.fetchval("SELECT 1", timeout=10)
                        await self._cleanup_if_due()
                        continue
                    except _CONNECTION_ERRORS as error:
                        self._logger.warning("Postgres events listener stopped answering", exc_info=error)
                self._logger.warning("Postgres events listener connection lost; reconnecting")
                await self._close_listener()
            await reconnect(self._listen, _CONNECTION_ERRORS, self._failed_to_reconnect)
            self._logger.info("Postgres events listener reconnected")

    def _failed_to_reconnect(self, error: BaseException | None) -> None:
        self._logger.warning("Postgres events listener failed to reconnect", exc_info=error)

    async def _close_listener(self) -> None:
        conn, self._listener = self._listener, None
        if conn is None or conn.is_closed():
            return
        try:
            await asyncio.wait_for(conn.close(), timeout=2)
        except (TimeoutError, *_CONNECTION_ERRORS):
            conn.terminate()

    # -- large payloads ----------------------------------------------------------

    async def _ensure_table(self) -> None:
        assert self._pool is not None
        async with self._pool.acquire() as conn, conn.transaction():
            # Serialise concurrent CREATE ... IF NOT EXISTS from workers starting together.
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", self._table)
            await conn.execute(
                f"CREATE TABLE IF NOT EXISTS {self._table} ("
                " id bigserial PRIMARY KEY,"
                " created_at timestamptz NOT NULL DEFAULT now(),"
                " body text NOT NULL)"
            )
            await conn.execute(f"CREATE INDEX IF NOT EXISTS {self._table}_created_at_idx ON {self._table} (created_at)")

    async def _read_stored(self, reference: Any) -> dict[str, Any] | None:
        assert self._pool is not None
        body = await self._pool.fetchval(f"SELECT body FROM {self._table} WHERE id = $1", int(reference))
        return None if body is None else decode(body)

    async def _cleanup_if_due(self) -> None:
        """Delete stored payloads older than the retention; runs from the keepalive tick."""
        now = time.monotonic()
        if self._pool is None or now - self._last_cleanup < CLEANUP_INTERVAL_SECONDS:
            return
        self._last_cleanup = now
        try:
            await self._pool.execute(
                f"DELETE FROM {self._table} WHERE created_at < now() - $1::interval", self._retention
            )
        except _CONNECTION_ERRORS as error:
            self._logger.warning("Failed to delete old event payloads", exc_info=error)
