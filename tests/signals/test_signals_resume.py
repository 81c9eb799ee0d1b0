"""Resumable signals: positions on frames, ``since`` on subscribe, replay without gap or duplicate, ``resync``.

On a real ``greenroom start --workers 2`` (PostgreSQL history, Redis Streams
history) and on in-process hosts for each store (SQLite, PostgreSQL, Redis).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
import websockets
from websockets.asyncio.client import ClientConnection

from host import signals_service_ref
from host.testing import HostHandle, start_host
from plugin_signals.history import parse_position
from plugin_signals.service import signals_history_ref
from tests.signals.conftest import REDIS_URL, recv_signal, subscribe, unique_channel, wait_subscribed, ws_url
from tests.signals.test_signals_workers import BUSES, greenroom_start, new_connection_client, user_token

JANE = "user:default/jane"
JOHN = "user:default/john"
PLUGINS = ["auth", "signals"]


async def send(ws: ClientConnection, frame: dict[str, Any]) -> None:
    await ws.send(json.dumps(frame))


async def next_frame(ws: ClientConnection, timeout: float = 10.0) -> dict[str, Any]:
    """The next frame that is not a barrier frame of :func:`wait_subscribed`."""
    return await recv_signal(ws, timeout, keep_position=True)


async def resume_socket(url: str, token: str, channel: str, since: str) -> ClientConnection:
    ws = await websockets.connect(ws_url(url), subprotocols=[token])  # type: ignore[list-item]
    await send(ws, {"action": "subscribe", "channel": channel, "since": since})
    return ws


@pytest.mark.parametrize("bus", sorted(BUSES))
async def test_a_socket_that_missed_50_signals_gets_exactly_those_in_order_across_two_workers(bus: str) -> None:
    """Jane disconnects, 50 signals for her (and others' and other channels') are published from both workers.

    Resubscribing with her last position (on whichever worker takes the new socket) gives exactly her 50, in
    order, then live signals without a duplicate.
    """
    db, events = BUSES[bus]
    channel = "notifications"
    async with greenroom_start(db, events()) as url, new_connection_client(url) as http:
        pids: set[int] = set()

        async def publish(signal: dict[str, Any]) -> None:
            response = await http.post("/api/signals-test/publish", json=signal)
            response.raise_for_status()
            pids.add(int(response.json()["pid"]))

        jane = await user_token(url, "jane")
        ws = await resume_socket(url, jane, channel, "")
        first = await next_frame(ws)
        assert first["action"] == "position" and first["channel"] == channel
        await publish({"recipients": {"type": "user", "entityRef": JANE}, "channel": channel, "message": {"n": -1}})
        live = await next_frame(ws)
        assert live["message"]["n"] == -1 and parse_position(live["position"]) is not None
        last = live["position"]
        await ws.close()

        for n in range(50):
            await publish({"recipients": {"type": "user", "entityRef": JANE}, "channel": channel, "message": {"n": n}})
            if n % 5 == 0:  # others' signals and other channels' are interleaved, and not replayed
                await publish({"recipients": {"type": "user", "entityRef": JOHN}, "channel": channel, "message": {}})
                await publish({"recipients": {"type": "broadcast"}, "channel": "elsewhere", "message": {}})
        assert len(pids) == 2, "the publishes reached both workers"

        ws = await resume_socket(url, jane, channel, last)
        received = [await next_frame(ws) for _ in range(50)]
        assert [frame["message"]["n"] for frame in received] == list(range(50))
        seqs = [parse_position(frame["position"]).seq for frame in received]  # type: ignore[union-attr]
        assert seqs == sorted(seqs) and len(set(seqs)) == 50

        # Live again, nothing replayed twice (Jane's n=49 was the last signal: no position frame either).
        await publish({"recipients": {"type": "user", "entityRef": JANE}, "channel": channel, "message": {"n": 50}})
        after = await next_frame(ws)
        assert after["message"]["n"] == 50
        await ws.close()


@pytest.fixture(params=["sqlite", "postgres", "redis"])
def store(request: pytest.FixtureRequest) -> str:
    """Each history store: the plugin's database (SQLite, PostgreSQL) or Redis Streams."""
    return str(request.param)


@contextlib.asynccontextmanager
async def host_with(store: str, history: dict[str, Any] | None = None) -> AsyncIterator[HostHandle]:
    config: dict[str, Any] = {"signals": {"history": history or {}}}
    if store == "redis":
        config["events"] = {"bus": "redis", "redis": {"url": REDIS_URL, "channel": unique_channel()}}
    else:
        config["events"] = {"postgres": {"channel": unique_channel()}}
    async with start_host("sqlite" if store == "redis" else store, config=config, plugins=PLUGINS) as handle:
        yield handle


async def publisher(host: HostHandle) -> Any:
    service = await host.backend.get_service(signals_service_ref, "test-publisher")

    async def publish(message: dict[str, Any], to: str = JANE, channel: str = "c") -> None:
        await service.publish(recipients={"type": "user", "entityRef": to}, channel=channel, message=message)

    return publish


async def test_positions_older_than_the_history_or_of_another_epoch_get_one_resync(store: str) -> None:
    async with host_with(store, {"maxMessages": 5}) as host:
        publish = await publisher(host)
        token = await host.user_token(JANE)
        ws = await resume_socket(host.url, token, "c", "")
        start = (await next_frame(ws))["position"]
        for n in range(10):
            await publish({"n": n})
        positions = [(await next_frame(ws))["position"] for _ in range(10)]
        await ws.close()
        history = await (await host.backend.get_service(signals_history_ref, "test")).get()
        assert history is not None
        await history.prune()

        # Within the history: replay.
        ws = await resume_socket(host.url, token, "c", positions[5])
        assert [(await next_frame(ws))["message"]["n"] for _ in range(4)] == [6, 7, 8, 9]
        await ws.close()

        epoch = parse_position(start).epoch  # type: ignore[union-attr]
        head = positions[-1]
        for since in (start, positions[2], f"other{epoch}-3", "garbage", f"{epoch}-999999"):
            ws = await resume_socket(host.url, token, "c", since)
            frame = await next_frame(ws)
            assert frame == {"action": "resync", "channel": "c", "position": head}, since
            await publish({"n": 10})  # live again after the resync, and only once
            frame = await next_frame(ws)
            assert frame["message"] == {"n": 10}
            head = frame["position"]
            with pytest.raises(TimeoutError):
                await next_frame(ws, timeout=0.2)
            await ws.close()


async def test_replay_and_live_frames_meet_without_gap_or_duplicate(store: str) -> None:
    """Signals keep coming while a socket resumes: it sees every one exactly once, in order."""
    async with host_with(store) as host:
        publish = await publisher(host)
        token = await host.user_token(JANE)
        ws = await resume_socket(host.url, token, "c", "")
        since = (await next_frame(ws))["position"]
        await ws.close()
        total = 300
        progress = asyncio.Event()

        async def keep_publishing() -> None:
            for n in range(total):
                await publish({"n": n})
                if n == 100:
                    progress.set()

        task = asyncio.create_task(keep_publishing())
        await progress.wait()
        ws = await resume_socket(host.url, token, "c", since)
        seen = []
        while len(seen) < total:
            frame = await next_frame(ws)
            if "message" in frame:
                seen.append(frame["message"]["n"])
        await task
        assert seen == list(range(total))
        with pytest.raises(TimeoutError):
            await next_frame(ws, timeout=0.3)
        await ws.close()


async def test_a_replay_reaches_only_the_signals_the_user_would_have_received() -> None:
    """Group signals reach members on replay too; another user's and other channels' never."""
    async with host_with("sqlite") as host:
        publish = await publisher(host)
        token = await host.user_token(JANE, ["group:default/team-a"])
        ws = await resume_socket(host.url, token, "c", "")
        since = (await next_frame(ws))["position"]
        await ws.close()
        await publish({"to": "john"}, to=JOHN)
        await publish({"to": "team"}, to="group:default/TEAM-A")
        await publish({"to": "jane elsewhere"}, channel="d")
        service = await host.backend.get_service(signals_service_ref, "test-publisher")
        await service.publish(recipients={"type": "broadcast"}, channel="c", message={"to": "all"})
        ws = await resume_socket(host.url, token, "c", since)
        assert [(await next_frame(ws))["message"]["to"] for _ in range(2)] == ["team", "all"]
        with pytest.raises(TimeoutError):  # the broadcast was the last signal: no position frame either
            await next_frame(ws, timeout=0.3)
        await ws.close()


async def test_plain_subscribes_stay_backstage_frames_and_idle_positions_advance() -> None:
    """Without ``since`` nothing extra is sent; with it, an idle socket is told the stream moved on."""
    async with host_with("sqlite", {"positionInterval": "200ms"}) as host:
        publish = await publisher(host)
        token = await host.user_token(JANE)
        async with websockets.connect(ws_url(host.url), subprotocols=[token]) as plain:  # type: ignore[list-item]
            await subscribe(plain, "c")

            async def publish_sync(signal: dict[str, Any]) -> None:
                service = await host.backend.get_service(signals_service_ref, "sync")
                await service.publish(**signal)

            await wait_subscribed(plain, publish_sync)
            idle = await resume_socket(host.url, token, "c", "")
            start = parse_position((await next_frame(idle))["position"])
            await publish({"n": 1}, to=JOHN)  # not Jane's: the idle socket only learns the new position
            frame = await next_frame(idle, timeout=5)
            assert frame["action"] == "position"
            assert parse_position(frame["position"]).seq > start.seq  # type: ignore[union-attr]
            await publish({"n": 2})
            assert set(await recv_signal(plain)) == {"channel", "message"}
            await idle.close()


async def test_replaying_1000_frames_is_fast(store: str) -> None:
    """A figure for docs/signals.md: the time from the resubscribe to the 1,000th replayed frame."""
    async with host_with(store) as host:
        service = await host.backend.get_service(signals_service_ref, "test-publisher")
        token = await host.user_token(JANE)
        ws = await resume_socket(host.url, token, "c", "")
        since = (await next_frame(ws))["position"]
        await ws.close()
        batch = [
            {"recipients": {"type": "user", "entityRef": JANE}, "channel": "c", "message": {"n": n, "pad": "x" * 100}}
            for n in range(1000)
        ]
        await service.publish_many(batch)
        started = time.perf_counter()
        ws = await resume_socket(host.url, token, "c", since)
        got = [(await next_frame(ws))["message"]["n"] for _ in range(1000)]
        elapsed = time.perf_counter() - started
        await ws.close()
        assert got == list(range(1000))
        print(f"\nreplay of 1,000 frames on {store}: {elapsed * 1000:.0f} ms")
        assert elapsed < 10
