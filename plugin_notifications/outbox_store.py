"""Database access of the outbox: claiming due rows with a lease, recording outcomes, operator queries.

Claims are one statement: ``UPDATE ... WHERE id IN (SELECT ... LIMIT n)``,
``FOR UPDATE SKIP LOCKED`` in the sub-select on PostgreSQL (workers never
wait on each other's rows) and inside SQLite's single write transaction
there. A row is claimable when it is ``pending``, due, and not leased (or
its lease expired: the worker that held it died). Outcomes are recorded
only while the recording worker still holds the lease.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from plugin_notifications import tables as t
from plugin_notifications.models import utc_now
from plugin_notifications.outbox import (
    DEAD,
    FAILED,
    OPEN_STATUSES,
    PENDING,
    PLAN_CHANNEL,
    ROW_DONE,
    ROW_PENDING,
    OutboxItems,
    compact_items,
    delivery_id,
    expand_items,
)

o = t.notification_outbox


@dataclass(frozen=True)
class StoredSend:
    """A stored notification as its delivery log needs it."""

    #: The recipient; ``None`` for a broadcast.
    user: str | None
    #: When the notification was created (the web inbox's delivery time).
    created: datetime
    #: Its ``notification_send`` row; ``None`` when the send recorded none (asked for directly,
    #: nothing but the web inbox) or for rows stored before delivery logs existed.
    send: dict[str, Any] | None


async def write_send(conn: AsyncConnection, send: dict[str, Any], rows: Sequence[dict[str, Any]]) -> None:
    """Insert a send and its outbox rows on ``conn`` (inside the caller's transaction)."""
    await conn.execute(sa.insert(t.notification_send), [send])
    if rows:
        await conn.execute(sa.insert(o), list(rows))


async def _requested_refs(conn: AsyncConnection, send_ids: set[str]) -> dict[str, list[str]]:
    """The entity refs each send addressed (``resolution.requested``; absent for broadcasts and older sends)."""
    if not send_ids:
        return {}
    s = t.notification_send
    stmt = sa.select(s.c.id, s.c.resolution["requested"].label("requested")).where(s.c.id.in_(sorted(send_ids)))
    found: dict[str, list[str]] = {}
    for row in await conn.execute(stmt):
        if isinstance(row.requested, list):
            found[str(row.id)] = [str(ref) for ref in row.requested]
    return found


class OutboxStore:
    """Claims, outcomes, counters and operator views of ``notification_outbox``."""

    def __init__(self, engine: AsyncEngine, now: Callable[[], datetime] = utc_now) -> None:
        self._engine = engine
        self._reader = engine.execution_options(isolation_level="AUTOCOMMIT")
        self._dialect = engine.dialect.name
        self._now = now

    async def claim(self, owner: str, channels: Sequence[str], limit: int, lease_seconds: float) -> list[OutboxItems]:
        """Lease up to ``limit`` due rows of ``channels`` to ``owner``; return them.

        A held row (one delivery of a digest) brings every other due held row of
        the same user and channel along, past ``limit``, so a digest is never split.
        """
        if not channels:
            return []
        now = self._now()
        free = sa.or_(o.c.lease_expires.is_(None), o.c.lease_expires < now)
        due = (
            sa.select(o.c.id)
            .where(
                o.c.state == ROW_PENDING,
                o.c.next_attempt <= now,
                o.c.channel.in_(list(channels)),
                free,
            )
            .order_by(o.c.next_attempt)
            .limit(limit)
        )
        async with self._engine.begin() as conn:
            rows = await self._lease(conn, due, owner, now, lease_seconds)
            keys = sorted({row["digest_key"] for row in rows if row["digest_key"] is not None})
            if keys:
                siblings = sa.select(o.c.id).where(
                    o.c.digest_key.in_(keys), o.c.state == ROW_PENDING, o.c.next_attempt <= now, free
                )
                rows += await self._lease(conn, siblings, owner, now, lease_seconds)
            requested = await _requested_refs(conn, {str(row["send_id"]) for row in rows})
        return [OutboxItems(row, requested.get(str(row["send_id"]), ())) for row in rows]

    async def _lease(
        self, conn: AsyncConnection, select: Any, owner: str, now: datetime, lease_seconds: float
    ) -> list[Any]:
        if self._dialect == "postgresql":
            select = select.with_for_update(skip_locked=True)
        stmt = (
            sa.update(o)
            .where(o.c.id.in_(select.scalar_subquery()))
            .values(lease_owner=owner, lease_expires=now + timedelta(seconds=lease_seconds))
            .returning(o.c.id, o.c.send_id, o.c.channel, o.c.origin, o.c.created, o.c["items"], o.c.digest_key)
        )
        return list((await conn.execute(stmt)).mappings())

    async def record(
        self, owner: str, rows: Sequence[tuple[OutboxItems, datetime]], counters: dict[tuple[str, str], int]
    ) -> int:
        """Store each row's items and next attempt (releasing the lease) and add to the counters.

        A row whose lease ``owner`` no longer holds (it expired and another worker claimed it)
        is left alone. Returns how many rows were recorded.
        """
        now = self._now()
        recorded = 0
        async with self._engine.begin() as conn:
            for items, next_attempt in rows:
                result = await conn.execute(
                    sa.update(o)
                    .where(o.c.id == items.row_id, o.c.lease_owner == owner)
                    .values(
                        items=compact_items(dict(items.items)),
                        state=ROW_PENDING if items.open else ROW_DONE,
                        next_attempt=next_attempt,
                        updated=now,
                        lease_owner=None,
                        lease_expires=None,
                    )
                )
                recorded += result.rowcount or 0
            await self._add_counters(conn, counters)
        return recorded

    async def _add_counters(self, conn: AsyncConnection, counters: dict[tuple[str, str], int]) -> None:
        values = [{"channel": c, "name": n, "value": v} for (c, n), v in counters.items() if v]
        if not values:
            return
        dialect_insert = postgresql.insert if self._dialect == "postgresql" else sqlite.insert
        stmt = dialect_insert(t.notification_delivery_counter)
        stmt = stmt.on_conflict_do_update(
            index_elements=["channel", "name"],
            set_={"value": t.notification_delivery_counter.c.value + stmt.excluded.value},
        )
        await conn.execute(stmt, values)

    async def next_due(self, channels: Sequence[str]) -> datetime | None:
        """When the earliest pending row of ``channels`` is due (or its lease ends)."""
        if not channels:
            return None
        stmt = sa.select(sa.func.min(sa.func.coalesce(o.c.lease_expires, o.c.next_attempt))).where(
            o.c.state == ROW_PENDING, o.c.channel.in_(list(channels))
        )
        async with self._reader.connect() as conn:
            value = await conn.scalar(stmt)
        return t.UtcDateTime().process_result_value(value, self._engine.dialect) if value is not None else None

    # -- delivery log ------------------------------------------------------------

    async def send_of(self, notification_id: str) -> StoredSend | None:
        """Where the delivery log of a stored notification or broadcast starts; ``None`` when not stored."""
        n, b, s = t.notification, t.broadcast, t.notification_send
        async with self._reader.connect() as conn:
            found = (
                await conn.execute(sa.select(n.c.user, n.c.send_id, n.c.created).where(n.c.id == notification_id))
            ).first()
            if found is None:
                found = (
                    await conn.execute(
                        sa.select(sa.null().label("user"), b.c.send_id, b.c.created).where(b.c.id == notification_id)
                    )
                ).first()
            if found is None:
                return None
            send = None
            if found.send_id is not None:
                send = (await conn.execute(sa.select(s).where(s.c.id == found.send_id))).mappings().first()
            return StoredSend(found.user, found.created, dict(send) if send else None)

    async def rows_of_send(self, send_id: str) -> list[OutboxItems]:
        """Every outbox row of one send."""
        async with self._reader.connect() as conn:
            result = await conn.execute(
                sa.select(o.c.id, o.c.channel, o.c.origin, o.c.created, o.c["items"], o.c.updated)
                .where(o.c.send_id == send_id, o.c.channel != PLAN_CHANNEL)
                .order_by(o.c.channel, o.c.created)
            )
            return [OutboxItems(row) for row in result.mappings()]

    async def planning_channels(self, send_id: str) -> list[str] | None:
        """The channels of a send whose deliveries a dispatcher has yet to plan, or ``None`` when planned."""
        async with self._reader.connect() as conn:
            items = await conn.scalar(
                sa.select(o.c["items"]).where(
                    o.c.send_id == send_id, o.c.channel == PLAN_CHANNEL, o.c.state == ROW_PENDING
                )
            )
        return None if items is None else [str(name) for name in items.get("channels") or []]

    async def replace_plan(self, owner: str, plan: OutboxItems, rows: Sequence[dict[str, Any]]) -> bool:
        """Swap a planning row that ``owner`` leases for its delivery ``rows``, in one transaction.

        ``False`` (nothing written) when the lease was lost: another dispatcher plans it.
        """
        async with self._engine.begin() as conn:
            deleted = await conn.execute(sa.delete(o).where(o.c.id == plan.row_id, o.c.lease_owner == owner))
            if not deleted.rowcount:
                return False
            if rows:
                await conn.execute(sa.insert(o), list(rows))
        return True

    # -- operators ---------------------------------------------------------------

    async def list_deliveries(self, statuses: Iterable[str], limit: int = 1000) -> list[dict[str, Any]]:
        """Deliveries with one of ``statuses``, oldest rows first (at most ``limit``)."""
        wanted = set(statuses)
        found: list[dict[str, Any]] = []
        stmt = sa.select(o.c.id, o.c.channel, o.c.origin, o.c.created, o.c["items"], o.c.next_attempt).order_by(
            o.c.created, o.c.id
        )
        stmt = stmt.where(o.c.channel != PLAN_CHANNEL)
        if wanted <= OPEN_STATUSES:
            stmt = stmt.where(o.c.state == ROW_PENDING)
        async with self._engine.connect() as conn:  # a server-side cursor needs a transaction
            async for row in await conn.stream(stmt):
                items = expand_items(row._mapping["items"])
                for index, status in enumerate(items["status"]):
                    if status in wanted:
                        found.append(
                            {
                                "id": delivery_id(str(row.id), index),
                                "row": str(row.id),
                                "channel": row.channel,
                                "origin": row.origin,
                                "user": items["user"][index],
                                "notification": items["nid"][index],
                                "status": status,
                                "attempts": items["attempts"][index],
                                "lastError": items["error"][index],
                                "updated": items["updated"][index],
                            }
                        )
                        if len(found) >= limit:
                            return found
        return found

    async def retry(self, delivery_ids: Sequence[str] = (), *, all_dead: bool = False) -> int:
        """Make dead (or failed) deliveries pending again, attempts reset; return how many."""
        wanted = set(delivery_ids)
        retried = 0
        now = self._now()
        async with self._engine.begin() as conn:
            result = await conn.execute(sa.select(o.c.id, o.c["items"], o.c.state).where(o.c.channel != PLAN_CHANNEL))
            for row in result.all():
                items = expand_items(row._mapping["items"])
                changed = False
                for index, status in enumerate(items["status"]):
                    chosen = delivery_id(str(row.id), index) in wanted or (all_dead and status == DEAD)
                    if chosen and status in (DEAD, FAILED):
                        items["status"][index] = PENDING
                        items["attempts"][index] = 0
                        changed = True
                        retried += 1
                if changed:
                    await conn.execute(
                        sa.update(o)
                        .where(o.c.id == row.id)
                        .values(
                            items=compact_items(items),
                            state=ROW_PENDING,
                            next_attempt=now,
                            updated=now,
                            lease_owner=None,
                            lease_expires=None,
                        )
                    )
        return retried

    async def purge(self, older_than: timedelta) -> int:
        """Delete finished outbox rows, and sends, not touched within ``older_than``; return rows deleted."""
        cutoff = self._now() - older_than
        async with self._engine.begin() as conn:
            deleted = (await conn.execute(sa.delete(o).where(o.c.state == ROW_DONE, o.c.updated < cutoff))).rowcount
            s = t.notification_send
            open_sends = sa.select(o.c.send_id).where(o.c.send_id == s.c.id)
            await conn.execute(sa.delete(s).where(s.c.created < cutoff, ~sa.exists(open_sends)))
        return int(deleted or 0)

    async def metrics(self) -> dict[str, Any]:
        """Counters per channel, queue depth (open deliveries), sends still to plan and lag (age of the oldest due row).

        A send whose deliveries a dispatcher has yet to plan counts one delivery per user and channel.
        """
        now = self._now()
        c = t.notification_delivery_counter
        channels: dict[str, dict[str, int]] = {}
        depth: dict[str, int] = {}
        oldest_due: datetime | None = None
        planning = total = 0
        async with self._engine.connect() as conn:  # a server-side cursor needs a transaction
            for row in await conn.execute(sa.select(c.c.channel, c.c.name, c.c.value)):
                channels.setdefault(row.channel, {})[row.name] = int(row.value)
            pending = sa.select(o.c.channel, o.c["items"], o.c.next_attempt).where(o.c.state == ROW_PENDING)
            async for row in await conn.stream(pending):
                if row.channel == PLAN_CHANNEL:  # deliveries not planned yet: one per user and channel
                    items = row._mapping["items"]
                    open_count = len(items["user"]) * len(items.get("channels") or [])
                    planning += 1
                else:
                    statuses = expand_items(row._mapping["items"])["status"]
                    open_count = sum(1 for status in statuses if status in OPEN_STATUSES)
                    depth[row.channel] = depth.get(row.channel, 0) + open_count
                total += open_count
                due = row.next_attempt
                if due <= now and (oldest_due is None or due < oldest_due):
                    oldest_due = due
        for name in set(channels) | set(depth):
            channels.setdefault(name, {})["queueDepth"] = depth.get(name, 0)
        return {
            "channels": channels,
            "queueDepth": total,
            "sendsToPlan": planning,
            "lagSeconds": round((now - oldest_due).total_seconds(), 3) if oldest_due else 0.0,
        }


def new_owner() -> str:
    """A unique lease owner for one dispatcher (process id and a random part)."""
    return f"{os.getpid()}-{uuid.uuid4().hex[:12]}"
