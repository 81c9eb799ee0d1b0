"""Helpers of the email tests: an SMTP sink (aiosmtpd) and a fake SES v2 endpoint, both on 127.0.0.1; sending."""

from __future__ import annotations

import base64
import contextlib
import email
import email.policy
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from tests.conftest import SERVICE_TOKEN, HostHandle, free_port


@dataclass
class SmtpSink:
    """An aiosmtpd handler that keeps what it receives; ``replies`` can script failures first."""

    messages: list[EmailMessage] = field(default_factory=list)
    envelopes: list[Any] = field(default_factory=list)
    replies: list[str] = field(default_factory=list)
    attempts: int = 0
    #: the client address of every message received (one per SMTP connection used)
    peers: list[Any] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.attempts += 1
        if self.replies:
            return self.replies.pop(0)
        self.envelopes.append(envelope)
        self.peers.append(session.peer)
        self.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
        return "250 OK"

    def to(self) -> list[str]:
        """The ``To`` address of every message received, sorted."""
        return sorted(str(message["To"]) for message in self.messages)

    def connections(self) -> int:
        """How many distinct client connections delivered the messages."""
        return len(set(self.peers))


@dataclass
class SmtpServer:
    """A running local SMTP server."""

    sink: SmtpSink
    port: int
    logins: list[tuple[bytes, bytes]]
    controller: Controller


@contextlib.contextmanager
def running_smtp() -> Iterator[SmtpServer]:
    """A local SMTP server on a free port (AUTH offered without TLS, for the login test)."""
    sink = SmtpSink()
    logins: list[tuple[bytes, bytes]] = []

    def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
        logins.append((auth_data.login, auth_data.password))
        return AuthResult(success=auth_data.password == b"secret")

    port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port, authenticator=authenticator, auth_require_tls=False)
    controller.start()
    try:
        yield SmtpServer(sink, port, logins, controller)
    finally:
        controller.stop()


@pytest.fixture(name="smtp")
def smtp_server() -> Iterator[SmtpServer]:
    """Fixture ``smtp``: a local SMTP server (aiosmtpd) on 127.0.0.1; import it into a test module to use it."""
    with running_smtp() as server:
        yield server


#: The outbox retries quickly in these tests (the module's retries are the outbox's).
FAST_DELIVERY = {
    "maxAttempts": 3,
    "backoff": {"initial": {"milliseconds": 10}, "max": {"milliseconds": 50}},
    "pollInterval": {"milliseconds": 100},
}


async def send(host: HostHandle, recipients: dict[str, Any], **payload: Any) -> list[dict[str, Any]]:
    """``POST /api/notifications`` as the test service; the created notifications."""
    payload.setdefault("title", "Hello")
    response = await host.client.post(
        "/api/notifications",
        json={"recipients": recipients, "payload": payload},
        headers={"Authorization": f"Bearer {SERVICE_TOKEN}"},
    )
    assert response.status_code == 200, response.text
    return list(response.json())


@dataclass
class SesRequest:
    """One request the fake SES endpoint received."""

    path: str
    headers: dict[str, str]
    body: dict[str, Any]

    def message(self) -> EmailMessage:
        """The raw MIME message of a ``SendEmail`` request."""
        raw = base64.b64decode(self.body["Content"]["Raw"]["Data"])
        return email.message_from_bytes(raw, policy=email.policy.default)  # type: ignore[return-value]


class FakeSes:
    """A minimal SES v2 endpoint: records ``SendEmail`` calls; ``replies`` scripts ``(status, error type)`` first."""

    def __init__(self) -> None:
        self.requests: list[SesRequest] = []
        self.replies: list[tuple[int, str]] = []
        self.attempts = 0
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                fake.attempts += 1
                if fake.replies:
                    status, error_type = fake.replies.pop(0)
                    self._answer(status, {"message": f"scripted {error_type}"}, {"x-amzn-ErrorType": error_type})
                    return
                fake.requests.append(SesRequest(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                self._answer(200, {"MessageId": f"fake-{len(fake.requests)}"}, {})

            def _answer(self, status: int, body: dict[str, Any], headers: dict[str, str]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeSes:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
