"""The Redis bus restarted while sockets are open: signals resume without reconnecting the socket.

Two hosts ("worker A" and "worker B", each with its own bus connection) share
a private ``redis-server``. A user's socket is connected to A; signals are
published through B. The Redis server is stopped and started again on the
same port; the same socket must then get a signal published through B after
the restart.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
import websockets

from tests.conftest import HostHandle, start_host
from tests.faults.conftest import PrivateRedis
from tests.signals.conftest import subscribe, wait_subscribed, ws_url
from tests.signals.helper_plugin import signals_test_plugin

pytestmark = [pytest.mark.faults, pytest.mark.redis]

USER = "user:default/jane"
CHANNEL = "fault-bus"
PLUGINS = ["auth", "signals"]


def _publisher(host: HostHandle) -> Any:
    async def publish(signal: dict[str, Any]) -> None:
        response = await host.client.post("/api/signals-test/publish", json=signal, headers=host.service_headers)
        assert response.status_code == 200, response.text

    return publish


async def _received_after(ws: Any, publish: Any, after: int, timeout: float) -> dict[str, Any]:
    """Publish numbered signals through ``publish`` until the socket gets one numbered above ``after``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    number = after
    while loop.time() < deadline:
        number += 1
        await publish({"recipients": {"type": "user", "entityRef": USER}, "channel": CHANNEL, "message": {"n": number}})
        try:
            while True:
                frame = json.loads(await asyncio.wait_for(ws.recv(), 0.25))
                if frame.get("channel") == CHANNEL and frame["message"]["n"] > after:
                    return frame
        except TimeoutError:
            continue
    raise AssertionError(f"no signal reached the socket within {timeout} s after the Redis restart")


async def test_signals_resume_after_redis_restart(private_redis: PrivateRedis) -> None:
    config = {"events": {"bus": "redis", "redis": {"url": private_redis.url}}}
    async with (
        start_host("sqlite", config=config, plugins=PLUGINS, features=[signals_test_plugin]) as a,
        start_host("sqlite", config=config, plugins=PLUGINS, features=[signals_test_plugin]) as b,
    ):
        token = await a.user_token(USER)
        async with websockets.connect(ws_url(a.url), subprotocols=[token]) as ws:  # type: ignore[list-item]
            await subscribe(ws, CHANNEL)
            await wait_subscribed(ws, _publisher(a))
            before = await _received_after(ws, _publisher(b), 0, timeout=10)  # the bus carries B -> A

            await asyncio.to_thread(private_redis.stop)
            await asyncio.to_thread(private_redis.start)

            after = await _received_after(ws, _publisher(b), before["message"]["n"] + 1000, timeout=30)
            assert after["message"]["n"] > before["message"]["n"] + 1000
            assert ws.state is websockets.State.OPEN
