"""Database access of the notifications plugin (SQLite and PostgreSQL).

A user's *visible set* is the union of their own ``notification`` rows and
every ``broadcast`` row left-joined with their ``broadcast_user_status``
row. Every read goes through :meth:`NotificationsStore._visible`, so no
query can ever return another user's notification.

Writes are bulk and atomic: a send to N users is one transaction of bulk ``INSERT``s (scoped
sends an ``INSERT ... ON CONFLICT DO UPDATE``), never one statement per
user.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from typing import Any

import orjson
import sqlalchemy as sa
from cachetools import LRUCache
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from plugin_notifications import tables as t
from plugin_notifications.limits import stored_metadata_is_renderable
from plugin_notifications.models import (
    FanOut,
    Notification,
    NotificationPayload,
    NotificationSettings,
    normalize_severity,
    severities_at_least,
    utc_now,
)
from plugin_notifications.outbox import renumber
from plugin_notifications.outbox_store import write_send

#: Columns a client may sort by (``orderField``).
ORDER_FIELDS = (
    "id",
    "user",
    "title",
    "description",
    "severity",
    "link",
    "origin",
    "scope",
    "topic",
    "icon",
    "created",
    "updated",
    "read",
    "saved",
)
_PAYLOAD_COLUMNS = ("title", "description", "link", "severity", "topic", "scope", "icon")
#: What a scoped re-send replaces always, and what it replaces only when sent (omitted fields are kept).
_REPLACED_COLUMNS = ("title", "severity")
_KEPT_UNLESS_SENT = ("description", "link", "topic", "icon", "metadata")
_CHUNK = 1000
#: Users per batch of a large fan-out: rows are built and written one batch at a time.
FAN_OUT_BATCH = 5000
#: From this many rows on, PostgreSQL inserts use COPY instead of INSERT.
_COPY_THRESHOLD = 200
#: The bind parameter every read of one user's visible set takes: its statements are built once
#: per shape (filters, order, paging) and cached; ``required`` makes a missing user an error.
_VIEWER = "viewer"
#: Built list/count statements kept per store (LRU; the default list is one shape).
_STATEMENT_CACHE_SIZE = 256


@dataclass
class NotificationFilters:
    """Filters shared by the list, count and topics queries (all combine with AND)."""

    search: str | None = None
    read: bool | None = None
    saved: bool | None = None
    created_after: datetime | None = None
    minimum_severity: str | None = None
    topic: str | None = None
    ids: Sequence[str] | None = None
    #: Greenroom only: ``False`` leaves archived notifications out, ``True`` shows only them, ``None`` both.
    archived: bool | None = None


@dataclass
class NotificationQuery:
    """A page of the visible set: filters, ordering and paging."""

    filters: NotificationFilters = field(default_factory=NotificationFilters)
    order: list[tuple[str, str]] = field(default_factory=lambda: [("created", "desc")])
    offset: int | None = None
    limit: int | None = None


#: A step run last inside a send's transaction, with what the send answers.
BeforeCommit = Callable[[AsyncConnection, Sequence[Notification]], Awaitable[None]]


@dataclass
class SendWrite:
    """What a send writes besides its notifications: the ``notification_send`` row and outbox rows."""

    row: dict[str, Any]
    outbox: list[dict[str, Any]] = field(default_factory=list)
    #: Runs last inside the send's transaction with what the send answers (an idempotency key records
    #: that answer there); raising rolls the whole send back.
    before_commit: BeforeCommit | None = None
    #: Set by the store: in how many batches a fan-out's rows were written.
    batches: int = 0

    @property
    def id(self) -> str:
        """The send's id (``notification.send_id``)."""
        return str(self.row["id"])


@dataclass(frozen=True)
class RetentionRule:
    """How long notifications of one origin and/or topic are kept (``notifications.retentionRules``).

    ``max_age`` ``None`` keeps them for ever. At least one of ``origin`` and ``topic`` is set; both must
    match (exactly) when both are.
    """

    origin: str | None
    topic: str | None
    max_age: timedelta | None


@dataclass(frozen=True)
class SettingRow:
    """One stored ``user_settings`` row."""

    user: str
    channel: str
    origin: str
    topic: str | None
    enabled: bool


def settings_key_hash(user: str, channel: str, origin: str, topic: str | None) -> str:
    """SHA-256 hex of ``user|channel|origin|topic`` (the unique key of a settings row)."""
    return hashlib.sha256(f"{user}|{channel}|{origin}|{topic or ''}".encode()).hexdigest()


def valid_ids(ids: Iterable[str]) -> list[str]:
    """Keep only well-formed UUIDs (anything else cannot name a notification)."""
    result = []
    for value in ids:
        try:
            result.append(str(uuid.UUID(value)))
        except (ValueError, TypeError, AttributeError):
            continue
    return result


class NotificationsStore:
    """All reads and writes of notifications, broadcasts, their status and user settings."""

    def __init__(self, engine: AsyncEngine, *, fan_out_batch: int = FAN_OUT_BATCH) -> None:
        self._engine = engine
        #: Users per batch of a large fan-out (``notifications.fanOutBatchSize``).
        self._fan_out_batch = max(1, fan_out_batch)
        self._reader = engine.execution_options(isolation_level="AUTOCOMMIT")
        self._dialect = engine.dialect.name
        # PERF: building a list statement (a union of two subqueries) cost more CPU than running it.
        self._statements: LRUCache[Any, Any] = LRUCache(maxsize=_STATEMENT_CACHE_SIZE)
        self._status: sa.Select[Any] | None = None

    # -- visible set -------------------------------------------------------------

    def _cached(self, key: Any, build: Callable[[], Any]) -> Any:
        """The statement built for ``key`` (None: not cacheable, build it each time)."""
        if key is None:
            return build()
        found = self._statements.get(key)
        if found is None:
            found = self._statements[key] = build()
        return found

    def _visible(self, filters: NotificationFilters) -> tuple[sa.Select[Any], sa.Select[Any]]:
        """The two branches (own rows, broadcasts) of a user's visible set, filtered; the user is ``:viewer``."""
        n, b, s = t.notification, t.broadcast, t.broadcast_user_status
        viewer = sa.bindparam(_VIEWER, type_=sa.String(255), required=True)
        sqlite_dialect = self._dialect == "sqlite"
        own = sa.select(*(n.c[name] for name in _SELECT_COLUMNS), *self._insertion_order(n, 0)).where(
            n.c.user == viewer,
            *_conditions(n, _Marks(n.c.read, n.c.saved, n.c.archived), filters, sqlite=sqlite_dialect),
        )
        shared_columns = {
            **{name: b.c[name] for name in _SELECT_COLUMNS if name in b.c},
            "read": s.c.read,
            "saved": s.c.saved,
            "archived": s.c.archived,
            "user": sa.null().cast(sa.String(255)).label("user"),
        }
        shared = (
            sa.select(*(shared_columns[name] for name in _SELECT_COLUMNS), *self._insertion_order(b, 1))
            .select_from(b.outerjoin(s, sa.and_(s.c.broadcast_id == b.c.id, s.c.user == viewer)))
            .where(
                s.c.deleted.is_(None),  # broadcasts this user deleted are gone for them
                *_conditions(b, _Marks(s.c.read, s.c.saved, s.c.archived), filters, sqlite=sqlite_dialect),
            )
        )
        return own, shared

    def _insertion_order(self, table: sa.Table, branch: int) -> tuple[Any, Any]:
        """``branch`` (own rows 0, broadcasts 1) and ``seq`` (insertion order): the tie-breakers of every list.

        SQLite's ``rowid`` is the insertion order; PostgreSQL has an identity column (migration 0003).
        """
        column = "rowid" if self._dialect == "sqlite" else "seq"
        return (
            sa.literal(branch, sa.Integer).label("branch"),
            sa.literal_column(f"{table.name}.{column}", sa.BigInteger).label("seq"),
        )

    async def list_notifications(self, user: str, query: NotificationQuery) -> tuple[list[Notification], int]:
        """Return one page of the caller's visible set and the total matching count."""
        if query.limit == 0:
            async with self._reader.connect() as conn:
                return [], await self._count(conn, user, query.filters)

        async def count() -> int:
            async with self._reader.connect() as conn:
                return await self._count(conn, user, query.filters)

        async def page() -> list[Notification]:
            async with self._reader.connect() as conn:
                return await self._page(conn, user, query)

        # As Backstage does, the count and the page run concurrently (two connections).
        total, rows = await asyncio.gather(count(), page())
        return rows, total

    async def _page(self, conn: AsyncConnection, user: str, query: NotificationQuery) -> list[Notification]:
        filters = _filters_key(query.filters)
        key = None if filters is None else ("page", filters, tuple(query.order), query.offset, query.limit)
        result = await conn.execute(self._cached(key, lambda: self._page_statement(query)), {_VIEWER: user})
        return [_to_notification(row) for row in result.mappings()]

    def _page_statement(self, query: NotificationQuery) -> sa.Select[Any]:
        own, shared = self._visible(query.filters)
        # Equal sort keys keep insertion order, own rows first (as Backstage's union returns them).
        order = [*query.order, ("branch", "asc"), ("seq", "asc")]
        if query.limit is not None:
            # PERF: the top k of a union is the top k of the union of each branch's top k,
            # so each branch can walk its (user, created) index and stop early.
            keep = (query.offset or 0) + query.limit
            own = sa.select(*own.order_by(*_order_by(own.selected_columns, order)).limit(keep).subquery().c)
            shared = sa.select(*shared.order_by(*_order_by(shared.selected_columns, order)).limit(keep).subquery().c)
        visible = sa.union_all(own, shared).subquery("visible")
        stmt = sa.select(visible).order_by(*_order_by(visible.c, order))
        if query.limit is not None:
            stmt = stmt.limit(query.limit)
        if query.offset:
            stmt = stmt.offset(query.offset)
        return stmt

    async def _count(self, conn: AsyncConnection, user: str, filters: NotificationFilters) -> int:
        def build() -> sa.Select[Any]:
            own, shared = self._visible(filters)
            return sa.select(
                sa.select(sa.func.count()).select_from(own.subquery()).scalar_subquery()
                + sa.select(sa.func.count()).select_from(shared.subquery()).scalar_subquery()
            )

        key = _filters_key(filters)
        return int(
            await conn.scalar(self._cached(None if key is None else ("count", key), build), {_VIEWER: user}) or 0
        )

    async def get_notifications(self, user: str, ids: Sequence[str]) -> list[Notification]:
        """The caller-visible notifications among ``ids``, newest first."""
        ids = list(dict.fromkeys(valid_ids(ids)))
        if not ids:
            return []
        found: list[Notification] = []
        async with self._reader.connect() as conn:
            # Chunks keep every statement under the databases' bind-parameter limits.
            for chunk in _chunks(ids):
                found.extend(await self._page(conn, user, NotificationQuery(filters=NotificationFilters(ids=chunk))))
        if len(ids) > _CHUNK:
            found.sort(key=lambda item: (item.created, item.id), reverse=True)
        return found

    async def get_notification(self, user: str, id: str) -> Notification | None:
        """One caller-visible notification, or ``None``."""
        found = await self.get_notifications(user, [id])
        return found[0] if found else None

    async def get_status(self, user: str) -> dict[str, int]:
        """``{unread, read}`` over the caller's own rows and every broadcast, archived (and deleted) ones left out.

        One statement of five counts, each an index range: own rows by ``(user, read, archived)``, this
        user's broadcast marks by ``broadcast_user_status(user)``; unread broadcasts are all broadcasts
        minus those this user read, archived or deleted.
        """
        if self._status is None:
            self._status = _status_statement()
        async with self._reader.connect() as conn:
            row = (await conn.execute(self._status, {_VIEWER: user})).one()
        return {
            "unread": row.own_unread + row.broadcasts - row.broadcasts_read - row.broadcasts_hidden,
            "read": row.own_read + row.broadcasts_read,
        }

    async def get_topics(self, user: str, filters: NotificationFilters) -> list[str]:
        """Distinct non-null topics of the caller's visible set, ascending."""
        own, shared = self._visible(filters)
        n, b = t.notification, t.broadcast
        topics = sa.union(
            own.with_only_columns(n.c.topic).where(n.c.topic.is_not(None)),
            shared.with_only_columns(b.c.topic).where(b.c.topic.is_not(None)),
        ).subquery("topics")
        stmt = sa.select(topics.c.topic).order_by(topics.c.topic)
        async with self._reader.connect() as conn:
            return list((await conn.scalars(stmt, {_VIEWER: user})).all())

    # -- writes ------------------------------------------------------------------

    async def save_user_notifications(
        self, notifications: Sequence[Notification], send: SendWrite | None = None
    ) -> Sequence[Notification]:
        """Store per-user notifications in bulk and return what the caller should see.

        Unscoped notifications are inserted. A notification with a scope
        replaces the caller's existing row with the same (user, origin, scope)
        in place: id and created stay, title and severity are replaced,
        description, link, topic, icon and metadata only when sent, ``updated``
        is set and ``read`` cleared. Those come back as the full stored row;
        inserted ones come back as given. ``send`` (its row and outbox rows)
        is written in the same transaction.
        """
        if not notifications and send is None:
            return []
        if isinstance(notifications, FanOut) and notifications.template.payload.scope is None:
            return await self._save_fan_out(notifications, send)
        send_id = send.id if send is not None else None
        plain = [item for item in notifications if item.payload.scope is None]
        scoped = [item for item in notifications if item.payload.scope is not None]
        restored: dict[str, Notification] = {}
        # One send is one transaction: a process killed mid-write leaves none of its rows.
        # Only a one-row INSERT or a PostgreSQL COPY (one statement each) may skip BEGIN/COMMIT;
        # a multi-row executemany outside a transaction commits row by row on SQLite.
        copy = self._dialect == "postgresql" and len(plain) >= _COPY_THRESHOLD
        one_statement = send is None and not scoped and (len(plain) == 1 or (copy and len(plain) == len(notifications)))
        async with self._reader.connect() if one_statement else self._engine.begin() as conn:
            if copy:
                await _copy_notifications(conn, plain, send_id)
            elif plain:
                for chunk in _chunks(plain):
                    await conn.execute(
                        sa.insert(t.notification), [_row(item, user=True, send_id=send_id) for item in chunk]
                    )
            for chunk in _chunks(scoped):
                stmt = self._upsert(t.notification, t.NOTIFICATION_SCOPE_KEY, with_send=send is not None)
                result = await conn.execute(stmt, [_row(item, user=True, send_id=send_id) for item in chunk])
                for row in result.mappings():
                    restored[row["user"]] = _to_notification(row)
            final: list[Notification] = []
            for item in notifications:
                kept = restored.get(item.user or "")
                final.append(kept if kept is not None and kept.id != item.id else item)
            if send is not None:
                renumber(send.outbox, {user: item.id for user, item in restored.items()})
                await write_send(conn, send.row, send.outbox)
                if send.before_commit is not None:
                    await send.before_commit(conn, final)
        return final

    async def _save_fan_out(self, fan_out: FanOut, send: SendWrite | None) -> FanOut:
        """Store an unscoped fan-out in batches of ``fan_out_batch`` users, all in one transaction.

        Rows are built batch by batch from the template's column values (computed once), so a
        100,000-user send never holds more than one batch of rows; PostgreSQL takes each batch
        with ``COPY`` (binary), SQLite with one ``executemany``. One transaction: a send is
        stored whole or not at all (a process killed mid-write leaves none of its rows).
        """
        send_id = send.id if send is not None else None
        base = _row(fan_out.template, user=True, send_id=send_id)
        del base["id"], base["user"]
        copy = self._dialect == "postgresql" and len(fan_out) >= _COPY_THRESHOLD
        batch = self._fan_out_batch if copy else min(self._fan_out_batch, _CHUNK)
        batches = 0
        async with self._engine.begin() as conn:
            for start in range(0, len(fan_out), batch):
                users, ids = fan_out.users[start : start + batch], fan_out.ids[start : start + batch]
                if copy:
                    await _copy_rows(conn, base, users, ids)
                else:
                    await conn.execute(
                        sa.insert(t.notification),
                        [
                            {**base, "id": notification_id, "user": user}
                            for user, notification_id in zip(users, ids, strict=True)
                        ],
                    )
                batches += 1
            if send is not None:
                send.batches = batches
                await write_send(conn, send.row, send.outbox)
                if send.before_commit is not None:
                    await send.before_commit(conn, fan_out)
        return fan_out

    async def save_broadcast(self, notification: Notification, send: SendWrite | None = None) -> Notification:
        """Store a broadcast; a scoped one updates the existing (origin, scope) broadcast in place.

        A re-send keeps the broadcast's id and created, and every user's read and
        saved marks (as Backstage does); it answers the stored row (Backstage
        answers a fresh id it never stores). ``send`` (its row and outbox rows)
        is written in the same transaction.
        """
        send_id = send.id if send is not None else None
        stmt = (
            sa.insert(t.broadcast)
            if notification.payload.scope is None
            else self._upsert(t.broadcast, t.BROADCAST_SCOPE_KEY, with_send=send is not None)
        )
        # Without a send it is one statement: no transaction needed.
        async with self._reader.connect() if send is None else self._engine.begin() as conn:
            result = await conn.execute(stmt, [_row(notification, user=False, send_id=send_id)])
            row = result.mappings().one() if notification.payload.scope is not None else None
            if send is not None:
                if row is not None:  # deliveries name the stored broadcast
                    for outbox_row in send.outbox:
                        outbox_row["items"]["nid"] = [str(row["id"])] * len(outbox_row["items"]["nid"])
                await write_send(conn, send.row, send.outbox)
            answer = _broadcast_answer(notification, row)
            if send is not None and send.before_commit is not None:
                await send.before_commit(conn, [answer])
        return answer

    def _upsert(self, table: sa.Table, key: tuple[str, ...], *, with_send: bool = False) -> Any:
        """``INSERT ... ON CONFLICT (key) WHERE scope IS NOT NULL DO UPDATE ... RETURNING *``.

        ``with_send``: the row also points at the new send (``send_id``).
        """
        dialect_insert = postgresql.insert if self._dialect == "postgresql" else sqlite.insert
        stmt = dialect_insert(table)
        replaced = (*_REPLACED_COLUMNS, "send_id") if with_send else _REPLACED_COLUMNS
        values: dict[str, Any] = {name: stmt.excluded[name] for name in replaced}
        values.update({name: sa.func.coalesce(stmt.excluded[name], table.c[name]) for name in _KEPT_UNLESS_SENT})
        values["updated"] = stmt.excluded.created
        if "read" in table.c:
            values["read"] = sa.null()
            values["archived"] = sa.null()  # news about an archived notification brings it back to the inbox
        return stmt.on_conflict_do_update(
            index_elements=list(key), index_where=table.c.scope.is_not(None), set_=values
        ).returning(*table.c)

    async def update_state(
        self,
        user: str,
        ids: Sequence[str],
        *,
        read: bool | None = None,
        saved: bool | None = None,
        archived: bool | None = None,
    ) -> None:
        """Mark the caller's notifications and broadcasts among ``ids`` read/unread, saved/unsaved, archived or not.

        Only the given flags change; ids the caller cannot see are ignored.
        """
        ids = list(dict.fromkeys(valid_ids(ids)))
        flags = (("read", read), ("saved", saved), ("archived", archived))
        changes = {name: (utc_now() if flag else None) for name, flag in flags if flag is not None}
        if not ids or not changes:
            return
        n, b, s = t.notification, t.broadcast, t.broadcast_user_status
        dialect_insert = postgresql.insert if self._dialect == "postgresql" else sqlite.insert
        columns = list(changes)
        async with self._engine.begin() as conn:
            # One transaction; chunks keep every statement under the bind-parameter limits.
            for chunk in _chunks(ids):
                rows = sa.select(
                    b.c.id,
                    sa.literal(user, sa.String(255)),
                    *(sa.literal(value, t.UtcDateTime).label(name) for name, value in changes.items()),
                ).where(b.c.id.in_(chunk))
                upsert = dialect_insert(s).from_select(["broadcast_id", "user", *columns], rows)
                upsert = upsert.on_conflict_do_update(
                    index_elements=["broadcast_id", "user"], set_={name: upsert.excluded[name] for name in columns}
                )
                await conn.execute(sa.update(n).where(n.c.id.in_(chunk), n.c.user == user).values(**changes))
                await conn.execute(upsert)

    async def delete_notifications(self, user: str, ids: Sequence[str]) -> list[str]:
        """Delete the caller's notifications among ``ids``; answer the ids that were deleted.

        Own notifications are deleted. A broadcast is deleted for the caller only: a
        ``broadcast_user_status`` row marks it, and every other user still sees it. Ids the
        caller cannot see (another user's, already deleted, malformed) are ignored.
        """
        ids = list(dict.fromkeys(valid_ids(ids)))
        if not ids:
            return []
        n, b, s = t.notification, t.broadcast, t.broadcast_user_status
        dialect_insert = postgresql.insert if self._dialect == "postgresql" else sqlite.insert
        deleted: list[str] = []
        now = utc_now()
        async with self._engine.begin() as conn:
            for chunk in _chunks(ids):
                result = await conn.execute(sa.delete(n).where(n.c.id.in_(chunk), n.c.user == user).returning(n.c.id))
                deleted.extend(str(value) for value in result.scalars())
                gone = sa.exists().where(s.c.broadcast_id == b.c.id, s.c.user == user, s.c.deleted.is_not(None))
                rows = sa.select(
                    b.c.id, sa.literal(user, sa.String(255)), sa.literal(now, t.UtcDateTime).label("deleted")
                ).where(b.c.id.in_(chunk), ~gone)
                insert = dialect_insert(s).from_select(["broadcast_id", "user", "deleted"], rows)
                upsert = insert.on_conflict_do_update(
                    index_elements=["broadcast_id", "user"], set_={"deleted": insert.excluded.deleted}
                ).returning(s.c.broadcast_id)
                deleted.extend(str(value) for value in (await conn.execute(upsert)).scalars())
        return deleted

    async def clear_notifications(self, max_age: timedelta | None, rules: Sequence[RetentionRule] = ()) -> int:
        """Delete notifications and broadcasts not created or updated within their retention.

        The first of ``rules`` that matches a notification's origin and topic decides its retention;
        ``max_age`` applies to those no rule matches (``None``: they are kept, as is everything a rule
        with ``max_age`` ``None`` matches). One ``DELETE`` per table and rule, in one transaction.
        """
        now = utc_now()
        deleted = 0
        async with self._engine.begin() as conn:
            for table in (t.notification, t.broadcast):
                earlier: list[Any] = []
                for rule in rules:
                    matches = _rule_matches(table, rule)
                    if rule.max_age is not None:
                        deleted += await _delete_stale(conn, table, now - rule.max_age, matches, *map(sa.not_, earlier))
                    earlier.append(matches)
                if max_age is not None:
                    deleted += await _delete_stale(conn, table, now - max_age, *map(sa.not_, earlier))
        return deleted

    # -- settings ----------------------------------------------------------------

    async def get_settings_rows(self, users: Sequence[str], origin: str | None = None) -> list[SettingRow]:
        """Stored settings rows of ``users`` (only those of ``origin`` when given)."""
        us = t.user_settings
        found: list[SettingRow] = []
        columns = (us.c.user, us.c.channel, us.c.origin, us.c.topic, us.c.enabled)
        async with self._reader.connect() as conn:
            if self._dialect == "postgresql":
                # One statement with an array parameter, whatever the number of users.
                users_param = sa.bindparam("users", list(users), type_=postgresql.ARRAY(sa.String))
                stmt = sa.select(*columns).where(us.c.user == sa.any_(users_param))
                if origin is not None:
                    stmt = stmt.where(us.c.origin == origin)
                return [SettingRow(*row) for row in await conn.execute(stmt)]
            for chunk in _chunks(list(users)):
                stmt = sa.select(*columns).where(us.c.user.in_(chunk))
                if origin is not None:
                    stmt = stmt.where(us.c.origin == origin)
                found.extend(SettingRow(*row) for row in await conn.execute(stmt))
        return found

    async def save_settings(self, user: str, settings: NotificationSettings) -> None:
        """Replace all of the caller's settings rows with ``settings``.

        Per channel and origin one row with ``topic`` null; per topic one row
        enabled only when both the origin and the topic are.
        """
        us = t.user_settings
        rows: dict[str, dict[str, Any]] = {}
        for channel in settings.channels:
            for origin in channel.origins:
                keys: list[tuple[str | None, bool]] = [(None, origin.enabled)]
                keys += [(topic.id, origin.enabled and topic.enabled) for topic in origin.topics]
                for topic, enabled in keys:
                    digest = settings_key_hash(user, channel.id, origin.id, topic)
                    rows[digest] = {
                        "user": user,
                        "channel": channel.id,
                        "origin": origin.id,
                        "topic": topic,
                        "enabled": enabled,
                        "settings_key_hash": digest,
                    }
        async with self._engine.begin() as conn:
            await conn.execute(sa.delete(us).where(us.c.user == user))
            if rows:
                await conn.execute(sa.insert(us), list(rows.values()))

    async def get_user_origins(self, user: str) -> tuple[list[str], list[tuple[str, str]]]:
        """Distinct origins, and (origin, topic) pairs, of the caller's own notifications."""
        n = t.notification
        stmt = sa.select(n.c.origin, n.c.topic).where(n.c.user == user).distinct()
        async with self._reader.connect() as conn:
            pairs = (await conn.execute(stmt)).all()
        origins = sorted({origin for origin, _ in pairs})
        topics = sorted((origin, topic) for origin, topic in pairs if topic is not None)
        return origins, topics


_SELECT_COLUMNS = (
    "id", "title", "description", "severity", "link", "origin", "scope", "topic", "icon",
    "metadata", "created", "updated", "read", "saved", "user", "archived",
)  # fmt: skip


@dataclass(frozen=True)
class _Marks:
    """The per-user columns of one branch of the visible set (the row's own, or the broadcast status row's)."""

    read: Any
    saved: Any
    archived: Any


def _rule_matches(table: sa.Table, rule: RetentionRule) -> Any:
    """A condition that is true (never NULL) for the rows of ``table`` a retention rule covers."""
    conditions = []
    if rule.origin is not None:
        conditions.append(table.c.origin == rule.origin)
    if rule.topic is not None:
        conditions += [table.c.topic.is_not(None), table.c.topic == rule.topic]
    return sa.and_(*conditions)


async def _delete_stale(conn: AsyncConnection, table: sa.Table, cutoff: datetime, *where: Any) -> int:
    """Delete the rows of ``table`` matching ``where`` not created or updated after ``cutoff``."""
    stale = sa.or_(sa.and_(table.c.created <= cutoff, table.c.updated.is_(None)), table.c.updated <= cutoff)
    result = await conn.execute(sa.delete(table).where(stale, *where))
    return result.rowcount or 0


def _contains(column: Any, term: str, *, sqlite: bool) -> Any:
    """Case-insensitive substring match, ``%`` and ``_`` taken literally.

    SQLite's ``lower()`` folds ASCII only, so a term with other letters (``ÜBER``) is compared
    with the host's Unicode ``unicode_lower()`` there (``host.database``); PostgreSQL's
    ``lower()`` folds every letter already.
    """
    if not sqlite or term.isascii():
        return column.icontains(term, autoescape=True)
    pattern = "%" + term.replace("/", "//").replace("%", "/%").replace("_", "/_") + "%"
    return sa.func.unicode_lower(column).like(sa.func.unicode_lower(pattern), escape="/")


def _conditions(table: sa.Table, marks: _Marks, filters: NotificationFilters, *, sqlite: bool) -> list[Any]:
    where: list[Any] = []
    read, saved = marks.read, marks.saved
    if filters.ids is not None:
        where.append(table.c.id.in_(list(filters.ids)))
    if filters.search:
        where.append(
            sa.or_(
                _contains(table.c.title, filters.search, sqlite=sqlite),
                _contains(table.c.description, filters.search, sqlite=sqlite),
            )
        )
    if filters.topic is not None:
        where.append(table.c.topic == filters.topic)
    if filters.created_after is not None:
        where.append(table.c.created >= filters.created_after)
    if filters.minimum_severity is not None:
        allowed = severities_at_least(filters.minimum_severity)
        if len(allowed) < 4:
            where.append(table.c.severity.in_(allowed))
    if filters.read is not None:
        where.append(read.is_not(None) if filters.read else read.is_(None))
    if filters.saved is not None:
        where.append(saved.is_not(None) if filters.saved else saved.is_(None))
    if filters.archived is not None:
        where.append(marks.archived.is_not(None) if filters.archived else marks.archived.is_(None))
    return where


def _filters_key(filters: NotificationFilters) -> tuple[Any, ...] | None:
    """A hashable key of ``filters`` for the statement cache; None for id lists (one-off statements)."""
    if filters.ids is not None:
        return None
    return tuple(getattr(filters, item.name) for item in fields(filters))


def _status_statement() -> sa.Select[Any]:
    """The five counts behind ``/status`` for the user ``:viewer``."""
    n, b, s = t.notification, t.broadcast, t.broadcast_user_status
    viewer = sa.bindparam(_VIEWER, type_=sa.String(255), required=True)

    def count(table: sa.Table, *where: Any) -> sa.ScalarSelect[Any]:
        return sa.select(sa.func.count()).select_from(table).where(*where).scalar_subquery()

    shown = (s.c.archived.is_(None), s.c.deleted.is_(None))
    return sa.select(
        count(n, n.c.user == viewer, n.c.read.is_(None), n.c.archived.is_(None)).label("own_unread"),
        count(n, n.c.user == viewer, n.c.read.is_not(None), n.c.archived.is_(None)).label("own_read"),
        count(b).label("broadcasts"),
        count(s, s.c.user == viewer, s.c.read.is_not(None), *shown).label("broadcasts_read"),
        count(s, s.c.user == viewer, sa.or_(s.c.archived.is_not(None), s.c.deleted.is_not(None))).label(
            "broadcasts_hidden"
        ),
    )


def _order_by(columns: Any, order: Sequence[tuple[str, str]]) -> list[Any]:
    """ORDER BY clauses; NULLs sort as PostgreSQL does by default on both databases."""
    clauses = []
    for name, direction in order:
        column = columns[name]
        clauses.append(column.desc().nulls_first() if direction == "desc" else column.asc().nulls_last())
    return clauses


async def _copy_rows(conn: AsyncConnection, base: dict[str, Any], users: Sequence[str], ids: Sequence[str]) -> None:
    """``COPY`` one batch of a fan-out: ``base``'s column values with each user's id and user."""
    shared = _copy_ready(dict(base))
    # Columns left out of a COPY take their default, NULL for every column here (seq: its identity),
    # so only the template's non-null values are sent: less to encode per row.
    names = [
        column.name
        for column in t.notification.c
        if column.name not in ("id", "user") and shared.get(column.name) is not None
    ]
    prefix = tuple(shared[name] for name in names)
    records = [(*prefix, notification_id, user) for user, notification_id in zip(users, ids, strict=True)]
    await _copy_records(conn, [*names, "id", "user"], records)


def _copy_ready(values: dict[str, Any]) -> dict[str, Any]:
    """A row's values as ``COPY`` takes them: the metadata JSON column as text. Changes ``values``."""
    if values.get("metadata") is not None:
        values["metadata"] = orjson.dumps(values["metadata"]).decode()
    return values


async def _copy_records(conn: AsyncConnection, columns: list[str], records: list[tuple[Any, ...]]) -> None:
    """``COPY`` (binary) ``records`` into ``notification``'s ``columns`` on the connection of ``conn``."""
    raw = await conn.get_raw_connection()
    assert raw.driver_connection is not None
    await raw.driver_connection.copy_records_to_table(t.notification.name, records=records, columns=columns)


async def _copy_notifications(conn: AsyncConnection, items: Sequence[Notification], send_id: str | None) -> None:
    """Insert per-user notifications with PostgreSQL ``COPY`` (binary): the bulk path of a large fan-out.

    Recipients of one send share a payload, so its column values are computed once.
    """
    names = [column.name for column in t.notification.c]
    shared: dict[int, dict[str, Any]] = {}
    records = []
    for item in items:
        base = shared.get(id(item.payload))
        if base is None:
            base = shared[id(item.payload)] = _copy_ready(_row(item, user=True, send_id=send_id))
        values = {
            **base,
            "id": item.id,
            "user": item.user,
            "origin": item.origin,
            "created": item.created,
            "updated": item.updated,
            "read": item.read,
            "saved": item.saved,
        }
        records.append(tuple(values.get(name) for name in names))
    await _copy_records(conn, names, records)


def _broadcast_answer(notification: Notification, row: Any) -> Notification:
    """What a broadcast send answers: the notification as given, or the stored row a scoped re-send updated."""
    if row is None or row["id"] == notification.id:
        return notification
    stored = _to_notification({**row, "user": None, "read": None, "saved": None})
    # The caller is a service: per-user marks are not part of the answer.
    return Notification.model_construct(
        {"id", "user", "created", "updated", "origin", "payload"},
        **{name: getattr(stored, name) for name in ("id", "user", "created", "updated", "origin", "payload")},
    )


def _row(item: Notification, *, user: bool, send_id: str | None = None) -> dict[str, Any]:
    payload = item.payload
    row: dict[str, Any] = {
        "id": item.id,
        "origin": item.origin,
        "created": item.created,
        "updated": item.updated,
        "metadata": payload.metadata,
        **{name: getattr(payload, name) for name in _PAYLOAD_COLUMNS},
    }
    row["severity"] = normalize_severity(payload.severity)
    if send_id is not None:
        row["send_id"] = send_id
    if user:
        row.update(user=item.user, read=item.read, saved=item.saved)
    return row


def _to_notification(row: Any) -> Notification:
    """Build a fully-set :class:`Notification` from a visible-set row (no validation)."""
    payload_values = {name: row[name] for name in _PAYLOAD_COLUMNS}
    metadata = row["metadata"]
    # Rows stored before the limits (or written by hand) must not break a list: unrenderable metadata is left out.
    if metadata is not None and stored_metadata_is_renderable(metadata):
        payload_values["metadata"] = metadata
    payload = NotificationPayload.model_construct(set(payload_values), **payload_values)
    values = {name: row[name] for name in ("id", "user", "created", "saved", "read", "updated", "origin")}
    values["id"] = str(values["id"])
    if row.get("archived") is not None:  # on the wire only while archived: Backstage's clients see nothing new
        values["archived"] = row["archived"]
    return Notification.model_construct(set(values) | {"payload"}, payload=payload, **values)


def _chunks(items: list[Any]) -> Iterable[list[Any]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]
