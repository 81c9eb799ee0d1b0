"""uvicorn's HTTP protocol with connection limits (``backend.limits``).

uvicorn (httptools) has no headers timeout and no header size limit, and it
keeps every accepted connection however many there are: a client that opens
connections and never finishes its headers holds a file descriptor forever.
:class:`LimitedHttpProtocol` adds, per connection:

* a headers timeout (``headersTimeout``): from the moment a connection is
  accepted, or a new request on it begins, until its headers are complete;
  when it passes the server answers 408 and closes the connection (as Node does);
* a header size limit (``maxHeaderBytes``, request line included): 431 and close;
  a request target longer than httptools can split (:data:`MAX_URL_BYTES`,
  whatever ``maxHeaderBytes`` allows): 414 and close;
* a connection cap (``maxConnections`` per worker): connections beyond it are
  closed as soon as they are accepted, with a (rate-limited) warning.

Idle keep-alive connections are closed after ``keepAliveTimeout`` by uvicorn
itself. :func:`server_options` gives the uvicorn settings for all of it; the
gunicorn worker and the test harness both use it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import resource
import time
from typing import Any, ClassVar

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from host.server_limits import ServerLimits

_LOGGER = logging.getLogger("uvicorn.error")
#: At most one "too many connections" warning per this many seconds.
_WARNING_PERIOD_SECONDS = 10.0
#: httptools' URL splitter keeps offsets in 16 bits: a longer request target cannot be parsed.
MAX_URL_BYTES = 65_535


class _HeadersTooLarge(Exception):
    pass


class LimitedHttpProtocol(HttpToolsProtocol):
    """``HttpToolsProtocol`` plus a headers timeout, a header size limit and a connection cap."""

    limits: ClassVar[ServerLimits] = ServerLimits()
    _last_warning: ClassVar[float] = 0.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._headers_timer: asyncio.TimerHandle | None = None
        self._header_bytes = 0
        self._url_bytes = 0
        self._headers_too_large = False
        self._url_too_long = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.limits.max_connections:
            self._warn(
                f"Too many open connections (backend.limits.maxConnections = "
                f"{self.limits.max_connections}); closing new ones"
            )
            transport.abort()
            return
        self._arm_headers_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_headers_timer()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._header_bytes = 0
        self._url_bytes = 0
        self._arm_headers_timer()

    def on_url(self, url: bytes) -> None:
        self._url_bytes += len(url)
        if self._url_bytes > MAX_URL_BYTES:
            self._url_too_long = True
            raise _HeadersTooLarge()
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value) + 4)  # ": " and CRLF
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._cancel_headers_timer()
        super().on_headers_complete()

    def send_400_response(self, msg: str) -> None:
        """uvicorn's answer to a parser error; overruns raised in a callback get 414 or 431."""
        if self._url_too_long:
            self._send_and_close(414, "URI Too Long")
        elif self._headers_too_large:
            self._send_and_close(431, "Request Header Fields Too Large")
        else:
            super().send_400_response(msg)

    # -- helpers -------------------------------------------------------------------

    def _count(self, size: int) -> None:
        self._header_bytes += size
        if self._header_bytes > self.limits.max_header_bytes:
            self._headers_too_large = True
            raise _HeadersTooLarge()  # httptools turns it into a parser error -> send_400_response

    def _arm_headers_timer(self) -> None:
        if self._headers_timer is None:
            self._headers_timer = self.loop.call_later(self.limits.headers_timeout, self._headers_timed_out)

    def _cancel_headers_timer(self) -> None:
        if self._headers_timer is not None:
            self._headers_timer.cancel()
            self._headers_timer = None

    def _headers_timed_out(self) -> None:
        self._headers_timer = None
        if not self.transport.is_closing():
            self._send_and_close(408, "Request Timeout")

    def _send_and_close(self, status: int, reason: str) -> None:
        body = reason.encode()
        self.transport.write(
            f"HTTP/1.1 {status} {reason}\r\ncontent-type: text/plain; charset=utf-8\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n\r\n".encode()
            + body
        )
        self.transport.close()

    @classmethod
    def _warn(cls, message: str) -> None:
        now = time.monotonic()
        if now - cls._last_warning >= _WARNING_PERIOD_SECONDS:
            LimitedHttpProtocol._last_warning = now
            _LOGGER.warning(message)


def raise_open_files_limit() -> None:
    """Raise this process's soft open-files limit to the hard one (a 1,024 soft limit is common)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def server_options(limits: ServerLimits) -> dict[str, Any]:
    """uvicorn ``Config`` keyword arguments that enforce ``limits``."""
    protocol = type("GreenroomHttpProtocol", (LimitedHttpProtocol,), {"limits": limits})
    return {
        "http": protocol,
        "timeout_keep_alive": limits.keep_alive_timeout,
        "ws_max_size": limits.max_websocket_message_bytes,
    }
