"""The events service: publish/subscribe between plugins, workers and instances.

Publishing calls every local subscriber of the topic (in this process) and
hands the event to the configured *bus*, which carries it to every other
process (gunicorn worker or host instance); those processes call their own
local subscribers. Delivery is fan-out and at-most-once: a process that is
not running when an event is published does not receive it later.

``publish_many`` hands a whole batch at once to subscribers that take batches
(``subscribe(..., on_batch=...)``) and one event at a time to the others; on
the bus the batch is one message, delivered the same way in every process.

Buses (``events.bus``):

* ``inprocess`` - nothing leaves the process; the default with SQLite.
* ``postgres`` - PostgreSQL ``LISTEN``/``NOTIFY``; the default with PostgreSQL.
* ``redis`` - Redis pub/sub at ``events.redis.url``.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from host.logging import Logger


@dataclass(frozen=True)
class Event:
    """One published event."""

    topic: str
    payload: Any
    metadata: dict[str, Any] = field(default_factory=dict)


EventHandler = Callable[[Event], Awaitable[None]]
#: Takes a whole batch published with ``publish_many``: its topic and its payloads, in order.
BatchHandler = Callable[[str, Sequence[Any]], Awaitable[None]]


@dataclass(frozen=True)
class EventBatch:
    """Payloads published together on one topic (one bus message)."""

    topic: str
    payloads: Sequence[Any]


#: What a bus hands to the process for each message it receives: one event, or a batch.
Delivery = Callable[[Event | EventBatch], Awaitable[None]]


class EventBus(Protocol):
    """Carries events between processes. Implementations live in :mod:`host.event_buses`."""

    name: str

    async def start(self, deliver: Delivery) -> None:
        """Start receiving events published by *other* processes and pass each (or each batch) to ``deliver``."""

    async def publish(self, event: Event) -> None:
        """Send ``event`` to every other process."""

    async def stop(self) -> None:
        """Stop receiving and release connections."""


async def publish_all(bus: EventBus, batch: EventBatch) -> None:
    """Hand ``batch`` to ``bus`` as one message when it supports batches, else event by event."""
    publish_batch = getattr(bus, "publish_batch", None)
    if publish_batch is not None:
        await publish_batch(batch)
        return
    for payload in batch.payloads:
        await bus.publish(Event(batch.topic, payload))


class InProcessBus:
    """A bus that never leaves the process (single worker, SQLite)."""

    name = "inprocess"

    async def start(self, deliver: Delivery) -> None:
        return None

    async def publish(self, event: Event) -> None:
        return None

    async def publish_batch(self, batch: EventBatch) -> None:
        return None

    async def stop(self) -> None:
        return None


@dataclass
class _Subscription:
    id: str
    topics: frozenset[str]
    handler: EventHandler
    batch_handler: BatchHandler | None = None


class RootEventsService:
    """The process-wide event hub shared by every plugin (root scoped)."""

    def __init__(self, bus: EventBus, logger: Logger) -> None:
        self.bus = bus
        self.process_id = uuid.uuid4().hex
        self._logger = logger
        self._subscriptions: list[_Subscription] = []
        self._started = False

    async def start(self) -> None:
        """Connect the bus; called once by the backend at startup."""
        if not self._started:
            await self.bus.start(self._deliver_incoming)
            self._started = True

    async def stop(self) -> None:
        """Disconnect the bus."""
        if self._started:
            await self.bus.stop()
            self._started = False

    async def publish(self, topic: str, payload: Any, metadata: dict[str, Any] | None = None) -> None:
        """Deliver to local subscribers, then to every other process through the bus."""
        event = Event(topic, payload, dict(metadata or {}))
        await self._deliver_local(event)
        await self.bus.publish(event)

    async def publish_many(self, topic: str, payloads: Sequence[Any]) -> None:
        """Publish many events on ``topic`` at once: local delivery in order, one bus message."""
        batch = EventBatch(topic, list(payloads))
        await self._deliver_batch(batch)
        await publish_all(self.bus, batch)

    async def subscribe(
        self, id: str, topics: Sequence[str], on_event: EventHandler, on_batch: BatchHandler | None = None
    ) -> None:
        """Call ``on_event`` for every event on ``topics`` from any process.

        With ``on_batch``, a batch (``publish_many``) is passed to it whole instead of event by event.
        """
        self._subscriptions.append(_Subscription(id, frozenset(topics), on_event, on_batch))

    async def _deliver_incoming(self, item: Event | EventBatch) -> None:
        if isinstance(item, EventBatch):
            await self._deliver_batch(item)
        else:
            await self._deliver_local(item)

    async def _deliver_batch(self, batch: EventBatch) -> None:
        """Each subscriber of the topic gets the batch: whole when it takes batches, else event by event."""
        for sub in [s for s in self._subscriptions if batch.topic in s.topics]:
            if sub.batch_handler is not None:
                await self._call(sub, batch.topic, sub.batch_handler(batch.topic, batch.payloads))
                continue
            for payload in batch.payloads:
                await self._call(sub, batch.topic, sub.handler(Event(batch.topic, payload)))

    async def _call(self, sub: _Subscription, topic: str, call: Awaitable[None]) -> None:
        try:
            await call
        except Exception as error:
            self._logger.error('Subscriber "%s" failed to process event for topic "%s"', sub.id, topic, exc_info=error)

    async def _deliver_local(self, event: Event) -> None:
        targets = [s for s in self._subscriptions if event.topic in s.topics]
        if not targets:
            return
        if len(targets) == 1:  # the common case: no gather, no extra tasks
            try:
                await targets[0].handler(event)
            except Exception as error:
                self._logger.error(
                    'Subscriber "%s" failed to process event for topic "%s"', targets[0].id, event.topic, exc_info=error
                )
            return
        results = await asyncio.gather(*(s.handler(event) for s in targets), return_exceptions=True)
        for sub, result in zip(targets, results, strict=True):
            if isinstance(result, BaseException):
                self._logger.error(
                    'Subscriber "%s" failed to process event for topic "%s"',
                    sub.id,
                    event.topic,
                    exc_info=result,
                )


class EventsService:
    """The plugin-scoped view of :class:`RootEventsService`; subscription ids get the plugin prefix."""

    def __init__(self, root: RootEventsService, plugin_id: str) -> None:
        self._root = root
        self._plugin_id = plugin_id

    async def publish(self, topic: str, payload: Any, metadata: dict[str, Any] | None = None) -> None:
        """Publish ``payload`` on ``topic`` to every subscriber in every process."""
        await self._root.publish(topic, payload, metadata)

    async def publish_many(self, topic: str, payloads: Sequence[Any]) -> None:
        """Publish many payloads on ``topic`` at once (one message on the bus)."""
        await self._root.publish_many(topic, payloads)

    async def subscribe(
        self, id: str, topics: Sequence[str], on_event: EventHandler, on_batch: BatchHandler | None = None
    ) -> None:
        """Subscribe ``on_event`` (and ``on_batch`` for whole batches) to ``topics`` as ``<pluginId>.<id>``."""
        await self._root.subscribe(f"{self._plugin_id}.{id}", topics, on_event, on_batch)
