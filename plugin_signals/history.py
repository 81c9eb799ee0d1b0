"""Signal history: every published signal gets a position, and a client can resume from one.

Each published signal is one history *entry*: its sequence number in the
deployment's stream, its channel, its recipients (``None`` for a broadcast,
else the lower-cased entity refs) and its message. A broadcast is one entry,
whatever the number of users; a client's own stream is the entries its
ownership refs match, filtered on replay. Sequence numbers are consecutive
within an *epoch* (a random id created with the stream); a new epoch (the
store was emptied) makes every older position unusable.

A position is the opaque string ``"<epoch>-<seq>"`` (:func:`format_position`).

Stores (chosen by :func:`create_history`):

* :class:`SqlHistory` - the signals plugin's database (PostgreSQL, or SQLite
  when embedded): tables ``signal_stream`` (one row: epoch and last sequence
  number, updated in the appending transaction, so entries commit in sequence
  order) and ``signal_history``.
* :class:`RedisHistory` - Redis Streams, with ``events.bus: redis``: a stream
  whose entry ids are the sequence numbers, and a hash holding the epoch and
  the counter, both written by one Lua script.

Entries are kept for ``signals.history.maxAge`` and at most
``signals.history.maxMessages`` of them (:meth:`SignalHistory.prune`, run by
the scheduler).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Protocol

import orjson
import sqlalchemy as sa

from host import read_section
from plugin_signals.config_schema import SignalsHistoryConfig

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

#: Entries read per query while replaying.
READ_PAGE = 1000


@dataclass(frozen=True)
class Position:
    """A point in the stream: ``seq`` within ``epoch``."""

    epoch: str
    seq: int

    def __str__(self) -> str:
        return format_position(self.epoch, self.seq)


def format_position(epoch: str, seq: int) -> str:
    """The wire form of a position: ``"<epoch>-<seq>"``."""
    return f"{epoch}-{seq}"


def parse_position(text: Any) -> Position | None:
    """The :class:`Position` in ``text``, or ``None`` when it is not one."""
    if not isinstance(text, str) or len(text) > 80:
        return None
    epoch, sep, seq = text.rpartition("-")
    if not sep or not epoch or not seq.isdigit() or len(seq) > 19:
        return None
    return Position(epoch, int(seq))


def new_epoch() -> str:
    """A fresh random epoch id."""
    return secrets.token_hex(6)


@dataclass(frozen=True)
class HistoryEntry:
    """One stored signal."""

    seq: int
    channel: str
    recipients: tuple[str, ...] | None  # None: broadcast; else lower-cased entity refs
    message: Any

    def reaches(self, refs: frozenset[str]) -> bool:
        """Whether a connection with the (lower-cased) ownership ``refs`` receives this entry."""
        return self.recipients is None or not refs.isdisjoint(self.recipients)

    def signal(self, epoch: str) -> dict[str, Any]:
        """The event payload this entry was published as."""
        recipients: dict[str, Any] = (
            {"type": "broadcast"} if self.recipients is None else {"type": "user", "entityRef": list(self.recipients)}
        )
        return {
            "recipients": recipients,
            "channel": self.channel,
            "message": self.message,
            "position": format_position(epoch, self.seq),
        }


def entry_recipients(recipients: dict[str, Any]) -> tuple[str, ...] | None:
    """The stored form of a (validated) signal's recipients."""
    if recipients.get("type") == "broadcast":
        return None
    refs = recipients.get("entityRef")
    refs = [refs] if isinstance(refs, str) else refs
    if isinstance(refs, list) and len(refs) == 1 and isinstance(refs[0], str):
        return (refs[0].lower(),)  # the common case (one user), without a set and a sort
    if not isinstance(refs, list):
        return ()  # reaches nobody, as live delivery
    return tuple(sorted({ref.lower() for ref in refs if isinstance(ref, str)}))


@dataclass(frozen=True)
class Replay:
    """The answer to "what did I miss since ``since``": entries, or a resync, and the stream's head."""

    entries: list[HistoryEntry]
    head: Position
    resync: bool


@dataclass(frozen=True)
class HistorySettings:
    """``signals.history``: how long and how much is kept, the gap wait of live delivery, position updates."""

    enabled: bool = True
    max_age: timedelta = timedelta(minutes=10)
    max_messages: int = 10_000
    prune_interval: timedelta = timedelta(minutes=1)
    gap_timeout: timedelta = timedelta(seconds=1)
    position_interval: timedelta = timedelta(seconds=30)

    @classmethod
    def from_config(cls, config: Any) -> HistorySettings:
        """Read ``signals.history`` through its model (missing keys keep their defaults; bad values fail)."""
        return cls(**read_section(config, "signals.history", SignalsHistoryConfig).model_dump(exclude_none=True))


class SignalHistory(Protocol):
    """Where signals are kept for replay."""

    async def start(self) -> None:
        """Create what the store needs (idempotent, safe from concurrent workers)."""

    async def append(self, items: Sequence[tuple[str, tuple[str, ...] | None, Any]]) -> tuple[str, int]:
        """Store ``(channel, recipients, message)`` items with consecutive sequence numbers.

        Returns the epoch and the sequence number of the last item.
        """

    async def head(self) -> Position:
        """The epoch and the last sequence number given out."""

    async def entries(self, after: int, upto: int) -> list[HistoryEntry]:
        """The entries with ``after < seq <= upto``, in order (for filling a live gap)."""

    async def replay(self, since: Position, channels: Iterable[str], refs: frozenset[str]) -> Replay:
        """The entries after ``since`` on ``channels`` that ``refs`` receive, or a resync."""

    async def prune(self) -> int:
        """Drop entries past the age and count bounds; return how many (approximately for Redis)."""

    async def stop(self) -> None:
        """Release connections."""


def _verdict(since: Position, head: Position, oldest: int | None) -> bool:
    """Whether a client at ``since`` must resync (its position is not resumable)."""
    if since.epoch != head.epoch or since.seq > head.seq:
        return True
    if since.seq == head.seq:
        return False
    # Something was published after ``since``; all of it must still be here.
    return oldest is None or oldest > since.seq + 1


def _decode_entry(seq: int, body: bytes | str) -> HistoryEntry:
    data = orjson.loads(body)
    recipients = data.get("r")
    return HistoryEntry(seq, data["c"], None if recipients is None else tuple(recipients), data.get("m"))


def _encode_entry(channel: str, recipients: tuple[str, ...] | None, message: Any) -> bytes:
    return orjson.dumps({"c": channel, "r": recipients, "m": message})


# -- SQL (PostgreSQL, SQLite) --------------------------------------------------------------------

metadata = sa.MetaData()
stream_table = sa.Table(
    "signal_stream",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("epoch", sa.String(32), nullable=False),
    sa.Column("seq", sa.BigInteger, nullable=False),
)
history_table = sa.Table(
    "signal_history",
    metadata,
    sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("created_ms", sa.BigInteger, nullable=False),
    sa.Column("channel", sa.Text, nullable=False),
    sa.Column("body", sa.Text, nullable=False),
)
_STREAM_ID = 1
# $1 stream id, $2 entry count, $3 created_ms, $4 channels (one per entry, or one for all), $5 the bodies joined
# with newlines (compact JSON has none): one text, not an array of thousands. Entry i gets seq - $2 + i, i from 1.
_PG_APPEND = """
WITH stream AS (
    UPDATE signal_stream SET seq = seq + $2 WHERE id = $1 RETURNING epoch, seq
), inserted AS (
    INSERT INTO signal_history (seq, created_ms, channel, body)
    SELECT stream.seq - $2 + entry.ord, $3,
           CASE WHEN cardinality($4::text[]) = 1 THEN ($4::text[])[1] ELSE ($4::text[])[entry.ord] END, entry.body
    FROM stream, unnest(string_to_array($5::text, E'\\n')) WITH ORDINALITY AS entry(body, ord)
)
SELECT epoch, seq FROM stream
"""


def _now_ms() -> int:
    return int(time.time() * 1000)


class SqlHistory:
    """Signal history in the signals plugin's database (see the module docstring)."""

    def __init__(self, engine: AsyncEngine, settings: HistorySettings) -> None:
        self._engine = engine
        self._settings = settings

    async def start(self) -> None:
        """Create the stream row with a fresh epoch unless another worker did."""
        async with self._engine.begin() as conn:
            found = await conn.scalar(sa.select(stream_table.c.id).where(stream_table.c.id == _STREAM_ID))
        if found is not None:
            return
        try:
            async with self._engine.begin() as conn:
                await conn.execute(sa.insert(stream_table).values(id=_STREAM_ID, epoch=new_epoch(), seq=0))
        except sa.exc.IntegrityError:
            pass  # a concurrent worker created it

    async def append(self, items: Sequence[tuple[str, tuple[str, ...] | None, Any]]) -> tuple[str, int]:
        """Take the next sequence numbers (row lock until commit) and insert the entries."""
        now = _now_ms()
        if self._engine.dialect.name == "postgresql":
            return await self._append_pg(items, now)
        async with self._engine.begin() as conn:
            row = (
                await conn.execute(
                    sa.update(stream_table)
                    .where(stream_table.c.id == _STREAM_ID)
                    .values(seq=stream_table.c.seq + len(items))
                    .returning(stream_table.c.epoch, stream_table.c.seq)
                )
            ).one()
            first = row.seq - len(items) + 1
            await conn.execute(
                sa.insert(history_table),
                [
                    {
                        "seq": first + index,
                        "created_ms": now,
                        "channel": channel,
                        "body": _encode_entry(channel, recipients, message).decode(),
                    }
                    for index, (channel, recipients, message) in enumerate(items)
                ],
            )
        return str(row.epoch), int(row.seq)

    async def _append_pg(self, items: Sequence[tuple[str, tuple[str, ...] | None, Any]], now: int) -> tuple[str, int]:
        """PostgreSQL: the same update and insert as one prepared statement outside a transaction.

        A statement is atomic on its own, so this needs no BEGIN/COMMIT: one round trip
        instead of four, and the stream row's lock is held only while the statement runs.
        """
        channels = [channel for channel, _, _ in items]
        if channels and channels.count(channels[0]) == len(channels):
            channels = channels[:1]  # a fan-out: one channel for every entry
        bodies = "\n".join(
            [_encode_entry(channel, recipients, message).decode() for channel, recipients, message in items]
        )
        async with self._engine.connect() as conn:
            raw = await conn.get_raw_connection()
            driver = raw.driver_connection
            assert driver is not None
            row = await driver.fetchrow(_PG_APPEND, _STREAM_ID, len(items), now, channels, bodies)
        if row is None:
            raise RuntimeError("the signal_stream row is missing (SqlHistory.start was not run)")
        return str(row["epoch"]), int(row["seq"])

    async def head(self) -> Position:
        """The stream's epoch and last sequence number."""
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(
                    sa.select(stream_table.c.epoch, stream_table.c.seq).where(stream_table.c.id == _STREAM_ID)
                )
            ).one()
        return Position(str(row.epoch), int(row.seq))

    async def entries(self, after: int, upto: int) -> list[HistoryEntry]:
        """Entries in ``(after, upto]``."""
        query = (
            sa.select(history_table.c.seq, history_table.c.body)
            .where(history_table.c.seq > after, history_table.c.seq <= upto)
            .order_by(history_table.c.seq)
        )
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [_decode_entry(int(row.seq), row.body) for row in rows]

    async def replay(self, since: Position, channels: Iterable[str], refs: frozenset[str]) -> Replay:
        """Read forward from ``since`` page by page, then check nothing after it was pruned."""
        head = await self.head()
        wanted = sorted(set(channels))
        found: list[HistoryEntry] = []
        if since.epoch == head.epoch and since.seq < head.seq:
            cursor = since.seq
            async with self._engine.connect() as conn:
                while cursor < head.seq:
                    rows = (
                        await conn.execute(
                            sa.select(history_table.c.seq, history_table.c.body)
                            .where(
                                history_table.c.seq > cursor,
                                history_table.c.seq <= head.seq,
                                history_table.c.channel.in_(wanted),
                            )
                            .order_by(history_table.c.seq)
                            .limit(READ_PAGE)
                        )
                    ).all()
                    for row in rows:
                        entry = _decode_entry(int(row.seq), row.body)
                        if entry.reaches(refs):
                            found.append(entry)
                    if len(rows) < READ_PAGE:
                        break
                    cursor = int(rows[-1].seq)
        # Checked after reading: pruning only moves the oldest entry forward.
        async with self._engine.connect() as conn:
            oldest = await conn.scalar(sa.select(sa.func.min(history_table.c.seq)))
        if _verdict(since, head, None if oldest is None else int(oldest)):
            return Replay([], head, True)
        return Replay(found, head, False)

    async def prune(self) -> int:
        """Delete entries older than ``maxAge`` or beyond the newest ``maxMessages``."""
        head = await self.head()
        cutoff = _now_ms() - int(self._settings.max_age.total_seconds() * 1000)
        async with self._engine.begin() as conn:
            result = await conn.execute(
                sa.delete(history_table).where(
                    sa.or_(
                        history_table.c.seq <= head.seq - self._settings.max_messages,
                        history_table.c.created_ms < cutoff,
                    )
                )
            )
        return int(result.rowcount or 0)

    async def stop(self) -> None:
        """Nothing to release: the engine belongs to the plugin's database."""


# -- Redis Streams --------------------------------------------------------------------------------

# KEYS: meta hash, stream. ARGV: a fresh epoch, max length, now (ms), then one encoded entry each.
# A missing meta hash means a new epoch: the stream is emptied so its ids restart with the counter.
_APPEND_SCRIPT = """
if redis.call('HSETNX', KEYS[1], 'epoch', ARGV[1]) == 1 then
  redis.call('DEL', KEYS[2])
end
local epoch = redis.call('HGET', KEYS[1], 'epoch')
local n = #ARGV - 3
local last = redis.call('HINCRBY', KEYS[1], 'seq', n)
for i = 1, n do
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], (last - n + i) .. '-0', 't', ARGV[3], 'e', ARGV[3 + i])
end
return {epoch, last}
"""


def _seq_of(entry_id: bytes | str) -> int:
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    return int(text.partition("-")[0])


class RedisHistory:
    """Signal history in Redis Streams (see the module docstring).

    Keys are ``{<bus channel>}:signals:meta`` and ``{<bus channel>}:signals:log``
    (one hash tag, so a Redis Cluster keeps them on one node for the script).
    """

    def __init__(self, url: str, namespace: str, settings: HistorySettings) -> None:
        import redis.asyncio as aioredis

        # Typed loosely: redis-py's stubs widen every reply to Optional unions.
        self._client: Any = aioredis.Redis.from_url(url)
        self._meta = f"{{{namespace}}}:signals:meta"
        self._stream = f"{{{namespace}}}:signals:log"
        self._settings = settings
        self._append = self._client.register_script(_APPEND_SCRIPT)

    async def start(self) -> None:
        """Create the epoch unless it exists."""
        if await self._client.hsetnx(self._meta, "epoch", new_epoch()):
            await self._client.delete(self._stream)

    async def append(self, items: Sequence[tuple[str, tuple[str, ...] | None, Any]]) -> tuple[str, int]:
        """Run the append script: consecutive ids, one round trip."""
        encoded = [_encode_entry(channel, recipients, message) for channel, recipients, message in items]
        epoch, last = await self._append(
            keys=[self._meta, self._stream], args=[new_epoch(), self._settings.max_messages, _now_ms(), *encoded]
        )
        return (epoch.decode() if isinstance(epoch, bytes) else str(epoch)), int(last)

    async def head(self) -> Position:
        """The epoch and counter from the meta hash (a fresh epoch if Redis lost it)."""
        values = await self._client.hmget(self._meta, ["epoch", "seq"])
        if values[0] is None:
            await self.start()
            values = await self._client.hmget(self._meta, ["epoch", "seq"])
        return Position(values[0].decode(), int(values[1] or 0))

    async def entries(self, after: int, upto: int) -> list[HistoryEntry]:
        """Entries in ``(after, upto]``."""
        if upto <= after:
            return []
        rows = await self._client.xrange(self._stream, f"{after + 1}-0", f"{upto}-0")
        return [_decode_entry(_seq_of(entry_id), fields[b"e"]) for entry_id, fields in rows]

    async def replay(self, since: Position, channels: Iterable[str], refs: frozenset[str]) -> Replay:
        """Read the stream forward from ``since``; keep this client's entries on ``channels``."""
        head = await self.head()
        wanted = set(channels)
        found: list[HistoryEntry] = []
        if since.epoch == head.epoch and since.seq < head.seq:
            cursor = since.seq
            while cursor < head.seq:
                rows = await self._client.xrange(self._stream, f"{cursor + 1}-0", f"{head.seq}-0", count=READ_PAGE)
                for entry_id, fields in rows:
                    entry = _decode_entry(_seq_of(entry_id), fields[b"e"])
                    if entry.channel in wanted and entry.reaches(refs):
                        found.append(entry)
                if len(rows) < READ_PAGE:
                    break
                cursor = _seq_of(rows[-1][0])
        first = await self._client.xrange(self._stream, "-", "+", count=1)
        oldest = _seq_of(first[0][0]) if first else None
        if _verdict(since, head, oldest):
            return Replay([], head, True)
        return Replay(found, head, False)

    async def prune(self) -> int:
        """Trim to ``maxMessages`` exactly (appends trim approximately) and drop entries older than ``maxAge``."""
        trimmed = int(await self._client.xtrim(self._stream, maxlen=self._settings.max_messages, approximate=False))
        cutoff = _now_ms() - int(self._settings.max_age.total_seconds() * 1000)
        start = "-"
        keep: bytes | None = None
        last_old: bytes | None = None
        while keep is None:
            rows = await self._client.xrange(self._stream, start, "+", count=READ_PAGE)
            for entry_id, fields in rows:
                if int(fields[b"t"]) >= cutoff:
                    keep = entry_id
                    break
                last_old = entry_id
            if len(rows) < READ_PAGE:
                break
            start = f"({_seq_of(rows[-1][0])}-0"
        if keep is not None:
            return trimmed + int(await self._client.xtrim(self._stream, minid=keep))
        if last_old is not None:
            return trimmed + int(await self._client.xtrim(self._stream, minid=f"{_seq_of(last_old) + 1}-0"))
        return trimmed

    async def stop(self) -> None:
        """Close the client."""
        await self._client.aclose()
