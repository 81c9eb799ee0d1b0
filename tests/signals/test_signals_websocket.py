"""The signals plugin on a real host: the WebSocket wire protocol with the `websockets` client library."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import websockets
from websockets.asyncio.client import ClientConnection

from host import signals_service_ref
from tests.conftest import HostHandle, start_host
from tests.signals.conftest import (
    assert_no_signal,
    recv_signal,
    subscribe,
    unique_channel,
    wait_subscribed,
    ws_url,
)

PLUGINS = ["auth", "signals"]
JANE = "user:default/jane"
JOHN = "user:default/john"
TEAM_A = "group:default/team-a"


@pytest.fixture
async def host(db_kind: str) -> AsyncIterator[HostHandle]:
    # A private NOTIFY channel: concurrent test runs on the same PostgreSQL must not see our signals.
    isolated = {"events": {"postgres": {"channel": unique_channel()}}}
    async with start_host(db_kind, config=isolated, plugins=PLUGINS) as handle:
        yield handle


async def publisher(host: HostHandle) -> Any:
    """The signals service as another plugin sees it."""
    service = await host.backend.get_service(signals_service_ref, "test-publisher")

    async def publish(signal: dict[str, Any]) -> None:
        await service.publish(**signal)

    return publish


@asynccontextmanager
async def user_socket(
    host: HostHandle, user: str, ownership: list[str] | None = None, channels: tuple[str, ...] = ("c",)
) -> AsyncIterator[ClientConnection]:
    token = await host.user_token(user, ownership)
    async with websockets.connect(ws_url(host.url), subprotocols=[token]) as ws:  # type: ignore[list-item]
        await subscribe(ws, *channels)
        yield ws


async def test_health_needs_no_credentials(host: HostHandle) -> None:
    response = await host.client.get("/api/signals/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_client_script_is_served_without_credentials(host: HostHandle) -> None:
    response = await host.client.get("/api/signals/client.js")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/javascript")
    assert b"SignalClient" in response.content
    again = await host.client.get("/api/signals/client.js", headers={"If-None-Match": response.headers["etag"]})
    assert again.status_code == 304


async def rejected_status(url: str, **kwargs: Any) -> int:
    with pytest.raises(websockets.InvalidStatus) as info:
        async with websockets.connect(url, **kwargs):
            pass
    return info.value.response.status_code


async def test_upgrade_outcomes(host: HostHandle) -> None:
    """No token or garbage: 401; a service token: 403; a user token opens, echoed as the subprotocol."""
    url = ws_url(host.url)
    assert await rejected_status(url) == 401
    assert await rejected_status(url, subprotocols=["garbage"]) == 401
    assert await rejected_status(url, additional_headers={"Authorization": "Bearer garbage"}) == 401
    assert await rejected_status(url, subprotocols=[host.service_token]) == 403
    assert await rejected_status(url, additional_headers={"Authorization": f"Bearer {host.service_token}"}) == 403

    token = await host.user_token(JANE)
    async with websockets.connect(url, subprotocols=[token]) as ws:  # type: ignore[list-item]
        assert ws.subprotocol == token
    async with websockets.connect(url, additional_headers={"Authorization": f"Bearer {token}"}) as ws:
        assert ws.subprotocol is None


async def test_upgrade_tries_each_offered_protocol_in_order(host: HostHandle) -> None:
    """Up to 5 offered sub-protocols are tried as tokens; the first that authenticates is selected."""
    url = ws_url(host.url)
    token = await host.user_token(JANE)
    for offered in (["graphql-ws", token], ["a", "b", "c", "d", token], [token, "graphql-ws"]):
        async with websockets.connect(url, subprotocols=offered) as ws:  # type: ignore[arg-type]
            assert ws.subprotocol == token, offered
    other = await host.user_token(JOHN)
    async with websockets.connect(url, subprotocols=["garbage", other, token]) as ws:  # type: ignore[list-item]
        assert ws.subprotocol == other
    # Six candidates are refused outright, as Backstage's authenticateWebSocket does.
    assert await rejected_status(url, subprotocols=["a", "b", "c", "d", "e", token]) == 401
    assert (
        await rejected_status(
            url, subprotocols=["a", "b", "c", "d", "e"], additional_headers={"Authorization": f"Bearer {token}"}
        )
        == 401
    )
    # The first authenticated principal decides: a service token before a user token is a 403.
    assert await rejected_status(url, subprotocols=[host.service_token, token]) == 403
    assert await rejected_status(url, subprotocols=["garbage", "more-garbage"]) == 401


async def test_bearer_header_works_next_to_an_unrelated_protocol(host: HostHandle) -> None:
    """``Authorization: Bearer`` authenticates though a sub-protocol is offered; none is selected."""
    publish = await publisher(host)
    token = await host.user_token(JANE)
    headers = {"Authorization": f"Bearer {token}"}
    async with websockets.connect(
        ws_url(host.url),
        subprotocols=["graphql-ws"],  # type: ignore[list-item]
        additional_headers=headers,
    ) as ws:
        assert ws.subprotocol is None
        await subscribe(ws, "c")
        await wait_subscribed(ws, publish)
        await publish({"recipients": {"type": "user", "entityRef": JANE}, "channel": "c", "message": {"hi": 2}})
        assert await recv_signal(ws) == {"channel": "c", "message": {"hi": 2}}


async def test_header_authenticated_socket_receives_signals(host: HostHandle) -> None:
    publish = await publisher(host)
    token = await host.user_token(JANE)
    async with websockets.connect(ws_url(host.url), additional_headers={"Authorization": f"Bearer {token}"}) as ws:
        await subscribe(ws, "c")
        await wait_subscribed(ws, publish)
        await publish({"recipients": {"type": "user", "entityRef": JANE}, "channel": "c", "message": {"hi": 1}})
        assert await recv_signal(ws) == {"channel": "c", "message": {"hi": 1}}


async def test_nothing_before_subscribe_or_after_unsubscribe(host: HostHandle) -> None:
    publish = await publisher(host)
    broadcast = {"recipients": {"type": "broadcast"}, "channel": "c", "message": {"n": 1}}
    async with user_socket(host, JANE, channels=()) as ws:
        await wait_subscribed(ws, publish)
        await publish(broadcast)
        await assert_no_signal(ws)

        await subscribe(ws, "c")
        await wait_subscribed(ws, publish)
        await publish(broadcast)
        assert await recv_signal(ws) == {"channel": "c", "message": {"n": 1}}

        await ws.send(json.dumps({"action": "unsubscribe", "channel": "c"}))
        await wait_subscribed(ws, publish)
        await publish(broadcast)
        await assert_no_signal(ws)


async def test_broadcast_and_user_signals_reach_the_right_sockets(host: HostHandle) -> None:
    """Broadcasts reach every subscriber; user signals only the owner, including through a group."""
    publish = await publisher(host)
    async with (
        user_socket(host, JANE, [JANE, TEAM_A]) as jane,
        user_socket(host, JANE, [JANE, TEAM_A]) as jane_tab2,
        user_socket(host, JOHN) as john,
        user_socket(host, JOHN, channels=("other",)) as john_elsewhere,
    ):
        for ws in (jane, jane_tab2, john, john_elsewhere):
            await wait_subscribed(ws, publish)

        await publish({"recipients": {"type": "broadcast"}, "channel": "c", "message": {"to": "all"}})
        for ws in (jane, jane_tab2, john):
            assert await recv_signal(ws) == {"channel": "c", "message": {"to": "all"}}
        await assert_no_signal(john_elsewhere)

        await publish({"recipients": {"type": "user", "entityRef": JANE}, "channel": "c", "message": {"to": "jane"}})
        await publish({"recipients": {"type": "user", "entityRef": TEAM_A}, "channel": "c", "message": {"to": "team"}})
        await publish(
            {
                "recipients": {"type": "user", "entityRef": [JOHN, "user:default/nobody"]},
                "channel": "c",
                "message": {"to": "john"},
            }
        )
        for ws in (jane, jane_tab2):
            assert await recv_signal(ws) == {"channel": "c", "message": {"to": "jane"}}
            assert await recv_signal(ws) == {"channel": "c", "message": {"to": "team"}}
            await assert_no_signal(ws)  # never John's
        assert await recv_signal(john) == {"channel": "c", "message": {"to": "john"}}
        await assert_no_signal(john)  # never Jane's or her team's
        await assert_no_signal(john_elsewhere)


async def test_binary_and_malformed_frames_keep_the_socket_open(host: HostHandle) -> None:
    publish = await publisher(host)
    async with user_socket(host, JANE, channels=()) as ws:
        await ws.send(b"\x00\x01binary")
        await ws.send("not json")
        await ws.send(json.dumps({"action": "subscribe"}))
        await ws.send(json.dumps(["subscribe", "c"]))
        await subscribe(ws, "c")
        await wait_subscribed(ws, publish)
        await publish({"recipients": {"type": "broadcast"}, "channel": "c", "message": {"still": "open"}})
        assert await recv_signal(ws) == {"channel": "c", "message": {"still": "open"}}


async def test_invalid_signals_are_refused_by_the_service(host: HostHandle) -> None:
    from host.errors import InputError

    service = await host.backend.get_service(signals_service_ref, "test-publisher")
    with pytest.raises(InputError):
        await service.publish(recipients={"type": "user"}, channel="c", message={})
    with pytest.raises(InputError):
        await service.publish(recipients={"type": "everyone"}, channel="c", message={})


async def test_shutdown_closes_sockets_cleanly() -> None:
    """Stopping the host closes each socket with 1012 (service restart) so clients reconnect."""
    async with start_host("sqlite", plugins=PLUGINS) as host:
        token = await host.user_token(JANE)
        ws = await websockets.connect(ws_url(host.url), subprotocols=[token])  # type: ignore[list-item]
    await asyncio.wait_for(ws.wait_closed(), 5)
    assert ws.close_code == 1012
