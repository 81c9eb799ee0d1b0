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
async def two_processes(
    bus_kind: str, test_logger: Logger
) -> AsyncIterator[tuple[RootEventsService, RootEventsService]]:
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


# -- helpers for tests against a running host --------------------------------------

SYNC_PREFIX = "test-sync-"


def ws_url(base_url: str) -> str:
    """The signals WebSocket URL of a host at ``base_url``."""
    return base_url.replace("http://", "ws://", 1) + "/api/signals"


async def subscribe(ws: Any, *channels: str) -> None:
    """Send subscribe frames."""
    import json

    for channel in channels:
        await ws.send(json.dumps({"action": "subscribe", "channel": channel}))


async def recv_signal(ws: Any, timeout: float = 5.0, *, keep_position: bool = False) -> dict[str, Any]:
    """The next signal frame (sync frames from :func:`wait_subscribed` are skipped).

    The frame's ``position`` (a string on every stored signal) is removed unless ``keep_position``.
    """
    import asyncio
    import json

    while True:
        frame = json.loads(await asyncio.wait_for(ws.recv(), timeout))
        if not str(frame.get("channel", "")).startswith(SYNC_PREFIX):
            if not keep_position and "message" in frame:
                assert isinstance(frame.pop("position", ""), str)
            return frame


async def assert_no_signal(ws: Any, wait: float = 0.3) -> None:
    """Fail if a (non-sync) signal frame arrives within ``wait`` seconds."""

    try:
        frame = await recv_signal(ws, wait)
    except TimeoutError:
        return
    raise AssertionError(f"unexpected signal {frame}")


async def wait_subscribed(ws: Any, publish: Callable[[dict[str, Any]], Any], timeout: float = 10.0) -> None:
    """Barrier: return once the server has applied every frame this socket sent so far.

    Subscribes to a private channel and broadcasts on it until a frame comes
    back; the server applies a socket's frames in order, so earlier
    subscribes are in effect by then (in whichever worker holds the socket).
    """
    import asyncio
    import json

    channel = f"{SYNC_PREFIX}{uuid.uuid4().hex[:8]}"
    await subscribe(ws, channel)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        await publish({"recipients": {"type": "broadcast"}, "channel": channel, "message": {}})
        try:
            while True:
                frame = json.loads(await asyncio.wait_for(ws.recv(), 0.2))
                if frame.get("channel") == channel:
                    await ws.send(json.dumps({"action": "unsubscribe", "channel": channel}))
                    return
        except TimeoutError:
            if loop.time() > deadline:
                raise AssertionError("the server never applied the subscription") from None
