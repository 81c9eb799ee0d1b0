"""A local HTTP receiver for the channel tests (webhooks, Teams): a threaded server on 127.0.0.1 that records every request.

It answers ``204`` unless told otherwise: :meth:`Receiver.script` queues
answers (status and headers) given to the next requests in order, and
:attr:`Receiver.hang` makes it hold requests, never answering them, until
:meth:`Receiver.release` or :meth:`Receiver.stop` (for timeouts and kills
while a request is in flight); those are kept in :attr:`Receiver.held`.
It can be created on a port before it listens (``start()`` later), so a
test can keep an endpoint "down" and then bring it up.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.conftest import free_port


@dataclass(frozen=True)
class Received:
    """One request as the receiver saw it, and the status it answered."""

    path: str
    headers: dict[str, str]
    body: bytes
    status: int
    at: float


@dataclass
class Receiver:
    """See the module docstring."""

    port: int = field(default_factory=free_port)
    requests: list[Received] = field(default_factory=list)
    held: list[Received] = field(default_factory=list)
    hang: bool = False
    _answers: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None
    _released: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        """The URL webhooks are posted to."""
        return f"http://127.0.0.1:{self.port}/hooks"

    def script(self, *answers: int | tuple[int, dict[str, str]]) -> None:
        """Answer the next requests with these statuses (``(status, headers)`` for headers), then 204 again."""
        with self._lock:
            self._answers.extend(a if isinstance(a, tuple) else (a, {}) for a in answers)

    def accepted(self) -> list[Received]:
        """The requests answered with a 2xx."""
        return [r for r in self.requests if 200 <= r.status < 300]

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("content-length") or 0)
        body = handler.rfile.read(length)
        headers = {k.lower(): v for k, v in handler.headers.items()}
        if self.hang:
            with self._lock:
                self.held.append(Received(handler.path, headers, body, 0, time.monotonic()))
            self._released.wait(30)
            handler.close_connection = True
            return  # never answered
        with self._lock:
            status, answer_headers = self._answers.pop(0) if self._answers else (204, {})
            self.requests.append(Received(handler.path, headers, body, status, time.monotonic()))
        handler.send_response(status)
        for name, value in answer_headers.items():
            handler.send_header(name, value)
        handler.send_header("content-length", "0")
        handler.end_headers()

    def release(self) -> None:
        """Stop holding requests: drop the held ones unanswered and answer the next ones again."""
        self.hang = False
        self._released.set()

    def start(self) -> Receiver:
        """Listen on :attr:`port` (in a daemon thread)."""
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                receiver._handle(self)

            def log_message(self, *args: Any) -> None:  # quiet
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        self._released.clear()
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def __enter__(self) -> Receiver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        """Stop listening (releasing held requests)."""
        self._released.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
