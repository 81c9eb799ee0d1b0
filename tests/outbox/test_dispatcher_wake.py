"""The dispatcher's loop never loses a wake-up, whenever it arrives."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import Any

from plugin_notifications.dispatcher import Dispatcher
from plugin_notifications.outbox import DeliveryConfig, OutboxItems
from plugin_notifications.processing import ProcessorRegistry
from tests.outbox.conftest import Recorder


class WakeDuringSleepQuery:
    """An outbox with nothing due whose ``next_due`` query lets the test wake the dispatcher while it runs."""

    def __init__(self) -> None:
        self.claims = 0
        self.second_claim = asyncio.Event()
        self.dispatcher: Dispatcher | None = None

    async def claim(self, owner: str, channels: list[str], limit: int, lease_seconds: float) -> list[OutboxItems]:
        self.claims += 1
        if self.claims == 2:
            self.second_claim.set()
        return []

    async def next_due(self, channels: list[str]) -> datetime | None:
        if self.claims == 1:
            assert self.dispatcher is not None
            self.dispatcher.wake()  # another worker's send announced while the query runs
            await asyncio.sleep(0)
        return None

    async def record(self, *args: Any) -> int:
        return 0


async def test_a_wake_during_the_due_time_query_starts_another_round() -> None:
    """Before the fix the event was cleared after that query, and the dispatcher slept a whole poll interval."""
    registry = ProcessorRegistry()
    registry.add_processor(Recorder())
    store = WakeDuringSleepQuery()
    dispatcher = Dispatcher(store, registry, DeliveryConfig(poll_interval=600.0), logging.getLogger("test"))  # type: ignore[arg-type]
    store.dispatcher = dispatcher
    dispatcher.start()
    try:
        await asyncio.wait_for(store.second_claim.wait(), 10)
    finally:
        await dispatcher.stop()
