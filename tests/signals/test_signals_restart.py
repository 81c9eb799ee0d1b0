"""Clients get their signals again after the server restarts: they reconnect and resubscribe.

Both the served JavaScript client (run by Node, whose experimental global
WebSocket is a browser-compatible implementation) and a Python client that
reconnects with the `websockets` library are tested against a real host that
is stopped and started again on the same port.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import websockets

from host import signals_service_ref
from tests.conftest import HostHandle, free_port, start_host
from tests.signals.conftest import subscribe, ws_url

JS_DIR = Path(__file__).parent / "js"
NODE = shutil.which("node")
PLUGINS = ["auth", "signals"]
JANE = "user:default/jane"


def test_js_client_unit_tests() -> None:
    """The client's subscribe/unsubscribe/reconnect logic, with a fake WebSocket (node:test)."""
    if NODE is None:
        pytest.fail("node is needed to test plugin_signals/static/client.js")
    result = subprocess.run([NODE, "--test", str(JS_DIR)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "# fail 0" in result.stdout


@contextlib.asynccontextmanager
async def js_client(base_url: str, token: str, channel: str) -> AsyncIterator[asyncio.Queue[dict[str, Any]]]:
    """Run the JS client in Node; yield a queue of the lines it prints."""
    if NODE is None:
        pytest.fail("node is needed to test plugin_signals/static/client.js")
    proc = await asyncio.create_subprocess_exec(
        NODE,
        "--experimental-websocket",
        "--no-warnings",
        str(JS_DIR / "live_client.cjs"),
        f"{base_url}/api/signals",
        token,
        channel,
        stdout=asyncio.subprocess.PIPE,
    )
    lines: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    async def pump() -> None:
        assert proc.stdout is not None
        async for raw in proc.stdout:
            lines.put_nowait(json.loads(raw))

    reader = asyncio.create_task(pump())
    try:
        yield lines
    finally:
        proc.terminate()
        await proc.wait()
        reader.cancel()


async def python_client(url: str, token: str, channel: str, out: asyncio.Queue[dict[str, Any]]) -> None:
    """A reconnecting Python client: resubscribes after every reconnect."""
    async for ws in websockets.connect(url, subprotocols=[token], open_timeout=2):  # type: ignore[list-item]
        try:
            await subscribe(ws, channel)
            async for raw in ws:
                out.put_nowait({"message": json.loads(raw)["message"]})
        except websockets.ConnectionClosed:
            continue


async def publish_until_received(
    host: HostHandle, queues: list[asyncio.Queue[dict[str, Any]]], phase: str, timeout: float = 30.0
) -> None:
    """Broadcast ``{"phase": phase}`` every 200 ms until every client got one."""
    service = await host.backend.get_service(signals_service_ref, "test-publisher")
    pending = set(range(len(queues)))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while pending:
        assert loop.time() < deadline, f"clients {sorted(pending)} got no '{phase}' signal"
        await service.publish(recipients={"type": "broadcast"}, channel="c", message={"phase": phase})
        await asyncio.sleep(0.2)
        for index in list(pending):
            while not queues[index].empty():
                line = queues[index].get_nowait()
                if line.get("message", {}).get("phase") == phase:
                    pending.discard(index)


async def test_clients_resubscribe_after_a_server_restart(tmp_path: Path) -> None:
    """Stop the host, start a new one on the same port and data: both clients receive new signals."""
    port = free_port()
    data_dir = str(tmp_path)
    py_lines: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    first_host = contextlib.AsyncExitStack()
    first = await first_host.enter_async_context(start_host("sqlite", plugins=PLUGINS, port=port, data_dir=data_dir))
    try:
        token = await first.user_token(JANE)
        async with js_client(first.url, token, "c") as js_lines:
            py_task = asyncio.create_task(python_client(ws_url(first.url), token, "c", py_lines))
            try:
                await publish_until_received(first, [js_lines, py_lines], "before")
                await first_host.aclose()  # the server stops and closes every socket
                async with start_host("sqlite", plugins=PLUGINS, port=port, data_dir=data_dir) as second:
                    await publish_until_received(second, [js_lines, py_lines], "after")
            finally:
                py_task.cancel()
    finally:
        await first_host.aclose()
