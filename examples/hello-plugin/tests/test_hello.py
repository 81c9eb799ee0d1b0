"""The hello plugin against a real host, with ``host.testing``."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import websockets
from greenroom_hello_plugin import processor

from host.testing import HostHandle, eventually, start_host

JANE = "user:default/jane"

# -- start test-host --
#: The installed features the test host loads (discovery is off unless you name them).
PLUGINS = ["auth", "catalog", "notifications", "signals", "hello", "hello-french"]


@pytest.fixture
async def host() -> AsyncIterator[HostHandle]:
    """A host running the hello plugin, its French module and the plugins it uses."""
    async with start_host(plugins=PLUGINS) as handle:
        yield handle


# -- end test-host --


async def test_languages_include_the_modules_greeting(host: HostHandle) -> None:
    response = await host.client.get("/api/hello/languages")
    assert response.json() == {"languages": ["en", "fr"]}


# -- start test-greet --
async def test_greet_sends_a_notification_stamped_by_the_processor(host: HostHandle) -> None:
    headers = await host.user_headers(JANE)
    response = await host.client.post("/api/hello/greet", json={"language": "fr"}, headers=headers)
    assert response.json() == {"greeting": "Bonjour, jane!"}

    inbox = (await host.client.get("/api/notifications", headers=headers)).json()
    [notification] = inbox["notifications"]
    assert notification["origin"] == "plugin:hello"
    assert notification["payload"]["title"] == "Bonjour, jane!"
    assert notification["payload"]["description"] == "Sent by the hello plugin"  # the processor's pre_process
    await eventually(lambda: (JANE, "Bonjour, jane!") in processor.DELIVERED)  # its post_process


# -- end test-greet --


async def test_greet_publishes_a_signal_to_the_user(host: HostHandle) -> None:
    token = await host.user_token(JANE)
    url = host.url.replace("http", "ws", 1) + "/api/signals"
    async with websockets.connect(url, subprotocols=[token]) as socket:  # type: ignore[list-item]
        await socket.send(json.dumps({"action": "subscribe", "channel": "hello"}))

        async def greeted() -> dict[str, Any] | None:
            # The server does not acknowledge subscribes: greet until the signal comes through.
            await host.client.post("/api/hello/greet", json={}, headers={"Authorization": f"Bearer {token}"})
            try:
                return json.loads(await asyncio.wait_for(socket.recv(), 0.5))
            except TimeoutError:
                return None

        frame = await eventually(greeted)
    assert frame is not None
    assert (frame["channel"], frame["message"]) == ("hello", {"greeting": "Hello, jane!"})  # plus its history position


async def test_unknown_language_is_a_400_and_sends_nothing(host: HostHandle) -> None:
    headers = await host.user_headers(JANE)
    response = await host.client.post("/api/hello/greet", json={"language": "xx"}, headers=headers)
    assert response.status_code == 400
    assert response.json()["error"]["name"] == "InputError"
    assert (await host.client.get("/api/notifications", headers=headers)).json()["notifications"] == []


async def test_greet_needs_a_user(host: HostHandle) -> None:
    assert (await host.client.post("/api/hello/greet", json={})).status_code == 401
    response = await host.client.post("/api/hello/greet", json={}, headers=host.service_headers)
    assert response.status_code == 403
