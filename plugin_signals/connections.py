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
* the frame sent is ``{"channel": ..., "message": ...}``, plus ``"position"``
  when the signal has one (see :mod:`plugin_signals.history`).

Resuming (:meth:`SignalManager.resume`): a subscription that names the last
position the client saw gets what it missed from the history, in order, then
live frames. Live frames for the channel are held while the history is read
and released after it, dropping those already replayed, so nothing is lost or
sent twice. A position the history no longer covers gets one ``resync``
frame instead.

Each event is serialised once. Sockets are indexed by channel and by
ownership ref, so a user-targeted signal touches only the matching sockets.
Frames go through a small per-socket queue drained by that socket's writer;
a socket that falls :data:`MAX_QUEUED_FRAMES` behind is closed (1008) rather
than buffered without bound.

Limits (``signals.limits``, see :class:`SignalLimits`): channel names longer
than ``maxChannelNameLength`` and subscriptions beyond ``maxChannelsPerSocket``
are ignored; a user may hold ``maxSocketsPerUser`` sockets per process (more are
closed with :data:`CLOSE_TOO_MANY_SOCKETS`). Warnings about one socket's bad
frames are logged at most once per :data:`WARNING_PERIOD_SECONDS`.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from host import read_section
from plugin_signals.config_schema import SignalsLimitsConfig
from plugin_signals.history import Position, Replay, SignalHistory, format_position, parse_position

if TYPE_CHECKING:
    from host import Event, Logger

#: Frames waiting for one socket before it is considered stuck and closed.
MAX_QUEUED_FRAMES = 1000
#: Close code for a socket that does not keep up (policy violation).
CLOSE_SLOW_CONSUMER = 1008
#: Close code for a socket beyond the user's ``maxSocketsPerUser`` (mirrors HTTP 429).
CLOSE_TOO_MANY_SOCKETS = 4429
#: At most one warning about one socket's frames per this many seconds.
WARNING_PERIOD_SECONDS = 10.0


@dataclass(frozen=True)
class SignalLimits:
    """``signals.limits``: channel name length, channels per socket, sockets per user (per process)."""

    max_channel_name_length: int = 256
    max_channels_per_socket: int = 1000
    max_sockets_per_user: int = 50

    @classmethod
    def from_config(cls, config: Any) -> SignalLimits:
        """Read ``signals.limits`` through its model (missing keys keep their defaults; bad values fail)."""
        return cls(**read_section(config, "signals.limits", SignalsLimitsConfig).model_dump(exclude_none=True))


@dataclass(frozen=True, slots=True)
class Frame:
    """One outbound frame: its JSON text, and its position (``None`` for unpositioned signals).

    ``kind`` is ``"message"`` for signals, ``"resync"`` and ``"position"`` for
    the resume protocol's control frames.
    """

    text: str
    position: Position | None = None
    kind: str = "message"


SendFrame = Callable[[Frame], Awaitable[None]]
Close = Callable[[int], Awaitable[None]]


class SignalConnection:
    """One authenticated socket: its user, ownership refs, channels and outbound queue."""

    __slots__ = (
        "id",
        "user_entity_ref",
        "ownership_refs",
        "channels",
        "_send",
        "_close",
        "_pending",
        "_wakeup",
        "_warned_at",
        "_suppressed",
        "resumed",
        "held",
    )

    def __init__(self, user_entity_ref: str, ownership_refs: Iterable[str], send: SendFrame, close: Close) -> None:
        self.id = str(uuid.uuid4())
        self.user_entity_ref = user_entity_ref
        #: Lower-cased refs this connection receives user-targeted signals for (includes the user's own ref).
        self.ownership_refs = frozenset(ref.lower() for ref in (*ownership_refs, user_entity_ref))
        self.channels: set[str] = set()
        self._send = send
        self._close = close
        self._pending: deque[Frame] = deque()
        self._wakeup: asyncio.Future[None] | None = None
        self._warned_at = float("-inf")
        self._suppressed = 0
        #: Channels subscribed with a position: the last position sent on each (duplicates are dropped).
        self.resumed: dict[str, Position] = {}
        #: Channels being replayed: live frames held until the replay is sent.
        self.held: dict[str, list[Frame]] = {}

    def offer(self, channel: str, frame: Frame) -> bool:
        """Queue a live ``frame`` for ``channel`` (held during a replay, dropped if already sent)."""
        held = self.held.get(channel)
        if held is not None:
            held.append(frame)
            return True
        if frame.position is not None and channel in self.resumed:
            last = self.resumed[channel]
            if last.epoch == frame.position.epoch and frame.position.seq <= last.seq:
                return True
            self.resumed[channel] = frame.position
        return self.enqueue(frame)

    def warning(self, message: str) -> str | None:
        """The warning to log about this socket now, or ``None`` while one was logged recently."""
        now = time.monotonic()
        if now - self._warned_at < WARNING_PERIOD_SECONDS:
            self._suppressed += 1
            return None
        suppressed, self._suppressed, self._warned_at = self._suppressed, 0, now
        return f"{message} ({suppressed} similar warnings suppressed)" if suppressed else message

    def enqueue(self, frame: Frame) -> bool:
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

    def __init__(
        self, logger: Logger, limits: SignalLimits | None = None, history: SignalHistory | None = None
    ) -> None:
        self._logger = logger
        self.limits = limits or SignalLimits()
        self.history = history
        self._connections: dict[str, SignalConnection] = {}
        self._by_user: dict[str, set[SignalConnection]] = {}
        self._by_channel: dict[str, set[SignalConnection]] = {}
        self._by_ref: dict[str, set[SignalConnection]] = {}
        self._closing: set[asyncio.Task[None]] = set()

    def __len__(self) -> int:
        return len(self._connections)

    # -- connections -----------------------------------------------------------

    def has_room_for(self, user_entity_ref: str) -> bool:
        """Whether ``user_entity_ref`` may open one more socket here (``maxSocketsPerUser``)."""
        return len(self._by_user.get(user_entity_ref, ())) < self.limits.max_sockets_per_user

    def add_connection(
        self, user_entity_ref: str, ownership_refs: Iterable[str], send: SendFrame, close: Close
    ) -> SignalConnection:
        """Register an authenticated socket; it receives nothing until it subscribes."""
        conn = SignalConnection(user_entity_ref, ownership_refs, send, close)
        self._connections[conn.id] = conn
        self._by_user.setdefault(user_entity_ref, set()).add(conn)
        for ref in conn.ownership_refs:
            self._by_ref.setdefault(ref, set()).add(conn)
        return conn

    def remove_connection(self, conn: SignalConnection) -> None:
        """Forget a socket (idempotent)."""
        if self._connections.pop(conn.id, None) is None:
            return
        _discard(self._by_user, conn.user_entity_ref, conn)
        for ref in conn.ownership_refs:
            _discard(self._by_ref, ref, conn)
        for channel in conn.channels:
            _discard(self._by_channel, channel, conn)
        conn.channels.clear()

    def subscribe(self, conn: SignalConnection, channel: str) -> None:
        """Add ``channel`` to the socket's subscriptions (idempotent)."""
        if channel in conn.channels or conn.id not in self._connections:
            return
        if len(channel) > self.limits.max_channel_name_length:
            self._warn(
                conn,
                f"Connection {conn.id} sent a channel name longer than "
                f"{self.limits.max_channel_name_length} characters; subscribe ignored",
            )
            return
        if len(conn.channels) >= self.limits.max_channels_per_socket:
            self._warn(
                conn, f"Connection {conn.id} exceeded {self.limits.max_channels_per_socket} channels; subscribe ignored"
            )
            return
        conn.channels.add(channel)
        self._by_channel.setdefault(channel, set()).add(conn)

    def unsubscribe(self, conn: SignalConnection, channel: str) -> None:
        """Remove ``channel`` from the socket's subscriptions (idempotent)."""
        if channel in conn.channels:
            conn.channels.discard(channel)
            _discard(self._by_channel, channel, conn)
        conn.resumed.pop(channel, None)
        conn.held.pop(channel, None)

    def handle_client_message(self, conn: SignalConnection, text: str) -> tuple[str, str] | None:
        """Apply one client frame: ``{"action": "subscribe"|"unsubscribe", "channel": "..."}``.

        Malformed JSON is logged; anything else that is not a well-formed
        action is ignored. The connection always stays open. A subscribe with a
        ``since`` (a string) starts holding the channel's live frames and
        returns ``(channel, since)``: the caller then runs :meth:`resume`.
        Otherwise returns ``None``.
        """
        try:
            data = orjson.loads(text)
        except orjson.JSONDecodeError as error:
            self._warn(conn, f"Invalid message received from connection {conn.id}: {error}")
            return None
        if not isinstance(data, dict):
            return None
        channel = data.get("channel")
        if not isinstance(channel, str) or not channel:
            return None
        action = data.get("action")
        if action == "subscribe":
            self.subscribe(conn, channel)
            since = data.get("since")
            if isinstance(since, str) and channel in conn.channels and channel not in conn.held:
                conn.held[channel] = []  # from now on live frames wait for the replay
                return channel, since
        elif action == "unsubscribe":
            self.unsubscribe(conn, channel)
        return None

    async def resume(self, conn: SignalConnection, channels: list[str], since: str) -> None:
        """Send what ``conn`` missed on ``channels`` since position ``since``, then release held live frames.

        ``since`` is a position from an earlier frame, or ``""`` for "nothing
        yet" (the client only learns the current position). The channels must
        be subscribed and in :attr:`SignalConnection.held` already. Sends, in
        order: the missed frames; or one ``resync`` per channel when the
        position cannot be resumed (unknown, another epoch, older than the
        history, or no history); then a ``position`` frame per channel when the
        stream moved past the last frame sent; then the held live frames not
        already sent.
        """
        for channel in channels:
            conn.held.setdefault(channel, [])
        replay = await self._read_replay(conn, channels, since)
        live = [channel for channel in channels if channel in conn.held and channel in conn.channels]
        if not self._send_replay(conn, live, replay):
            self._evict(conn)
            return
        for channel in live:
            held = conn.held.pop(channel)
            if replay is not None:
                conn.resumed[channel] = replay.head
            else:
                conn.resumed.pop(channel, None)
            for frame in held:
                if not conn.offer(channel, frame):
                    self._evict(conn)
                    return

    async def _read_replay(self, conn: SignalConnection, channels: list[str], since: str) -> Replay | None:
        """What the history says about ``since`` (``None`` without a history or when it cannot be read)."""
        if self.history is None:
            return None
        position = parse_position(since)
        try:
            if position is not None:
                return await self.history.replay(position, channels, conn.ownership_refs)
            # "": nothing seen yet; anything else is not a position of ours
            return Replay([], await self.history.head(), since != "")
        except Exception as error:
            self._logger.warning("Failed to read the signal history for connection %s", conn.id, exc_info=error)
            return None

    def _send_replay(self, conn: SignalConnection, live: list[str], replay: Replay | None) -> bool:
        """Queue the replayed frames, or the resyncs, then the position frames; ``False`` if the socket is full."""
        frames: list[Frame] = []
        if replay is None or replay.resync:
            head = replay.head if replay is not None else None
            for channel in live:
                control: dict[str, Any] = {"action": "resync", "channel": channel}
                if head is not None:
                    control["position"] = str(head)
                frames.append(Frame(orjson.dumps(control).decode(), head, "resync"))
        else:
            epoch = replay.head.epoch
            frames.extend(
                _frame(entry.channel, entry.message, format_position(epoch, entry.seq))
                for entry in replay.entries
                if entry.channel in live
            )
            last_sent = {entry.channel: entry.seq for entry in replay.entries}
            frames.extend(
                _position_frame(channel, replay.head) for channel in live if last_sent.get(channel) != replay.head.seq
            )
        return all(conn.enqueue(frame) for frame in frames)

    def advance(self, watermark: Position | None) -> int:
        """Tell idle resumed subscriptions that the stream moved on to ``watermark``; return how many.

        Every signal up to ``watermark`` has been queued for this process's
        sockets, so a client may resume from it later; this keeps a client
        that received nothing for a while from falling behind the history.
        """
        if watermark is None:
            return 0
        frame_of: dict[str, Frame] = {}
        sent = 0
        for conn in list(self._connections.values()):
            for channel, last in list(conn.resumed.items()):
                if channel in conn.held or (last.epoch == watermark.epoch and last.seq >= watermark.seq):
                    continue
                if channel not in frame_of:
                    frame_of[channel] = _position_frame(channel, watermark)
                conn.resumed[channel] = watermark
                if conn.enqueue(frame_of[channel]):
                    sent += 1
                else:
                    self._evict(conn)
                    break
        return sent

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
        frame = _frame(channel, message, signal.get("position"))
        delivered = 0
        for conn in targets:
            if conn.offer(channel, frame):
                delivered += 1
            else:
                self._evict(conn)
        return delivered

    def deliver_many(self, signals: Sequence[Any]) -> int:
        """:meth:`deliver` each of ``signals`` in order, skipping at once those on channels no socket here follows."""
        subscribed = self._by_channel
        delivered = 0
        for signal in signals:
            if isinstance(signal, dict):
                channel = signal.get("channel")
                if isinstance(channel, str) and channel in subscribed:
                    delivered += self.deliver(signal)
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

    def _warn(self, conn: SignalConnection, message: str) -> None:
        text = conn.warning(message)
        if text is not None:
            self._logger.warning(text)

    def _evict(self, conn: SignalConnection) -> None:
        self._logger.warning("Connection %s is not reading its signals; closing it", conn.id)
        self.remove_connection(conn)
        task = asyncio.get_running_loop().create_task(self._close_quietly(conn, CLOSE_SLOW_CONSUMER))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def _close_quietly(self, conn: SignalConnection, code: int) -> None:
        try:
            await conn.close(code)
        except Exception as error:  # noqa: BLE001 - whatever the server raises, the socket is already gone
            self._logger.debug("Closing connection %s failed: %s", conn.id, error)


def _frame(channel: str, message: Any, position: Any) -> Frame:
    """The frame of one signal (serialised once for all its sockets)."""
    parsed = parse_position(position)
    if parsed is None:
        return Frame(orjson.dumps({"channel": channel, "message": message}).decode())
    return Frame(orjson.dumps({"channel": channel, "message": message, "position": position}).decode(), parsed)


def _position_frame(channel: str, position: Position) -> Frame:
    """``{"action": "position", ...}``: the client may resume ``channel`` from ``position``."""
    text = orjson.dumps({"action": "position", "channel": channel, "position": str(position)}).decode()
    return Frame(text, position, "position")


def _discard(index: dict[str, set[SignalConnection]], key: str, conn: SignalConnection) -> None:
    members = index.get(key)
    if members is not None:
        members.discard(conn)
        if not members:
            del index[key]
