"""Fixtures for the signals and event-bus tests: loggers, bus configs and bus pairs."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from host.event_buses import PostgresBus, RedisBus
from host.events import Event, RootEventsService
from host.logging import Logger

PG_CONNECT = {"host": "127.0.0.1", "port": 5432, "user": "postgres", "database": "test"}
REDIS_URL = "redis://127.0.0.1:6379/0"


def unique_channel(prefix: str = "gr_test") -> str:
    """A channel name no other test (or concurrent test run) uses."""
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


@pytest.fixture
def test_logger() -> Logger:
    """A host logger that propagates to pytest's caplog."""
    return Logger(logging.getLogger("tests.signals"))


class Recorder:
    """An events subscriber that records what it receives."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    async def __call__(self, event: Event) -> None:
        self.events.append(event)

    @property
    def payloads(self) -> list[Any]:
        return [event.payload for event in self.events]


BusFactory = Callable[[Logger, str], Any]

BUS_FACTORIES: dict[str, BusFactory] = {
    "postgres": lambda logger, channel: PostgresBus(PG_CONNECT, logger, channel=channel),
    "redis": lambda logger, channel: RedisBus(REDIS_URL, logger, channel=f"{channel}:events"),
}


@pytest.fixture(params=sorted(BUS_FACTORIES))
def bus_kind(request: pytest.FixtureRequest) -> str:
    """Each cross-process bus kind."""
    return str(request.param)


@pytest.fixture
async def two_processes(bus_kind: str, test_logger: Logger) -> AsyncIterator[tuple[RootEventsService, RootEventsService]]:
    """Two events services on two buses sharing a channel: two "processes" in one test."""
    channel = unique_channel()
    services = [RootEventsService(BUS_FACTORIES[bus_kind](test_logger, channel), test_logger) for _ in range(2)]
    for service in services:
        await service.start()
    try:
        yield services[0], services[1]
    finally:
        for service in services:
            await service.stop()


async def eventually(predicate: Callable[[], bool], timeout: float = 5.0, interval: float = 0.01) -> None:
    """Wait until ``predicate()`` is true; fail the test after ``timeout`` seconds."""
    import asyncio

    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(interval)
