"""Connected signal sockets, their subscriptions, and delivery of signals to them.

:class:`SignalManager` is transport-agnostic: the WebSocket layer registers
each authenticated socket with a ``send`` and a ``close`` callable, feeds it
the client's text frames, and subscribes :meth:`SignalManager.on_event` to
the ``signals`` events topic.

Delivery rules (Backstage's ``SignalManager``):

* an event without a ``channel`` or a ``message`` is dropped;
* ``{"type": "broadcast"}`` reaches every socket subscribed to the channel;
* ``{"type": "user", "entityRef": ref | [refs]}`` reaches the subscribed
  sockets whose user's ownership refs contain one of the refs, so a group ref
  reaches the group's members (refs are compared case-insensitively);
* the frame sent is exactly ``{"channel": ..., "message": ...}``.

Each event is serialised once. Sockets are indexed by channel and by
ownership ref, so a user-targeted signal touches only the matching sockets.
Frames go through a small per-socket queue drained by that socket's writer;
a socket that falls :data:`MAX_QUEUED_FRAMES` behind is closed (1008) rather
than buffered without bound.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from host.events import Event
    from host.logging import Logger

#: Frames waiting for one socket before it is considered stuck and closed.
MAX_QUEUED_FRAMES = 1000
#: Channels one socket may subscribe to; further subscribes are ignored.
MAX_CHANNELS_PER_CONNECTION = 1000
#: Close code for a socket that does not keep up (policy violation).
CLOSE_SLOW_CONSUMER = 1008

SendText = Callable[[str], Awaitable[None]]
Close = Callable[[int], Awaitable[None]]


class SignalConnection:
    """One authenticated socket: its user, ownership refs, channels and outbound queue."""

    __slots__ = ("id", "user_entity_ref", "ownership_refs", "channels", "_send", "_close", "_pending", "_wakeup")

    def __init__(self, user_entity_ref: str, ownership_refs: Iterable[str], send: SendText, close: Close) -> None:
        self.id = str(uuid.uuid4())
        self.user_entity_ref = user_entity_ref
        #: Lower-cased refs this connection receives user-targeted signals for (includes the user's own ref).
        self.ownership_refs = frozenset(ref.lower() for ref in (*ownership_refs, user_entity_ref))
        self.channels: set[str] = set()
        self._send = send
        self._close = close
        self._pending: deque[str] = deque()
        self._wakeup: asyncio.Future[None] | None = None

    def enqueue(self, frame: str) -> bool:
        """Queue ``frame`` for the writer; ``False`` when the socket is too far behind."""
        if len(self._pending) >= MAX_QUEUED_FRAMES:
            return False
        self._pending.append(frame)
        wakeup = self._wakeup
        if wakeup is not None and not wakeup.done():
            wakeup.set_result(None)
        return True

    async def run_writer(self) -> None:
        """Send queued frames in order until cancelled or the socket fails."""
        loop = asyncio.get_running_loop()
        while True:
            while self._pending:
                await self._send(self._pending.popleft())
            self._wakeup = loop.create_future()
            try:
                await self._wakeup
            finally:
                self._wakeup = None

    async def close(self, code: int) -> None:
        """Close the socket with ``code``."""
        await self._close(code)


class SignalManager:
    """Tracks connected sockets and delivers ``signals`` events to the matching ones."""

    def __init__(self, logger: Logger) -> None:
        self._logger = logger
        self._connections: dict[str, SignalConnection] = {}
        self._by_channel: dict[str, set[SignalConnection]] = {}
        self._by_ref: dict[str, set[SignalConnection]] = {}
        self._closing: set[asyncio.Task[None]] = set()

    def __len__(self) -> int:
        return len(self._connections)

    # -- connections -----------------------------------------------------------

    def add_connection(
        self, user_entity_ref: str, ownership_refs: Iterable[str], send: SendText, close: Close
    ) -> SignalConnection:
        """Register an authenticated socket; it receives nothing until it subscribes."""
        conn = SignalConnection(user_entity_ref, ownership_refs, send, close)
        self._connections[conn.id] = conn
        for ref in conn.ownership_refs:
            self._by_ref.setdefault(ref, set()).add(conn)
        return conn

    def remove_connection(self, conn: SignalConnection) -> None:
        """Forget a socket (idempotent)."""
        if self._connections.pop(conn.id, None) is None:
            return
        for ref in conn.ownership_refs:
            _discard(self._by_ref, ref, conn)
        for channel in conn.channels:
            _discard(self._by_channel, channel, conn)
        conn.channels.clear()

    def subscribe(self, conn: SignalConnection, channel: str) -> None:
        """Add ``channel`` to the socket's subscriptions (idempotent)."""
        if channel in conn.channels or conn.id not in self._connections:
            return
        if len(conn.channels) >= MAX_CHANNELS_PER_CONNECTION:
            self._logger.warning(
                f"Connection {conn.id} exceeded {MAX_CHANNELS_PER_CONNECTION} channels; subscribe ignored"
            )
            return
        conn.channels.add(channel)
        self._by_channel.setdefault(channel, set()).add(conn)

    def unsubscribe(self, conn: SignalConnection, channel: str) -> None:
        """Remove ``channel`` from the socket's subscriptions (idempotent)."""
        if channel in conn.channels:
            conn.channels.discard(channel)
            _discard(self._by_channel, channel, conn)

    def handle_client_message(self, conn: SignalConnection, text: str) -> None:
        """Apply one client frame: ``{"action": "subscribe"|"unsubscribe", "channel": "..."}``.

        Malformed JSON is logged; anything else that is not a well-formed
        action is ignored. The connection always stays open.
        """
        try:
            data = orjson.loads(text)
        except orjson.JSONDecodeError as error:
            self._logger.warning(f"Invalid message received from connection {conn.id}: {error}")
            return
        if not isinstance(data, dict):
            return
        channel = data.get("channel")
        if not isinstance(channel, str) or not channel:
            return
        action = data.get("action")
        if action == "subscribe":
            self.subscribe(conn, channel)
        elif action == "unsubscribe":
            self.unsubscribe(conn, channel)

    async def close_all(self, code: int) -> None:
        """Close every socket with ``code`` and forget them (shutdown)."""
        connections = list(self._connections.values())
        for conn in connections:
            self.remove_connection(conn)
        await asyncio.gather(*(self._close_quietly(conn, code) for conn in connections), *self._closing)

    # -- delivery --------------------------------------------------------------

    async def on_event(self, event: Event) -> None:
        """The ``signals`` topic subscriber: deliver ``event.payload`` to the matching sockets."""
        self.deliver(event.payload)

    def deliver(self, signal: Any) -> int:
        """Queue ``signal`` (``{"recipients", "channel", "message"}``) for its sockets; return how many."""
        if not isinstance(signal, dict):
            return 0
        channel = signal.get("channel")
        message = signal.get("message")
        if not isinstance(channel, str) or not channel or message is None:
            return 0
        targets = self.targets(signal.get("recipients"), channel)
        if not targets:
            return 0
        frame = orjson.dumps({"channel": channel, "message": message}).decode()
        delivered = 0
        for conn in targets:
            if conn.enqueue(frame):
                delivered += 1
            else:
                self._evict(conn)
        return delivered

    def targets(self, recipients: Any, channel: str) -> set[SignalConnection]:
        """The sockets subscribed to ``channel`` that ``recipients`` selects."""
        subscribers = self._by_channel.get(channel)
        if not subscribers or not isinstance(recipients, dict):
            return set()
        kind = recipients.get("type")
        if kind == "broadcast":
            return set(subscribers)
        if kind != "user":
            return set()
        refs = recipients.get("entityRef")
        if isinstance(refs, str):
            refs = [refs]
        if not isinstance(refs, list):
            return set()
        found: set[SignalConnection] = set()
        for ref in refs:
            owners = self._by_ref.get(ref.lower()) if isinstance(ref, str) else None
            if owners:
                found |= owners & subscribers
        return found

    def _evict(self, conn: SignalConnection) -> None:
        self._logger.warning(f"Connection {conn.id} is not reading its signals; closing it")
        self.remove_connection(conn)
        task = asyncio.get_running_loop().create_task(self._close_quietly(conn, CLOSE_SLOW_CONSUMER))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def _close_quietly(self, conn: SignalConnection, code: int) -> None:
        try:
            await conn.close(code)
        except Exception as error:  # the socket is already gone
            self._logger.debug(f"Closing connection {conn.id} failed: {error}")


def _discard(index: dict[str, set[SignalConnection]], key: str, conn: SignalConnection) -> None:
    members = index.get(key)
    if members is not None:
        members.discard(conn)
        if not members:
            del index[key]
