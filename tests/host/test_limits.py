"""``backend.limits``: request body, header size, headers and keep-alive timeouts, connection cap, WebSocket size.

Everything goes over raw sockets against a real host, so the tests see what
the server does before it has read a request (or its body) completely.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from pathlib import Path

import httpx
import pytest
import websockets

from tests.conftest import start_host
from tests.host.test_cli import GREENROOM, greenroom_start, write_config

SHORT = {"backend": {"limits": {"headersTimeout": {"milliseconds": 500}, "keepAliveTimeout": {"milliseconds": 500}}}}


async def _read_until_closed(reader: asyncio.StreamReader, timeout: float = 5.0) -> bytes:
    """Everything the server sends until it closes the connection (fails after ``timeout``)."""

    async def drain() -> bytes:
        data = b""
        while chunk := await reader.read(65536):
            data += chunk
        return data

    return await asyncio.wait_for(drain(), timeout)


async def _open(url: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    host, port = url.removeprefix("http://").split(":")
    return await asyncio.open_connection(host, int(port))


def _status_and_body(raw: bytes) -> tuple[int, bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


async def test_declared_body_over_the_limit_is_refused_before_it_is_sent() -> None:
    async with start_host(plugins=["notifications", "signals", "auth", "catalog"]) as host:
        reader, writer = await _open(host.url)
        # 100 MB announced, nothing sent: the answer must come without the body, then the connection closes.
        writer.write(
            b"POST /api/notifications/update HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 100000000\r\n\r\n"
        )
        await writer.drain()
        raw = await _read_until_closed(reader)
        writer.close()
        status, body = _status_and_body(raw)
        assert status == 413
        assert b"connection: close" in raw.lower()
        import json

        assert json.loads(body) == {
            "error": {"name": "PayloadTooLargeError", "message": "request entity too large"},
            "request": {"method": "POST", "url": "/update"},
            "response": {"statusCode": 413},
        }


async def test_streamed_body_is_cut_off_once_it_passes_the_limit() -> None:
    config = {"backend": {"limits": {"maxBodyBytes": 4096}}}
    async with start_host(config=config, plugins=["notifications", "signals", "auth", "catalog"]) as host:
        headers = await host.user_headers("user:default/jane")
        reader, writer = await _open(host.url)
        writer.write(
            b"POST /api/notifications/update HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\nAuthorization: " + headers["Authorization"].encode() + b"\r\n\r\n"
        )
        chunk = b'{"ids": [' + b'"a",' * 2000  # 8 kB: one chunk passes the 4 kB limit
        writer.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
        await writer.drain()
        # The body is not finished (no terminating chunk), yet the server answers and closes.
        raw = await _read_until_closed(reader)
        writer.close()
        status, _ = _status_and_body(raw)
        assert status == 413
        assert b'"name":"PayloadTooLargeError"' in raw

        # Under the limit, the same route works as before.
        ok = await host.client.post("/api/notifications/update", headers=headers, json={"ids": [], "read": True})
        assert ok.status_code == 200


async def test_default_body_limit_is_backstages_100kb() -> None:
    async with start_host(plugins=["notifications", "signals", "auth", "catalog"]) as host:
        headers = {**host.service_headers, "Content-Type": "application/json"}
        padding = b" " * (100 * 1024 - 2)
        at_limit = await host.client.post("/api/notifications/settings", headers=headers, content=padding + b"{}")
        assert at_limit.status_code != 413
        over = await host.client.post("/api/notifications/settings", headers=headers, content=padding + b"{} ")
        assert over.status_code == 413
        assert over.json()["error"]["name"] == "PayloadTooLargeError"


async def test_connections_that_never_finish_their_headers_are_closed() -> None:
    async with start_host(config=SHORT, plugins=["auth"]) as host:
        started = time.monotonic()
        silent = [await _open(host.url) for _ in range(20)]
        partial = [await _open(host.url) for _ in range(20)]
        for _, writer in partial:
            writer.write(b"GET /.backstage/health/v1/liveness HTTP/1.1\r\nHost: x\r\n")  # no blank line
            await writer.drain()
        answers = await asyncio.gather(*(_read_until_closed(reader) for reader, _ in silent + partial))
        assert time.monotonic() - started < 4
        assert all(answer.startswith(b"HTTP/1.1 408") for answer in answers)
        for _, writer in silent + partial:
            writer.close()


async def test_idle_keep_alive_connections_are_closed() -> None:
    async with start_host(config=SHORT, plugins=["auth"]) as host:
        reader, writer = await _open(host.url)
        writer.write(b"GET /.backstage/health/v1/liveness HTTP/1.1\r\nHost: x\r\n\r\n")
        await writer.drain()
        raw = await _read_until_closed(reader, timeout=4)  # answered, then closed once idle
        writer.close()
        assert raw.startswith(b"HTTP/1.1 200")


async def test_oversized_headers_get_431() -> None:
    config = {"backend": {"limits": {"maxHeaderBytes": 2048}}}
    async with start_host(config=config, plugins=["auth"]) as host:
        small = await host.client.get("/.backstage/health/v1/liveness", headers={"X-Pad": "a" * 1000})
        assert small.status_code == 200
        reader, writer = await _open(host.url)
        writer.write(b"GET /.backstage/health/v1/liveness HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 4000 + b"\r\n\r\n")
        await writer.drain()
        raw = await _read_until_closed(reader)
        writer.close()
        assert raw.startswith(b"HTTP/1.1 431")


async def test_request_targets_beyond_what_the_parser_can_split_get_414() -> None:
    """httptools splits URLs of at most 65,535 bytes; a longer one was a plain 400 "Invalid HTTP request"."""
    config = {"backend": {"limits": {"maxHeaderBytes": 200_000}}}
    async with start_host(config=config, plugins=["auth"]) as host:
        path = "/.backstage/health/v1/liveness?pad="
        fits = await host.client.get(path + "a" * (65_535 - len(path)))
        assert fits.status_code == 200
        reader, writer = await _open(host.url)
        writer.write(f"GET {path}{'a' * 70_000} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        await writer.drain()
        raw = await _read_until_closed(reader)
        writer.close()
        assert raw.startswith(b"HTTP/1.1 414 URI Too Long"), raw[:100]


async def test_connections_beyond_the_cap_are_closed_at_once() -> None:
    config = {"backend": {"limits": {"maxConnections": 5}}}
    async with start_host(config=config, plugins=["auth"]) as host:
        await host.client.aclose()  # its pooled connection would count
        held = [await _open(host.url) for _ in range(5)]
        extra_reader, extra_writer = await _open(host.url)
        assert await _read_until_closed(extra_reader, timeout=3) == b""
        extra_writer.close()
        for _, writer in held:
            writer.close()
            await writer.wait_closed()
        async with httpx.AsyncClient(base_url=host.url) as client:  # capacity is back once they are gone
            deadline = time.monotonic() + 5
            while True:
                try:
                    assert (await client.get("/.backstage/health/v1/liveness")).status_code == 200
                    break
                except httpx.TransportError:
                    if time.monotonic() > deadline:
                        raise
                    await asyncio.sleep(0.05)  # the server sees the closes asynchronously


async def test_websocket_messages_over_the_limit_close_the_socket() -> None:
    config = {"backend": {"limits": {"maxWebSocketMessageBytes": 1024}}}
    async with start_host(config=config, plugins=["signals", "auth"]) as host:
        token = await host.user_token("user:default/jane")
        ws_url = host.url.replace("http://", "ws://") + "/api/signals"
        async with websockets.connect(ws_url, subprotocols=[token]) as ws:
            await ws.send('{"action": "subscribe", "channel": "' + "c" * 2000 + '"}')
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), 5)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009


def test_greenroom_start_workers_apply_the_limits(tmp_path: Path) -> None:
    """The gunicorn worker reads ``backend.limits`` from the config files (not only the test harness)."""
    config = write_config(
        tmp_path, {"backend": {"limits": {"headersTimeout": {"milliseconds": 500}, "maxBodyBytes": 1000}}}
    )
    with greenroom_start(config, workers=1) as (url, _proc):

        async def probe() -> bytes:
            reader, writer = await _open(url)
            try:
                return await _read_until_closed(reader)
            finally:
                writer.close()

        assert asyncio.run(probe()).startswith(b"HTTP/1.1 408")
        big = httpx.post(
            f"{url}/api/auth/guest/refresh",
            content=b"{" + b" " * 2000 + b"}",
            headers={"Content-Type": "application/json"},
        )
        assert big.status_code == 413


def test_config_check_refuses_bad_limits(tmp_path: Path) -> None:
    config = write_config(tmp_path, {"backend": {"limits": {"maxBodyBytes": 0}}})
    result = subprocess.run([*GREENROOM, "config", "check", "--config", str(config)], capture_output=True, text=True)
    assert result.returncode == 1
    assert "backend.limits.maxBodyBytes must be a positive number" in result.stderr
