"""SQLAlchemy table definitions of the notifications database (spec section 2.1).

The Alembic history in ``migrations/versions`` creates exactly these tables
(plus, on PostgreSQL, the ``seq`` identity column of ``notification`` and
``broadcast``, which the store reads by name to keep insertion order; SQLite
has ``rowid``); the store builds its queries from them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Dialect

metadata = sa.MetaData()


class FastJSON(sa.TypeDecorator[Any]):
    """A JSON column encoded and decoded with orjson (the outbox and send rows of large fan-outs).

    Stored exactly as ``sa.JSON`` stores it (``json`` on PostgreSQL, text on SQLite), so
    the column type in the migrations is unchanged and rows written before read back.
    orjson is several times faster than the standard library on the long parallel lists
    of an outbox row. Values are what JSON allows (str keys, finite numbers).
    """

    impl = sa.JSON
    cache_ok = True

    def bind_processor(self, dialect: Dialect) -> Any:
        """Encode with orjson to the text the JSON column expects."""

        def process(value: Any) -> str | None:
            return None if value is None else orjson.dumps(value).decode()

        return process

    def result_processor(self, dialect: Dialect, coltype: Any) -> Any:
        """Decode text (or pass through what the driver already decoded)."""

        def process(value: Any) -> Any:
            if isinstance(value, (str, bytes)):
                return orjson.loads(value)
            return value

        return process


class UtcDateTime(sa.TypeDecorator[datetime]):
    """A timezone-aware timestamp that always comes back as UTC.

    PostgreSQL stores ``timestamptz``; SQLite stores text, so values are
    converted to naive UTC on the way in and tagged UTC on the way out.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        if dialect.name == "sqlite":
            return value.astimezone(UTC).replace(tzinfo=None)
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        moment: datetime = value.replace(tzinfo=UTC) if value.tzinfo is None else value
        return moment


#: Native ``uuid`` on PostgreSQL, text elsewhere; values are always ``str``.
IdType = sa.String(36).with_variant(postgresql.UUID(as_uuid=False), "postgresql")


def _message_columns() -> list[sa.Column[Any]]:
    """The columns ``notification`` and ``broadcast`` share."""
    return [
        sa.Column("id", IdType, primary_key=True),
        sa.Column("title", sa.String(255), nullable=False),
        sa.Column("description", sa.Text, nullable=True),
        sa.Column("severity", sa.String(8), nullable=False),
        sa.Column("link", sa.Text, nullable=True),
        sa.Column("origin", sa.String(255), nullable=False),
        sa.Column("scope", sa.String(255), nullable=True),
        sa.Column("topic", sa.String(255), nullable=True),
        sa.Column("icon", sa.String(255), nullable=True),
        sa.Column("metadata", sa.JSON(none_as_null=True), nullable=True),
        sa.Column("created", UtcDateTime, nullable=False),
        sa.Column("updated", UtcDateTime, nullable=True),
    ]


notification = sa.Table(
    "notification",
    metadata,
    *_message_columns(),
    sa.Column("user", sa.String(255), nullable=False),
    sa.Column("read", UtcDateTime, nullable=True),
    sa.Column("saved", UtcDateTime, nullable=True),
    sa.Column("send_id", IdType, nullable=True),
    # Greenroom only (migration 0006): when the user archived it; archived rows leave the default list and counts.
    sa.Column("archived", UtcDateTime, nullable=True),
    # Every per-user read (migration 0009): the list newest first, its counts, /status, topics, settings.
    sa.Index("notification_user_list_idx", "user", "created", "archived", "read", "saved", "origin", "topic"),
    # Scope re-notify: one row per (user, origin, scope); the upsert's ON CONFLICT relies on it.
    sa.Index(
        "notification_user_origin_scope_idx",
        "user",
        "origin",
        "scope",
        unique=True,
        postgresql_where=sa.text("scope IS NOT NULL"),
        sqlite_where=sa.text("scope IS NOT NULL"),
    ),
)

broadcast = sa.Table("broadcast", metadata, *_message_columns(), sa.Column("send_id", IdType, nullable=True))

broadcast_user_status = sa.Table(
    "broadcast_user_status",
    metadata,
    sa.Column("broadcast_id", IdType, sa.ForeignKey("broadcast.id", ondelete="CASCADE"), nullable=False),
    sa.Column("user", sa.String(255), nullable=False),
    sa.Column("read", UtcDateTime, nullable=True),
    sa.Column("saved", UtcDateTime, nullable=True),
    # Greenroom only (migration 0006): this user's archive mark, and the user's deletion (the broadcast stays
    # for everyone else; this user never sees it again).
    sa.Column("archived", UtcDateTime, nullable=True),
    sa.Column("deleted", UtcDateTime, nullable=True),
    sa.UniqueConstraint("broadcast_id", "user", name="broadcast_user_idx"),
)

user_settings = sa.Table(
    "user_settings",
    metadata,
    sa.Column("user", sa.String(255), nullable=False),
    sa.Column("channel", sa.String(255), nullable=False),
    sa.Column("origin", sa.String(255), nullable=False),
    sa.Column("topic", sa.String(255), nullable=True),
    sa.Column("enabled", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("settings_key_hash", sa.String(64), nullable=False, unique=True),
)

#: One row per send: who asked for whom, and how each user was reached (the delivery log's "why").
notification_send = sa.Table(
    "notification_send",
    metadata,
    sa.Column("id", IdType, primary_key=True),
    sa.Column("origin", sa.String(255), nullable=False),
    sa.Column("created", UtcDateTime, nullable=False),
    # {"edges": {ref: [from, relation]}, "members": [[from, relation, users|null]], "direct": [...],
    #  "web": {user: [enabled, why]}} (recipients.compact_via; older rows: "via": {ref: [from, relation]})
    sa.Column("resolution", FastJSON, nullable=False),
    sa.Index("notification_send_created_idx", "created"),
)

#: The transactional outbox: one row per (recipient batch, durable channel) of a send.
notification_outbox = sa.Table(
    "notification_outbox",
    metadata,
    sa.Column("id", IdType, primary_key=True),
    sa.Column("send_id", IdType, nullable=False),
    sa.Column("channel", sa.String(255), nullable=False),
    # pending: has deliveries to make; done: every delivery is sent, skipped, muted or dead
    sa.Column("state", sa.String(8), nullable=False),
    sa.Column("origin", sa.String(255), nullable=False),
    sa.Column("created", UtcDateTime, nullable=False),
    sa.Column("updated", UtcDateTime, nullable=False),
    # {"payloads": [notification wire, ...], "items": {"id": [...], "user": [...], "nid": [...], ...}}
    sa.Column("items", FastJSON, nullable=False),
    sa.Column("next_attempt", UtcDateTime, nullable=False),
    sa.Column("lease_owner", sa.String(64), nullable=True),
    sa.Column("lease_expires", UtcDateTime, nullable=True),
    # held for a digest or quiet hours: "<channel>\n<user>" (one delivery per row), else null
    sa.Column("digest_key", sa.String(512), nullable=True),
    sa.Index("notification_outbox_due_idx", "state", "next_attempt"),
    sa.Index("notification_outbox_send_idx", "send_id"),
    sa.Index("notification_outbox_digest_idx", "digest_key", "state"),
)

#: Each user's delivery preferences (digests, quiet hours): the ``PUT /preferences`` document.
notification_preference = sa.Table(
    "notification_preference",
    metadata,
    sa.Column("user", sa.String(255), primary_key=True),
    sa.Column("preferences", sa.JSON, nullable=False),
    sa.Column("updated", UtcDateTime, nullable=False),
)

#: Delivery counters per channel (sent, failed, retried, dead, skipped), shared by every worker.
notification_delivery_counter = sa.Table(
    "notification_delivery_counter",
    metadata,
    sa.Column("channel", sa.String(255), primary_key=True),
    sa.Column("name", sa.String(16), primary_key=True),
    sa.Column("value", sa.BigInteger, nullable=False),
)

#: The partial unique indexes behind scope re-notify (``INSERT ... ON CONFLICT``).
NOTIFICATION_SCOPE_KEY = ("user", "origin", "scope")
BROADCAST_SCOPE_KEY = ("origin", "scope")

#: Idempotency keys of sends (``Idempotency-Key``): one row per (principal, key), see
#: :mod:`plugin_notifications.idempotency`. ``status`` is null while the first request runs.
idempotency_key = sa.Table(
    "idempotency_key",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),  # SHA-256 hex of (principal, key)
    sa.Column("fingerprint", sa.String(64), nullable=False),  # SHA-256 hex of the canonical body
    sa.Column("claim", sa.String(36), nullable=False),  # the running (or finished) request's claim id
    sa.Column("created", UtcDateTime, nullable=False),
    sa.Column("lease_until", UtcDateTime, nullable=False),
    sa.Column("status", sa.Integer, nullable=True),
    sa.Column("response", sa.LargeBinary, nullable=True),  # zlib-compressed JSON body
    sa.Index("idempotency_key_created_idx", "created"),
)
