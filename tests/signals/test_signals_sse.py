"""The Server-Sent Events transport ``GET /api/signals/events``: delivery, resume, isolation, limits, shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from host import signals_service_ref
from host.testing import SERVICE_TOKEN, HostHandle, start_host
from plugin_signals.history import parse_position
from tests.signals.conftest import unique_channel

PLUGINS = ["auth", "signals"]
JANE = "user:default/jane"
JOHN = "user:default/john"


class EventStream:
    """An open event stream, parsed into events (``{"id", "event", "data"}``) and comments."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self._lines = response.aiter_lines()
        self.comments: list[str] = []

    async def next(self, timeout: float = 10.0, *, comment: bool = False) -> dict[str, Any]:
        """The next event (comments are recorded; with ``comment`` the next comment is returned too)."""
        return await asyncio.wait_for(self._next(comment), timeout)

    async def _next(self, comment: bool) -> dict[str, Any]:
        event: dict[str, Any] = {}
        async for line in self._lines:
            if line == "":
                if event:
                    if "data" in event:
                        event["data"] = json.loads(event["data"])
                    return event
                continue
            if line.startswith(":"):
                self.comments.append(line[1:].strip())
                if comment:
                    return {"comment": self.comments[-1]}
                continue
            field, _, value = line.partition(":")
            event[field] = value[1:] if value.startswith(" ") else value
        raise EOFError("the stream ended")


@contextlib.asynccontextmanager
async def event_stream(
    host: HostHandle, token: str, *channels: str, last_event_id: str | None = None
) -> AsyncIterator[EventStream]:
    headers = {"Authorization": f"Bearer {token}"}
    if last_event_id is not None:
        headers["Last-Event-ID"] = last_event_id
    params = [("channel", channel) for channel in channels]
    async with (
        httpx.AsyncClient(base_url=host.url, timeout=httpx.Timeout(10, read=None)) as client,
        client.stream("GET", "/api/signals/events", params=params, headers=headers) as response,
    ):
        assert response.status_code == 200, (await response.aread()).decode()
        assert response.headers["content-type"].startswith("text/event-stream")
        yield EventStream(response)


@pytest.fixture
async def host(db_kind: str) -> AsyncIterator[HostHandle]:
    config = {"events": {"postgres": {"channel": unique_channel()}}, "signals": {"sse": {"heartbeatInterval": "300ms"}}}
    async with start_host(db_kind, config=config, plugins=PLUGINS) as handle:
        yield handle


async def publisher(host: HostHandle) -> Any:
    service = await host.backend.get_service(signals_service_ref, "test-publisher")

    async def publish(message: dict[str, Any], to: str | None = JANE, channel: str = "c") -> None:
        recipients = {"type": "broadcast"} if to is None else {"type": "user", "entityRef": to}
        await service.publish(recipients=recipients, channel=channel, message=message)

    return publish


async def test_events_deliver_resume_with_last_event_id_and_isolate_users(host: HostHandle) -> None:
    publish = await publisher(host)
    jane, john = await host.user_token(JANE), await host.user_token(JOHN)
    async with event_stream(host, jane, "c", "d") as stream, event_stream(host, john, "c") as johns:
        for channel in ("c", "d"):  # no Last-Event-ID: the current position of each channel first
            first = await stream.next()
            assert first["event"] == "position" and first["id"] == first["data"]["position"]
            assert first["data"]["channel"] == channel
        await johns.next()
        await publish({"n": 1})
        await publish({"n": 2}, channel="d")
        await publish({"to": "john"}, to=JOHN)
        await publish({"to": "all"}, to=None)
        events = [await stream.next() for _ in range(3)]
        assert [e["data"]["message"] for e in events] == [{"n": 1}, {"n": 2}, {"to": "all"}]
        assert all("event" not in e and e["id"] == e["data"]["position"] for e in events)
        assert [e["data"]["channel"] for e in events] == ["c", "d", "c"]
        assert [(await johns.next())["data"]["message"] for _ in range(2)] == [{"to": "john"}, {"to": "all"}]
        assert await stream.next(comment=True) == {"comment": "ping"}  # heartbeats while idle
        last_id = events[0]["id"]

    for n in range(3, 6):  # missed while away
        await publish({"n": n})
    async with event_stream(host, jane, "c", "d", last_event_id=last_id) as stream:
        replayed = [(await stream.next())["data"]["message"] for _ in range(5)]
        assert replayed == [{"n": 2}, {"to": "all"}, {"n": 3}, {"n": 4}, {"n": 5}]
        position = await stream.next()  # channel d's last frame was older than the stream's head
        assert position["event"] == "position" and position["data"]["channel"] == "d"
        await publish({"n": 6})
        live = await stream.next()
        assert live["data"]["message"] == {"n": 6}

    epoch = parse_position(live["id"]).epoch  # type: ignore[union-attr]
    async with event_stream(host, jane, "c", last_event_id=f"x{epoch}-1") as stream:
        resync = await stream.next()
        assert resync["event"] == "resync" and resync["id"] == live["id"]
        assert resync["data"] == {"action": "resync", "channel": "c", "position": live["id"]}


async def test_events_need_a_user_token_and_valid_channels(host: HostHandle) -> None:
    token = await host.user_token(JANE)
    async with httpx.AsyncClient(base_url=host.url, timeout=10) as client:
        cases = [
            ({}, [("channel", "c")], 401),
            ({"Authorization": "Bearer not-a-token"}, [("channel", "c")], 401),
            ({"Authorization": f"Bearer {SERVICE_TOKEN}"}, [("channel", "c")], 403),
            ({"Authorization": f"Bearer {token}"}, [], 400),
            ({"Authorization": f"Bearer {token}"}, [("channel", "")], 400),
            ({"Authorization": f"Bearer {token}"}, [("channel", "x" * 257)], 400),
        ]
        for headers, params, status in cases:
            response = await client.get("/api/signals/events", params=params, headers=headers)
            assert response.status_code == status, (headers, params, response.text)
            body = response.json()
            assert body["response"]["statusCode"] == status and body["error"]["name"]


async def test_events_per_user_cap_and_shutdown_ends_streams() -> None:
    config = {"signals": {"limits": {"maxSocketsPerUser": 2}}}
    async with start_host("sqlite", config=config, plugins=PLUGINS) as host:
        token = await host.user_token(JANE)
        async with contextlib.AsyncExitStack() as stack:
            streams = [await stack.enter_async_context(event_stream(host, token, "c")) for _ in range(2)]
            async with httpx.AsyncClient(base_url=host.url, timeout=10) as client:
                response = await client.get(
                    "/api/signals/events", params={"channel": "c"}, headers={"Authorization": f"Bearer {token}"}
                )
            assert response.status_code == 429
            assert response.json()["error"]["name"] == "TooManyStreamsError"
            await streams[0].next()  # the position event
            # What the server's first stop signal does (host.shutdown.DrainingServer): streams end at once,
            # so the server's wait for open requests does not hang on them; new streams are refused.
            await host.backend.begin_shutdown()
            for stream in streams:
                with pytest.raises(EOFError):
                    while True:
                        await stream.next(timeout=10)
            async with httpx.AsyncClient(base_url=host.url, timeout=10) as client:
                response = await client.get(
                    "/api/signals/events", params={"channel": "c"}, headers={"Authorization": f"Bearer {token}"}
                )
            assert response.status_code == 503
