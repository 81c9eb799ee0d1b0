"""Pieces shared by the cross-process buses: inbound dispatch and reconnect back-off."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from tenacity import AsyncRetrying, retry_if_exception_type, wait_random_exponential

from host.aio import cancel_and_wait
from host.event_buses.envelope import decode, encode_batch, encode_event, to_events
from host.events import Delivery, Event, EventBatch

if TYPE_CHECKING:
    from host.logging import Logger

#: Turns an out-of-band reference (``{"r": ...}`` envelopes) into a full envelope, or ``None`` if it is gone.
Resolver = Callable[[Any], Awaitable[dict[str, Any] | None]]


#: Waits between reconnect attempts: a random part of 0.2 s, doubling each failure, at most 30 s ("full jitter",
#: so the workers of a restarted server do not all come back at once).
RECONNECT_WAIT = wait_random_exponential(multiplier=0.2, max=30.0)


async def reconnect(
    connect: Callable[[], Awaitable[None]],
    errors: tuple[type[BaseException], ...],
    on_failure: Callable[[BaseException | None], None],
) -> None:
    """Call ``connect`` until it succeeds, backing off (:data:`RECONNECT_WAIT`, through tenacity) after each failure.

    A failure with one of ``errors`` is passed to ``on_failure`` and retried; any other error
    (and cancellation) propagates.
    """
    retrying = AsyncRetrying(
        wait=RECONNECT_WAIT,
        retry=retry_if_exception_type(errors),
        before_sleep=lambda state: on_failure(state.outcome.exception() if state.outcome else None),
        reraise=True,
    )
    async for attempt in retrying:
        with attempt:
            await connect()


class InboundDispatcher:
    """Decodes envelopes received from other processes and delivers them in arrival order.

    Receivers call :meth:`push` (safe from synchronous driver callbacks); one
    task decodes each envelope, drops this process's own events, resolves
    out-of-band references and awaits ``deliver``. Delivery is sequential so
    events from one publisher keep their order.
    """

    def __init__(self, bus_name: str, logger: Logger, resolve: Resolver | None = None) -> None:
        self.origin = uuid.uuid4().hex
        self._bus_name = bus_name
        self._logger = logger
        self._resolve = resolve
        self._queue: asyncio.Queue[str | bytes] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._deliver: Delivery | None = None

    def start(self, deliver: Delivery) -> None:
        """Start the dispatch task."""
        self._deliver = deliver
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name=f"{self._bus_name}-bus-dispatch")

    async def stop(self) -> None:
        """Stop dispatching; envelopes still queued are dropped."""
        await cancel_and_wait(self._task)
        self._task = None

    def push(self, raw: str | bytes) -> None:
        """Queue one raw envelope received from the bus."""
        self._queue.put_nowait(raw)

    async def _run(self) -> None:
        while True:
            raw = await self._queue.get()
            try:
                await self._dispatch(raw)
            except asyncio.CancelledError:
                raise
            except Exception as error:  # one bad message must not stop the bus
                self._logger.error("Failed to deliver an event received on the %s bus", self._bus_name, exc_info=error)

    async def _dispatch(self, raw: str | bytes) -> None:
        envelope = decode(raw)
        if envelope["o"] == self.origin:
            return
        if "r" in envelope:
            if self._resolve is None:
                raise ValueError("event envelope holds a reference but the bus cannot resolve references")
            resolved = await self._resolve(envelope["r"])
            if resolved is None:
                self._logger.warning(
                    "Event %s on the %s bus expired before it was read; dropped", envelope["r"], self._bus_name
                )
                return
            envelope = resolved
        assert self._deliver is not None
        carried = to_events(envelope)
        if isinstance(carried, EventBatch):
            await self._deliver(carried)
            return
        for event in carried:
            await self._deliver(event)


class EnvelopePublisher:
    """``publish`` and ``publish_batch`` for a bus that sends encoded envelopes with ``_send``."""

    @property
    def origin(self) -> str:
        """The id this process puts on the events it publishes."""
        raise NotImplementedError

    async def _send(self, envelope: bytes, topic: str) -> None:
        raise NotImplementedError

    async def publish(self, event: Event) -> None:
        """Send ``event`` to every other process; failures are logged, not raised (at-most-once delivery)."""
        await self._send(encode_event(self.origin, event), event.topic)

    async def publish_batch(self, batch: EventBatch) -> None:
        """Send a batch of payloads to every other process as one message."""
        if batch.payloads:
            await self._send(encode_batch(self.origin, batch), batch.topic)
