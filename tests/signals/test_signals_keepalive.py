"""The server pings every socket and drops one that never answers (real ``greenroom start``)."""

from __future__ import annotations

import base64
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import yaml

from tests.conftest import free_port

GREENROOM = [sys.executable, "-m", "host.cli"]
SECRET = "keepalive-proxy-secret-01"


def read_frame(sock: socket.socket) -> tuple[int, bytes]:
    """Read one server frame (servers never mask): ``(opcode, payload)``."""
    header = sock.recv(2, socket.MSG_WAITALL)
    if len(header) < 2:
        raise EOFError("connection closed")
    length = header[1] & 0x7F
    if length == 126:
        length = int.from_bytes(sock.recv(2, socket.MSG_WAITALL), "big")
    elif length == 127:
        length = int.from_bytes(sock.recv(8, socket.MSG_WAITALL), "big")
    return header[0] & 0x0F, sock.recv(length, socket.MSG_WAITALL) if length else b""


def test_unanswered_pings_drop_the_socket(tmp_path: Path) -> None:
    port = free_port()
    config = {
        "backend": {
            "database": {"connection": {"directory": str(tmp_path / "data")}},
            "features": {"include": ["auth", "signals"]},
            "websocket": {"pingInterval": {"milliseconds": 300}},
        },
        "auth": {"providers": {"proxy": {"secret": SECRET, "allowUnknownUsers": True}}},
    }
    (tmp_path / "app-config.yaml").write_text(yaml.safe_dump(config))
    proc = subprocess.Popen(
        [*GREENROOM, "start", "--config", str(tmp_path / "app-config.yaml"), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(300):
            try:
                if httpx.get(f"{url}/api/signals/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        token = httpx.get(
            f"{url}/api/auth/proxy/refresh", headers={"x-forwarded-user": "jane", "x-greenroom-proxy-secret": SECRET}
        ).json()["backstageIdentity"]["token"]

        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        key = base64.b64encode(os.urandom(16)).decode()
        sock.sendall(
            (
                f"GET /api/signals HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                f"Sec-WebSocket-Protocol: {token}\r\n\r\n"
            ).encode()
        )
        response = b""
        while b"\r\n\r\n" not in response:
            response += sock.recv(4096)
        assert response.startswith(b"HTTP/1.1 101"), response[:100]

        started = time.monotonic()
        opcodes = []
        try:
            while time.monotonic() - started < 5:
                opcode, _ = read_frame(sock)  # never answered: no pong is sent
                opcodes.append(opcode)
                if opcode == 0x8:
                    break
        except (EOFError, ConnectionResetError):
            opcodes.append(-1)
        elapsed = time.monotonic() - started
        assert opcodes[0] == 0x9, opcodes  # the server pings
        assert opcodes[-1] in (0x8, -1), opcodes  # then closes the silent socket
        assert elapsed < 3, elapsed
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(20)
