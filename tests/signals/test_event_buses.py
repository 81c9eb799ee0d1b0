"""The cross-process event buses, with two events services in one test standing in for two processes."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
import redis.asyncio as aioredis

from host.config import Config, ConfigError
from host.event_buses import PostgresBus, RedisBus, bus_kind, check_bus_for_workers, create_bus
from host.event_buses.postgres import MAX_NOTIFY_BYTES
from host.events import InProcessBus, RootEventsService
from host.logging import Logger
from host.testing import eventually
from tests.signals.conftest import PG_CONNECT, REDIS_URL, Recorder, unique_channel

Pair = tuple[RootEventsService, RootEventsService]


async def test_event_reaches_the_other_process_once(two_processes: Pair) -> None:
    """A's subscriber gets the event locally, B's through the bus; neither gets it twice."""
    a, b = two_processes
    got_a, got_b = Recorder(), Recorder()
    await a.subscribe("a", ["signals"], got_a)
    await b.subscribe("b", ["signals"], got_b)

    await a.publish("signals", {"n": 1}, {"source": "test"})

    await eventually(lambda: got_b.payloads == [{"n": 1}])
    await asyncio.sleep(0.2)  # an echo of A's own event would have arrived by now
    assert got_a.payloads == [{"n": 1}]
    assert got_b.payloads == [{"n": 1}]
    assert got_b.events[0].topic == "signals"
    assert got_b.events[0].metadata == {"source": "test"}


async def test_only_subscribed_topics_are_delivered(two_processes: Pair) -> None:
    a, b = two_processes
    got = Recorder()
    await b.subscribe("b", ["wanted"], got)
    await a.publish("other", {"n": 0})
    await a.publish("wanted", {"n": 1})
    await eventually(lambda: got.payloads == [{"n": 1}])


async def test_events_keep_their_order(two_processes: Pair) -> None:
    a, b = two_processes
    got = Recorder()
    await b.subscribe("b", ["t"], got)
    for n in range(100):
        await a.publish("t", {"n": n})
    await eventually(lambda: len(got.events) == 100)
    assert got.payloads == [{"n": n} for n in range(100)]


@pytest.mark.parametrize("count", [3, 5_000])
async def test_batches_cross_as_one_message_in_order(two_processes: Pair, count: int) -> None:
    """publish_many delivers every event locally and remotely, in order (5,000 exceeds NOTIFY's limit)."""
    a, b = two_processes
    got_a, got_b = Recorder(), Recorder()
    await a.subscribe("a", ["t"], got_a)
    await b.subscribe("b", ["t"], got_b)
    await a.publish("t", {"n": -1})
    await a.publish_many("t", [{"n": n} for n in range(count)])
    await eventually(lambda: len(got_b.events) == count + 1)
    expected = [{"n": n} for n in range(-1, count)]
    assert got_b.payloads == expected
    assert got_a.payloads == expected


@pytest.mark.parametrize("size", [MAX_NOTIFY_BYTES - 100, MAX_NOTIFY_BYTES + 10, 1_000_000])
async def test_large_payloads_cross_processes(two_processes: Pair, size: int) -> None:
    """Payloads around and far beyond NOTIFY's 8000-byte limit arrive intact (mixed with small ones)."""
    a, b = two_processes
    got = Recorder()
    await b.subscribe("b", ["t"], got)
    big = {"blob": "é" * (size // 2)}  # two UTF-8 bytes each: the limit is in bytes, not characters
    await a.publish("t", {"first": True})
    await a.publish("t", big)
    await a.publish("t", {"last": True})
    await eventually(lambda: len(got.events) == 3)
    assert got.payloads == [{"first": True}, big, {"last": True}]


async def test_non_json_payload_is_refused(two_processes: Pair) -> None:
    a, _ = two_processes
    with pytest.raises(TypeError):
        await a.publish("t", {"when": object()})


async def test_postgres_listener_reconnects(test_logger: Logger) -> None:
    """Killing the LISTEN connection's backend loses nothing published after the reconnect."""
    channel = unique_channel()
    a = RootEventsService(PostgresBus(PG_CONNECT, test_logger, channel=channel), test_logger)
    bus_b = PostgresBus(PG_CONNECT, test_logger, channel=channel)
    b = RootEventsService(bus_b, test_logger)
    await a.start()
    await b.start()
    try:
        got = Recorder()
        await b.subscribe("b", ["t"], got)
        old = bus_b._listener
        assert old is not None
        admin = await asyncpg.connect(**PG_CONNECT)
        try:
            await admin.execute("SELECT pg_terminate_backend($1)", old.get_server_pid())
        finally:
            await admin.close()
        await eventually(lambda: bus_b._listener is not None and bus_b._listener is not old, timeout=10)
        await a.publish("t", {"after": "reconnect"})
        await eventually(lambda: got.payloads == [{"after": "reconnect"}])
    finally:
        await a.stop()
        await b.stop()


async def test_redis_subscription_reconnects(test_logger: Logger) -> None:
    """Killing the subscriber's Redis connection loses nothing published after the resubscribe."""
    channel = unique_channel()
    a = RootEventsService(RedisBus(REDIS_URL, test_logger, channel=channel), test_logger)
    bus_b = RedisBus(REDIS_URL, test_logger, channel=channel)
    b = RootEventsService(bus_b, test_logger)
    await a.start()
    await b.start()
    admin = aioredis.Redis.from_url(REDIS_URL)
    try:
        got = Recorder()
        await b.subscribe("b", ["t"], got)
        name = f"greenroom-events-{bus_b.origin[:12]}"
        clients = await admin.client_list()
        ids = [c["id"] for c in clients if c.get("name") == name]
        assert ids, "subscriber connection not found"
        for client_id in ids:
            await admin.client_kill_filter(_id=client_id)

        async def published_and_received() -> bool:
            await a.publish("t", {"after": "reconnect"})
            await asyncio.sleep(0.1)
            return bool(got.events)

        deadline = asyncio.get_running_loop().time() + 10
        while not await published_and_received():
            assert asyncio.get_running_loop().time() < deadline, "no event after the reconnect"
        assert got.payloads[0] == {"after": "reconnect"}
    finally:
        await admin.aclose()
        await a.stop()
        await b.stop()


async def test_postgres_old_payload_rows_are_deleted(test_logger: Logger) -> None:
    from datetime import timedelta

    channel = unique_channel()
    bus = PostgresBus(PG_CONNECT, test_logger, channel=channel, payload_retention=timedelta(0))
    service = RootEventsService(bus, test_logger)
    await service.start()
    try:
        await service.publish("t", {"blob": "x" * 20_000})
        admin = await asyncpg.connect(**PG_CONNECT)
        try:
            marker = f'%"o":"{bus.origin}"%'
            count = "SELECT count(*) FROM greenroom_event_payloads WHERE body LIKE $1"
            assert await admin.fetchval(count, marker) == 1
            await bus._cleanup_if_due()
            assert await admin.fetchval(count, marker) == 0
        finally:
            await admin.close()
    finally:
        await service.stop()


# -- choosing a bus ----------------------------------------------------------------


def _config(**events: object) -> Config:
    data: dict[str, object] = {"backend": {"database": {"client": "better-sqlite3"}}}
    if events:
        data["events"] = events
    return Config(data)


PG_DB = {"client": "pg", "connection": {"host": "127.0.0.1", "port": 5432, "user": "postgres", "database": "test"}}


def test_default_bus_follows_the_database(test_logger: Logger) -> None:
    assert bus_kind(_config()) == "inprocess"
    assert isinstance(create_bus(_config(), None, test_logger), InProcessBus)
    pg = Config({"backend": {"database": PG_DB}})
    assert bus_kind(pg) == "postgres"
    bus = create_bus(pg, None, test_logger)
    assert isinstance(bus, PostgresBus)
    assert bus._connect_kwargs == {"host": "127.0.0.1", "port": 5432, "user": "postgres", "database": "test"}


def test_postgres_connection_can_be_a_url_or_an_override(test_logger: Logger) -> None:
    url = Config({"backend": {"database": {"client": "pg", "connection": "postgresql+asyncpg://u:p@db:5433/main"}}})
    assert create_bus(url, None, test_logger)._connect_kwargs == {"dsn": "postgresql://u:p@db:5433/main"}  # type: ignore[attr-defined]
    override = _config(bus="postgres", postgres={"connection": {"host": "events-db", "user": "ev"}, "channel": "c1"})
    bus = create_bus(override, None, test_logger)
    assert isinstance(bus, PostgresBus)
    assert bus._connect_kwargs == {"host": "events-db", "user": "ev", "database": "postgres"}
    assert bus.channel == "c1"


def test_redis_bus_needs_a_url(test_logger: Logger) -> None:
    with pytest.raises(ConfigError, match="events.redis.url"):
        create_bus(_config(bus="redis"), None, test_logger)
    bus = create_bus(_config(bus="redis", redis={"url": REDIS_URL, "channel": "x"}), None, test_logger)
    assert isinstance(bus, RedisBus) and bus.channel == "x"


def test_invalid_bus_names_the_allowed_values() -> None:
    with pytest.raises(ConfigError, match="must be one of inprocess, postgres, redis, got 'kafka'"):
        bus_kind(_config(bus="kafka"))


def test_postgres_bus_with_sqlite_needs_a_connection(test_logger: Logger) -> None:
    with pytest.raises(ConfigError, match="events.postgres.connection"):
        create_bus(_config(bus="postgres"), None, test_logger)


def test_sqlite_with_several_workers_needs_a_bus() -> None:
    with pytest.raises(ConfigError, match="SQLite with more than one worker needs events.bus: redis or postgres"):
        check_bus_for_workers(_config(), 2)
    with pytest.raises(ConfigError, match="inprocess only works with a single worker"):
        check_bus_for_workers(_config(bus="inprocess"), 4)
    check_bus_for_workers(_config(), 1)
    check_bus_for_workers(_config(bus="redis", redis={"url": REDIS_URL}), 4)
    check_bus_for_workers(Config({"backend": {"database": PG_DB}}), 4)
