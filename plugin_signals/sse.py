"""The signals Server-Sent Events transport: ``GET /api/signals/events?channel=...``.

For networks where WebSockets do not get through. The same signals as the
WebSocket, to the same users (targeting and isolation come from the same
:class:`~plugin_signals.connections.SignalManager`):

* authenticated with the ``Authorization: Bearer`` user token (a service
  token: 403, none or an invalid one: 401), like the WebSocket handshake;
* ``channel`` is repeatable (at least one; each at most
  ``signals.limits.maxChannelNameLength`` characters, at most
  ``maxChannelsPerSocket`` of them; else 400);
* each signal is an event whose ``id:`` is its position and whose ``data:`` is
  the WebSocket frame; ``Last-Event-ID`` resumes from a position (one
  ``event: resync`` per channel when it cannot), and a stream without it
  starts with ``event: position`` events telling the current position;
* a comment line (``: ping``) every ``signals.sse.heartbeatInterval``;
* a stream counts against ``signals.limits.maxSocketsPerUser`` with the
  user's sockets (429 beyond), ends when its token expires, and ends when the
  server starts shutting down (new streams then get 503).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import falcon.asgi
from falcon.asgi import SSEvent

from host import BackstageError, InputError, ServiceUnavailableError, cancel_and_wait, read_section
from plugin_signals.config_schema import SignalsSseConfig
from plugin_signals.connections import Frame, SignalConnection, SignalManager

if TYPE_CHECKING:
    from host import Logger

#: Put in a stream's queue to end it (shutdown, slow consumer).
_END: Any = object()


class TooManyStreamsError(BackstageError):
    """The user holds as many signal connections as allowed (429)."""

    status_code = 429


@dataclass(frozen=True)
class SseSettings:
    """``signals.sse``: the heartbeat period."""

    heartbeat_interval: timedelta = timedelta(seconds=15)

    @classmethod
    def from_config(cls, config: Any) -> SseSettings:
        """Read ``signals.sse`` through its model (missing keys keep their defaults; bad values fail)."""
        return cls(**read_section(config, "signals.sse", SignalsSseConfig).model_dump(exclude_none=True))


def sse_event(frame: Frame) -> SSEvent:
    """The Server-Sent Event of one frame: its position as ``id``, the frame as ``data``."""
    return SSEvent(
        text=frame.text,
        event_id=str(frame.position) if frame.position is not None else None,
        event=None if frame.kind == "message" else frame.kind,
    )


class SignalEventsResource:
    """``GET /api/signals/events``: one event stream per request."""

    def __init__(
        self, manager: SignalManager, http_auth: Any, user_info: Any, logger: Logger, settings: SseSettings
    ) -> None:
        self._manager = manager
        self._http_auth = http_auth
        self._user_info = user_info
        self._logger = logger
        self._settings = settings
        self._closing = False
        self._streams: set[SignalConnection] = set()

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        """Authenticate, subscribe, and stream until the client leaves, the token expires or the server stops."""
        if self._closing:
            raise ServiceUnavailableError("The server is shutting down")
        credentials = await self._http_auth.credentials(req, allow=("user",))
        channels = self._channels(req)
        info = await self._user_info.get_user_info(credentials)
        if not self._manager.has_room_for(info.user_entity_ref):
            raise TooManyStreamsError(
                f"At most {self._manager.limits.max_sockets_per_user} signal connections per user"
            )
        queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=1)  # the connection's own queue bounds the backlog

        async def close(_code: int) -> None:
            while True:  # no await in here: nothing refills the queue meanwhile
                try:
                    queue.put_nowait(_END)
                    return
                except asyncio.QueueFull:
                    queue.get_nowait()  # the stream ends: a frame still waiting is dropped

        conn = self._manager.add_connection(info.user_entity_ref, info.ownership_entity_refs, queue.put, close)
        for channel in channels:
            self._manager.subscribe(conn, channel)
            conn.held[channel] = []  # live frames wait for the replay (or the first position)
        since = (req.get_header("Last-Event-ID") or "").strip()
        resp.set_header("Cache-Control", "no-cache")
        resp.set_header("X-Accel-Buffering", "no")  # nginx: pass events through at once
        resp.sse = self._stream(conn, channels, since, queue, credentials.expires_at)

    def _channels(self, req: falcon.asgi.Request) -> list[str]:
        channels = list(dict.fromkeys(req.get_param_as_list("channel") or []))
        limits = self._manager.limits
        if not channels or any(not channel for channel in channels):
            raise InputError("At least one non-empty channel query parameter is required")
        if len(channels) > limits.max_channels_per_socket:
            raise InputError(f"At most {limits.max_channels_per_socket} channels per stream")
        if any(len(channel) > limits.max_channel_name_length for channel in channels):
            raise InputError(f"Channel names are at most {limits.max_channel_name_length} characters")
        return channels

    async def _stream(
        self,
        conn: SignalConnection,
        channels: list[str],
        since: str,
        queue: asyncio.Queue[Any],
        expires_at: datetime | None,
    ) -> AsyncIterator[SSEvent]:
        self._streams.add(conn)
        writer = asyncio.get_running_loop().create_task(conn.run_writer(), name=f"signals-sse-{conn.id}")
        heartbeat = self._settings.heartbeat_interval.total_seconds()
        try:
            yield SSEvent(comment="connected")  # sends the headers now
            await self._manager.resume(conn, channels, since)
            while True:
                timeout = heartbeat
                if expires_at is not None:
                    remaining = (expires_at - datetime.now(UTC)).total_seconds()
                    if remaining <= 0:
                        return  # the token expired: the client reconnects with a fresh one
                    timeout = min(timeout, remaining)
                try:
                    item = await asyncio.wait_for(queue.get(), timeout)
                except TimeoutError:
                    yield SSEvent(comment="ping")
                    continue
                if item is _END:
                    return
                yield sse_event(item)
        finally:
            self._streams.discard(conn)
            self._manager.remove_connection(conn)
            await cancel_and_wait(writer)

    async def close_all(self) -> None:
        """End every stream and refuse new ones (the server is about to stop)."""
        self._closing = True
        for conn in list(self._streams):
            self._manager.remove_connection(conn)
            await conn.close(0)
