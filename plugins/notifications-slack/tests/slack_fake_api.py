"""A local fake of the Slack Web API for the tests: a threaded HTTP server on 127.0.0.1 that records every call.

It implements what the module calls: ``users.lookupByEmail`` (from
:attr:`FakeSlack.users`, e-mail -> user id), ``chat.postMessage`` (a DM to a
``U…`` id answers from conversation ``D…``; each message gets a fresh
``ts``) and ``chat.update`` (of a message it posted). Every call needs
``Authorization: Bearer <token>``. :meth:`FakeSlack.script` queues answers
(status, headers, JSON body) for the next calls of one method, then the
normal behaviour resumes.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from tests.conftest import free_port

TOKEN = "xoxb-test-" + "7" * 24


@dataclass(frozen=True)
class Call:
    """One API call as the fake saw it, and the status it answered."""

    method: str
    args: dict[str, Any]
    headers: dict[str, str]
    status: int
    answer: dict[str, Any]
    at: float


@dataclass
class FakeSlack:
    """See the module docstring."""

    port: int = field(default_factory=free_port)
    users: dict[str, str] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    messages: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    _scripted: dict[str, list[tuple[int, dict[str, str], dict[str, Any]]]] = field(default_factory=dict)
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _next_ts: int = 1_700_000_000_000_100

    @property
    def api_url(self) -> str:
        """The ``apiUrl`` to configure."""
        return f"http://127.0.0.1:{self.port}/api/"

    def reset(self) -> None:
        """Forget the calls and scripted answers (the posted messages stay, for later updates)."""
        with self._lock:
            self.calls.clear()
            self._scripted.clear()

    def script(self, method: str, *answers: tuple[int, dict[str, str], dict[str, Any]]) -> None:
        """Answer the next calls of ``method`` with these ``(status, headers, body)``."""
        with self._lock:
            self._scripted.setdefault(method, []).extend(answers)

    def of(self, method: str, *, ok: bool | None = True) -> list[Call]:
        """The calls of ``method`` (only those answered ``ok`` by default; ``ok=None`` for all)."""
        return [c for c in self.calls if c.method == method and (ok is None or c.answer.get("ok") is ok)]

    def _behave(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        if method == "users.lookupByEmail":
            user = self.users.get(str(args.get("email", "")).lower())
            return {"ok": True, "user": {"id": user}} if user else {"ok": False, "error": "users_not_found"}
        if method == "chat.postMessage":
            channel = str(args.get("channel", ""))
            if not channel:
                return {"ok": False, "error": "channel_not_found"}
            conversation = "D" + channel[1:] if channel.startswith("U") else channel
            self._next_ts += 100
            ts = f"{self._next_ts // 1_000_000}.{self._next_ts % 1_000_000:06d}"
            self.messages[(conversation, ts)] = args
            return {"ok": True, "channel": conversation, "ts": ts, "message": {"text": args.get("text")}}
        if method == "chat.update":
            key = (str(args.get("channel")), str(args.get("ts")))
            if key not in self.messages:
                return {"ok": False, "error": "message_not_found"}
            self.messages[key] = args
            return {"ok": True, "channel": key[0], "ts": key[1]}
        return {"ok": False, "error": "unknown_method"}

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        url = urlsplit(handler.path)
        method = url.path.rsplit("/", 1)[-1]
        headers = {k.lower(): v for k, v in handler.headers.items()}
        length = int(headers.get("content-length") or 0)
        raw = handler.rfile.read(length) if length else b""
        args: dict[str, Any] = dict(parse_qsl(url.query))
        if raw and headers.get("content-type", "").startswith("application/json"):
            args.update(json.loads(raw))
        elif raw:
            args.update(dict(parse_qsl(raw.decode())))
        for key in ("attachments", "blocks", "metadata"):
            if isinstance(args.get(key), str):
                args[key] = json.loads(args[key])
        with self._lock:
            status, answer_headers = 200, {}
            if headers.get("authorization") != f"Bearer {TOKEN}":
                answer: dict[str, Any] = {"ok": False, "error": "invalid_auth"}
            elif self._scripted.get(method):
                status, answer_headers, answer = self._scripted[method].pop(0)
            else:
                answer = self._behave(method, args)
            self.calls.append(Call(method, args, headers, status, answer, time.monotonic()))
        body = json.dumps(answer).encode()
        handler.send_response(status)
        for name, value in answer_headers.items():
            handler.send_header(name, value)
        handler.send_header("content-type", "application/json; charset=utf-8")
        handler.send_header("content-length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    def start(self) -> FakeSlack:
        """Listen on :attr:`port` (in a daemon thread)."""
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                fake._handle(self)

            def do_GET(self) -> None:
                fake._handle(self)

            def log_message(self, *args: Any) -> None:  # quiet
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def __enter__(self) -> FakeSlack:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        """Stop listening."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
