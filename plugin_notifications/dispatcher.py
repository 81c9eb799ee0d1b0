"""The outbox dispatcher: one per process, claiming due rows and calling the channels' delivery hooks.

It runs in every web worker, or, with ``notifications.delivery.dispatcher:
false`` there, only in ``greenroom deliveries dispatch`` processes (see
:mod:`plugin_notifications.cli`). Each durable channel has a loop
of its own (a lane), so one channel's backlog or stall never delays another's.
A lane is woken at once after a send (:meth:`Dispatcher.wake`, called by this
process's sender and by the events bus for sends in other processes), otherwise
it polls every ``notifications.delivery.pollInterval`` and sleeps until its
next retry falls due. Each round claims up to ``claimRows`` rows of its channel
under a lease, delivers them in batches of the channel's ``batch_size``, and
records every outcome: ``sent``/``skipped``
are final; ``retry`` backs off exponentially with jitter (or waits the
``retry_after`` given) until ``maxAttempts``, then dead-letters; ``failed``
dead-letters at once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from host import cancel_and_wait
from plugin_notifications.delivery import Delivery, DeliveryChannel, DeliveryOutcome, Digest
from plugin_notifications.models import utc_now
from plugin_notifications.outbox import DEAD, FAILED, PLAN_CHANNEL, SENT, SKIPPED, DeliveryConfig, OutboxItems
from plugin_notifications.outbox_store import OutboxStore, new_owner
from plugin_notifications.processing import DELIVER_HOOK, DIGEST_HOOK, Processor, ProcessorRegistry

#: Events topic announcing new outbox rows to the dispatchers of every process.
OUTBOX_TOPIC = "notifications.outbox"
_ERROR_LIMIT = 1000


class Dispatcher:
    """Delivers the outbox rows of the durable channels registered in this worker."""

    def __init__(
        self,
        store: OutboxStore,
        registry: ProcessorRegistry,
        config: DeliveryConfig,
        logger: Any,
        now: Callable[[], datetime] = utc_now,
    ) -> None:
        self._store = store
        self._now = now
        self._registry = registry
        self._config = config
        self._logger = logger
        self.owner = new_owner()
        #: One wake-up event per lane (channel), set by :meth:`wake`.
        self._wakes: dict[str, asyncio.Event] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False
        #: Plans the deliveries of a large send's planning row (the sender's ``plan_later``); set by the plugin.
        self.planner: Callable[[OutboxItems], Awaitable[list[dict[str, Any]]]] | None = None

    @property
    def channels(self) -> dict[str, tuple[Processor, DeliveryChannel]]:
        """The durable channels this dispatcher delivers."""
        return self._registry.durable_channels()

    def wake(self) -> None:
        """Start a round on every channel now (new rows were written)."""
        for event in self._wakes.values():
            event.set()

    async def on_outbox_event(self, _event: Any) -> None:
        """Events-bus handler: another worker wrote outbox rows."""
        self.wake()

    def start(self) -> None:
        """Run one dispatch loop per durable channel in the background (no-op without durable channels).

        Each channel claims, delivers and records on its own, so a slow or hanging channel (an
        SMTP server that stalls, a backlog of 100,000 emails) never delays another one's deliveries.
        """
        if self._tasks:
            return
        loop = asyncio.get_running_loop()
        lanes = list(self.channels)
        if lanes and self.planner is not None:
            lanes.append(PLAN_CHANNEL)
        for name in lanes:
            self._wakes[name] = asyncio.Event()
            self._tasks.append(loop.create_task(self._run(name), name=f"notifications:dispatcher:{name}"))

    async def stop(self, grace: float = 30.0) -> None:
        """Finish the rounds in progress (up to ``grace`` seconds), then stop.

        Rows of a round cut short keep their lease and are reclaimed when it expires.
        """
        self._stopping = True
        self.wake()
        if not self._tasks:
            return
        running = asyncio.gather(*self._tasks, return_exceptions=True)
        try:
            await asyncio.wait_for(asyncio.shield(running), grace)
        except TimeoutError:
            for task in self._tasks:
                await cancel_and_wait(task)

    async def _run(self, channel: str) -> None:
        wake = self._wakes[channel]
        while not self._stopping:
            # Cleared before the round, not before the sleep: a wake that comes while the round
            # or the sleep's due-time query runs must start another round, not be lost.
            wake.clear()
            try:
                busy = await (self.plan_once() if channel == PLAN_CHANNEL else self.run_once([channel]))
            except Exception as error:  # noqa: BLE001 - the loop must survive any failed round (a database outage): log, wait, retry
                self._logger.warning("Notification dispatcher round of %s failed: %s", channel, error)
                busy = False
            if busy or self._stopping:
                continue
            await self._sleep(channel, wake)

    async def _sleep(self, channel: str, wake: asyncio.Event) -> None:
        timeout = self._config.poll_interval
        with contextlib.suppress(Exception):
            due = await self._store.next_due([channel])
            if due is not None:
                timeout = min(timeout, max(0.0, (due - self._now()).total_seconds()))
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(wake.wait(), timeout)

    async def plan_once(self) -> bool:
        """Plan the deliveries of one due planning row (a large send); ``True`` when one was claimed.

        The row is swapped for its delivery rows in one transaction, while its lease holds;
        a dispatcher that dies meanwhile leaves the row to be planned again when the lease ends.
        """
        if self.planner is None:
            return False
        claimed = await self._store.claim(self.owner, [PLAN_CHANNEL], 1, self._config.lease_seconds)
        for plan in claimed:
            rows = await self.planner(plan)
            if await self._store.replace_plan(self.owner, plan, rows):
                self.wake()  # the channels' lanes deliver them now
        return bool(claimed)

    async def run_once(self, names: Sequence[str] | None = None) -> bool:
        """Claim and deliver one round of due rows of ``names`` (default: every channel).

        Returns ``True`` when a full round was claimed (more may be due).
        """
        channels = self.channels
        chosen = [name for name in (names if names is not None else channels) if name in channels]
        claimed = await self._store.claim(self.owner, chosen, self._config.claim_rows, self._config.lease_seconds)
        if not claimed:
            return False
        by_channel: dict[str, list[OutboxItems]] = {}
        for row in claimed:
            by_channel.setdefault(row.channel, []).append(row)
        counters: dict[tuple[str, str], int] = {}
        await asyncio.gather(
            *(self._deliver_channel(*channels[name], rows, counters) for name, rows in by_channel.items())
        )
        now = self._now()
        await self._store.record(self.owner, [(row, row.next_attempt(now)) for row in claimed], counters)
        return len(claimed) >= self._config.claim_rows

    async def _deliver_channel(
        self,
        processor: Processor,
        channel: DeliveryChannel,
        rows: Sequence[OutboxItems],
        counters: dict[tuple[str, str], int],
    ) -> None:
        if processor.implements(DIGEST_HOOK):
            held = [row for row in rows if row.digest_key is not None]
            if held:
                await self._deliver_digests(processor, channel, held, counters)
            rows = [row for row in rows if row.digest_key is None]
        work = [(row, index) for row in rows for index in row.open_indexes()]
        for start in range(0, len(work), channel.batch_size):
            batch = work[start : start + channel.batch_size]
            deliveries = [row.delivery(index) for row, index in batch]
            outcomes = await self._call(processor, channel, DELIVER_HOOK, deliveries)
            now = self._now()
            for (row, index), delivery in zip(batch, deliveries, strict=True):
                outcome = outcomes.get(delivery.id) or DeliveryOutcome.retry("The channel returned no outcome")
                self._apply(row, index, delivery, outcome, now, counters)

    async def _deliver_digests(
        self,
        processor: Processor,
        channel: DeliveryChannel,
        rows: Sequence[OutboxItems],
        counters: dict[tuple[str, str], int],
    ) -> None:
        """One :class:`Digest` per user of the held rows; its outcome applies to each of its deliveries.

        Unless the channel answered a delivery of it by its own id (say, ``skipped``).
        """
        groups: dict[str, list[tuple[OutboxItems, int]]] = {}
        for row in sorted(rows, key=lambda row: (row.created, row.row_id)):
            for index in row.open_indexes():
                groups.setdefault(str(row.digest_key), []).append((row, index))
        digests = []
        for members in groups.values():
            deliveries = tuple(row.delivery(index) for row, index in members)
            user = next((d.recipients[0] for d in deliveries if d.recipients), "")
            attempt = max(delivery.attempt for delivery in deliveries)
            digest = Digest(f"digest.{deliveries[0].id}", channel.name, user, deliveries, attempt)
            digests.append((digest, members))
        for start in range(0, len(digests), channel.batch_size):
            batch = digests[start : start + channel.batch_size]
            outcomes = await self._call(processor, channel, DIGEST_HOOK, [digest for digest, _ in batch])
            now = self._now()
            for digest, members in batch:
                outcome = outcomes.get(digest.id) or DeliveryOutcome.retry("The channel returned no outcome")
                if outcome.kind == "retry" and outcome.retry_after is None:  # one time for all, kept together
                    outcome = DeliveryOutcome.retry(outcome.error or "", self._config.backoff(digest.attempt))
                for (row, index), delivery in zip(members, digest.deliveries, strict=True):  # an own answer wins
                    self._apply(row, index, delivery, outcomes.get(delivery.id) or outcome, now, counters)

    async def _call(
        self, processor: Processor, channel: DeliveryChannel, hook: str, items: Sequence[Delivery | Digest]
    ) -> Mapping[str, DeliveryOutcome]:
        deliveries = list(items)
        try:
            if hook == DIGEST_HOOK:
                answer = await processor.call(hook, channel=channel.name, digests=deliveries)
            else:
                answer = await processor.call(hook, channel=channel.name, deliveries=deliveries)
        except Exception as error:  # noqa: BLE001 - a channel is third-party code: whatever it raises, the batch is retried
            self._logger.warning("Delivery channel %s failed a batch of %s: %s", channel.name, len(deliveries), error)
            outcome = DeliveryOutcome.retry(f"{type(error).__name__}: {error}")
            return {delivery.id: outcome for delivery in deliveries}
        if isinstance(answer, Mapping):
            return {str(key): value for key, value in answer.items() if isinstance(value, DeliveryOutcome)}
        if isinstance(answer, Sequence):
            return {
                d.id: value for d, value in zip(deliveries, answer, strict=False) if isinstance(value, DeliveryOutcome)
            }
        return {}

    def _apply(
        self,
        row: OutboxItems,
        index: int,
        delivery: Delivery,
        outcome: DeliveryOutcome,
        now: datetime,
        counters: dict[tuple[str, str], int],
    ) -> None:
        error = (outcome.error or "")[:_ERROR_LIMIT] or None
        if outcome.kind == "sent":
            status, counter = SENT, "sent"
        elif outcome.kind == "skipped":
            status, counter = SKIPPED, "skipped"
        elif outcome.kind == "retry" and delivery.attempt < self._config.max_attempts:
            status, counter = FAILED, "retried"
            delay = outcome.retry_after if outcome.retry_after is not None else self._config.backoff(delivery.attempt)
            row.retry_at[index] = now + timedelta(seconds=max(0.0, delay))
        else:
            status, counter = DEAD, "dead"
            self._logger.warning(
                "Delivery %s on %s is dead after %s attempts: %s", delivery.id, row.channel, delivery.attempt, error
            )
        row.set(index, status, error, now)
        counters[(row.channel, counter)] = counters.get((row.channel, counter), 0) + 1
        if status in (FAILED, DEAD):
            counters[(row.channel, "failed")] = counters.get((row.channel, "failed"), 0) + 1
