"""The module's own table, ``slack_messages``, in the notifications plugin's database (own Alembic history).

One row per Slack message a delivery posted: the outbox channel (workspace),
the delivery id, the destination asked for (a user id, a channel id or
name), the conversation Slack answered with and the message's ``ts``, with
the notification's origin and scope. It serves two purposes:

* **no repeats on retry**: a delivery retried after some of its messages went
  out (a 429 half-way through a group send) skips the destinations it
  already posted to;
* **scoped updates** (Backstage 0.4.2): a re-send with the same ``scope`` and
  origin to the same destination updates the latest message
  (``chat.update`` on its ``ts``) instead of posting a new one.

Rows are only needed between a send and its updates, so a daily task deletes
those older than ``messageRetention`` (24 hours by default).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from plugin_notifications.models import utc_now
from plugin_notifications.tables import UtcDateTime

MIGRATIONS = Path(__file__).with_name("migrations")
#: The Alembic version table of this history (the notifications plugin keeps ``alembic_version``).
VERSION_TABLE = "notifications_slack_alembic_version"

metadata = sa.MetaData()
slack_messages = sa.Table(
    "slack_messages",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("channel", sa.String(255), nullable=False),
    sa.Column("delivery_id", sa.String(255), nullable=False),
    sa.Column("destination", sa.String(255), nullable=False),
    sa.Column("conversation", sa.String(255), nullable=False),
    sa.Column("ts", sa.String(64), nullable=False),
    sa.Column("origin", sa.String(255), nullable=False),
    sa.Column("scope", sa.String(512), nullable=True),
    sa.Column("created", UtcDateTime, nullable=False),
    sa.UniqueConstraint("delivery_id", "destination", name="slack_messages_delivery_uq"),
)
m = slack_messages


@dataclass(frozen=True)
class PostedMessage:
    """A message in Slack: the conversation it is in and its timestamp (its id there)."""

    conversation: str
    ts: str


class SlackMessageStore:
    """Reads and writes ``slack_messages``."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._dialect = engine.dialect.name

    async def posted_by(self, delivery_id: str) -> dict[str, PostedMessage]:
        """What delivery ``delivery_id`` already posted, by destination."""
        stmt = sa.select(m.c.destination, m.c.conversation, m.c.ts).where(m.c.delivery_id == delivery_id)
        async with self._engine.connect() as conn:
            rows = (await conn.execute(stmt)).all()
        return {row.destination: PostedMessage(row.conversation, row.ts) for row in rows}

    async def latest(self, channel: str, origin: str, scope: str, destination: str) -> PostedMessage | None:
        """The newest message posted on ``channel`` to ``destination`` for ``origin`` and ``scope``."""
        stmt = (
            sa.select(m.c.conversation, m.c.ts)
            .where(m.c.channel == channel, m.c.origin == origin, m.c.scope == scope, m.c.destination == destination)
            .order_by(m.c.created.desc(), m.c.id.desc())
            .limit(1)
        )
        async with self._engine.connect() as conn:
            row = (await conn.execute(stmt)).first()
        return PostedMessage(row.conversation, row.ts) if row else None

    async def record(
        self,
        *,
        channel: str,
        delivery_id: str,
        destination: str,
        message: PostedMessage,
        origin: str,
        scope: str | None,
        now: datetime | None = None,
    ) -> None:
        """Remember that ``delivery_id`` posted (or updated) ``message`` at ``destination``."""
        values = {
            "channel": channel,
            "delivery_id": delivery_id,
            "destination": destination,
            "conversation": message.conversation,
            "ts": message.ts,
            "origin": origin,
            "scope": scope,
            "created": now or utc_now(),
        }
        insert = postgresql.insert if self._dialect == "postgresql" else sqlite.insert
        stmt = insert(m).values(values)
        stmt = stmt.on_conflict_do_update(
            index_elements=["delivery_id", "destination"],
            set_={"conversation": message.conversation, "ts": message.ts, "created": values["created"]},
        )
        async with self._engine.begin() as conn:
            await conn.execute(stmt)

    async def purge(self, channel: str, older_than: timedelta) -> int:
        """Delete ``channel``'s rows older than ``older_than``; return how many."""
        cutoff = utc_now() - older_than
        async with self._engine.begin() as conn:
            result = await conn.execute(sa.delete(m).where(m.c.channel == channel, m.c.created < cutoff))
        return int(result.rowcount or 0)
