"""The served JS client falls back to Server-Sent Events when a proxy refuses WebSocket upgrades, and resumes there.

A small proxy in front of a real host answers every ``Upgrade: websocket``
request with 403 (what a corporate proxy that blocks WebSockets does) and
passes everything else through. The client (run by Node) must end up on
``/api/signals/events``, receive signals, and after the proxy drops its
connection, get the signals published meanwhile through ``Last-Event-ID``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from host import signals_service_ref
from host.testing import free_port, start_host
from tests.signals.test_signals_restart import js_client

JANE = "user:default/jane"


class UpgradeRefusingProxy:
    """A TCP proxy to ``upstream`` that refuses WebSocket upgrades with 403."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.port = free_port()
        self.refused = 0
        self._writers: set[asyncio.StreamWriter] = set()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            writer.close()
            return
        if b"upgrade: websocket" in head.lower():
            self.refused += 1
            writer.write(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            await writer.drain()
            writer.close()
            return
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        self._writers.add(up_writer)
        up_writer.write(head)
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    def drop_connections(self) -> None:
        """Cut every open connection (a proxy restart)."""
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[str]:
        server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        try:
            yield f"http://127.0.0.1:{self.port}"
        finally:
            server.close()
            self.drop_connections()


async def next_line(lines: asyncio.Queue[dict[str, Any]], key: str, timeout: float = 20.0) -> dict[str, Any]:
    """The next line the client printed that has ``key``."""
    while True:
        line = await asyncio.wait_for(lines.get(), timeout)
        if key in line:
            return line


async def test_js_client_falls_back_to_sse_when_websocket_upgrades_are_refused_and_resumes_there() -> None:
    async with start_host("sqlite", plugins=["auth", "signals"]) as host:
        service = await host.backend.get_service(signals_service_ref, "test-publisher")
        proxy = UpgradeRefusingProxy(int(host.url.rsplit(":", 1)[1]))

        async def publish(n: int) -> None:
            await service.publish(recipients={"type": "user", "entityRef": JANE}, channel="c", message={"n": n})

        async with proxy.running() as url, js_client(url, await host.user_token(JANE), "c") as lines:
            while (await next_line(lines, "state")) != {"state": "open", "transport": "sse"}:
                pass
            assert proxy.refused >= 2
            await publish(1)
            line = await next_line(lines, "message")
            assert line["message"] == {"n": 1} and line["position"]

            proxy.drop_connections()  # the stream breaks; these are published while the client is away
            assert (await next_line(lines, "state"))["state"] == "closed"
            for n in (2, 3, 4):
                await publish(n)
            assert [(await next_line(lines, "message"))["message"]["n"] for _ in range(3)] == [2, 3, 4]
            await publish(5)
            assert (await next_line(lines, "message"))["message"] == {"n": 5}
