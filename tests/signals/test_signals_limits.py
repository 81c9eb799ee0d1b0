"""``signals.limits`` and token expiry on a real host: channel names, channels per socket, sockets per user."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
import websockets

from host import core_services, signals_service_ref
from tests.conftest import HostHandle, start_host
from tests.signals.conftest import assert_no_signal, recv_signal, subscribe, wait_subscribed, ws_url

JANE = "user:default/jane"
LIMITS = {"signals": {"limits": {"maxChannelNameLength": 40, "maxChannelsPerSocket": 4, "maxSocketsPerUser": 2}}}
LONG = "x" * 41


@pytest.fixture
async def host() -> AsyncIterator[HostHandle]:
    async with start_host(config=LIMITS, plugins=["auth", "signals"]) as handle:
        yield handle


async def _publisher(host: HostHandle) -> Any:
    service = await host.backend.get_service(signals_service_ref, "test-publisher")

    async def publish(signal: dict[str, Any]) -> None:
        await service.publish(**signal)

    return publish


def _broadcast(channel: str) -> dict[str, Any]:
    return {"recipients": {"type": "broadcast"}, "channel": channel, "message": {"on": channel}}


async def test_long_channel_names_and_extra_channels_are_ignored(host: HostHandle) -> None:
    publish = await _publisher(host)
    token = await host.user_token(JANE)
    async with websockets.connect(ws_url(host.url), subprotocols=[token]) as ws:
        await subscribe(ws, "c1", "c2", "c3")
        await wait_subscribed(ws, publish)  # the barrier is the 4th channel, then unsubscribes
        await subscribe(ws, LONG, "c4", "c5")  # too long; the 4th; one too many
        await ws.send('{"action": "unsubscribe", "channel": "c4"}')
        await wait_subscribed(ws, publish)  # everything sent before is applied now
        for channel in (LONG, "c5"):
            await publish(_broadcast(channel))
            await assert_no_signal(ws)
        await publish(_broadcast("c3"))
        assert await recv_signal(ws) == {"channel": "c3", "message": {"on": "c3"}}


async def test_warnings_about_one_socket_are_rate_limited(host: HostHandle, caplog: pytest.LogCaptureFixture) -> None:
    publish = await _publisher(host)
    token = await host.user_token(JANE)
    with caplog.at_level(logging.WARNING):
        async with websockets.connect(ws_url(host.url), subprotocols=[token]) as ws:
            for _ in range(200):
                await ws.send("not json")
            await subscribe(ws, "c1")
            await wait_subscribed(ws, publish)
    warnings = [record for record in caplog.records if "Invalid message received" in record.getMessage()]
    assert len(warnings) == 1


async def test_sockets_beyond_the_per_user_limit_are_closed(host: HostHandle) -> None:
    token = await host.user_token(JANE)
    async with (
        websockets.connect(ws_url(host.url), subprotocols=[token]),
        websockets.connect(ws_url(host.url), subprotocols=[token]),
    ):
        async with websockets.connect(ws_url(host.url), subprotocols=[token]) as third:
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await asyncio.wait_for(third.recv(), 5)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4429
        other = await host.user_token("user:default/john")  # other users are not affected
        async with websockets.connect(ws_url(host.url), subprotocols=[other]) as ws:
            await subscribe(ws, "c1")
            await wait_subscribed(ws, await _publisher(host))
    # once the first two are gone, jane may connect again
    async with websockets.connect(ws_url(host.url), subprotocols=[token]) as ws:
        await subscribe(ws, "c1")
        await wait_subscribed(ws, await _publisher(host))


async def test_socket_is_closed_when_its_token_expires(host: HostHandle) -> None:
    publish = await _publisher(host)
    tokens = await host.backend.get_service(core_services.root_auth)
    short, _ = await tokens.issue_user_token(JANE, [JANE], ttl=2)
    async with websockets.connect(ws_url(host.url), subprotocols=[short]) as ws:
        await subscribe(ws, "c1")
        await wait_subscribed(ws, publish)
        await publish(_broadcast("c1"))
        assert await recv_signal(ws) == {"channel": "c1", "message": {"on": "c1"}}
        with pytest.raises(websockets.ConnectionClosed) as closed:
            while True:  # frames until the close, which must come within the token's lifetime plus slack
                await asyncio.wait_for(ws.recv(), 5)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401


def test_limits_config_is_checked() -> None:
    from host.config import Config
    from plugin_signals.connections import SignalLimits

    with pytest.raises(ValueError, match="'signals.limits.maxSocketsPerUser': Input should be greater than 0"):
        SignalLimits.from_config(Config({"signals": {"limits": {"maxSocketsPerUser": 0}}}))
    assert SignalLimits.from_config(Config({})).max_channel_name_length == 256
