"""Create the notifications tables (notification, broadcast, broadcast_user_status, user_settings).

Revision ID: notifications_0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from plugin_notifications.tables import IdType, UtcDateTime

revision = "notifications_0001"
down_revision = None
branch_labels = None
depends_on = None


def _message_columns() -> list[sa.Column]:
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
        sa.Column("metadata", sa.JSON, nullable=True),
        sa.Column("created", UtcDateTime, nullable=False),
        sa.Column("updated", UtcDateTime, nullable=True),
    ]


def upgrade() -> None:
    """Create the four tables and an index for every filter the store uses."""
    op.create_table(
        "notification",
        *_message_columns(),
        sa.Column("user", sa.String(255), nullable=False),
        sa.Column("read", UtcDateTime, nullable=True),
        sa.Column("saved", UtcDateTime, nullable=True),
    )
    # List (default order, createdAfter), status (read), topics and settings (origin, topic).
    op.create_index("notification_user_created_idx", "notification", ["user", "created"])
    op.create_index("notification_user_read_idx", "notification", ["user", "read"])
    op.create_index("notification_user_origin_topic_idx", "notification", ["user", "origin", "topic"])
    op.create_index("notification_user_topic_idx", "notification", ["user", "topic"])
    op.create_index("notification_created_idx", "notification", ["created"])
    # Scope re-notify: one row per (user, origin, scope); the upsert relies on it.
    op.create_index(
        "notification_user_origin_scope_idx",
        "notification",
        ["user", "origin", "scope"],
        unique=True,
        postgresql_where=sa.text("scope IS NOT NULL"),
        sqlite_where=sa.text("scope IS NOT NULL"),
    )

    op.create_table("broadcast", *_message_columns())
    op.create_index("broadcast_created_idx", "broadcast", ["created"])
    op.create_index("broadcast_topic_idx", "broadcast", ["topic"])
    op.create_index(
        "broadcast_origin_scope_idx",
        "broadcast",
        ["origin", "scope"],
        unique=True,
        postgresql_where=sa.text("scope IS NOT NULL"),
        sqlite_where=sa.text("scope IS NOT NULL"),
    )

    op.create_table(
        "broadcast_user_status",
        sa.Column("broadcast_id", IdType, sa.ForeignKey("broadcast.id", ondelete="CASCADE"), nullable=False),
        sa.Column("user", sa.String(255), nullable=False),
        sa.Column("read", UtcDateTime, nullable=True),
        sa.Column("saved", UtcDateTime, nullable=True),
    )
    op.create_index("broadcast_user_idx", "broadcast_user_status", ["broadcast_id", "user"], unique=True)
    op.create_index("broadcast_user_status_user_idx", "broadcast_user_status", ["user"])

    op.create_table(
        "user_settings",
        sa.Column("user", sa.String(255), nullable=False),
        sa.Column("channel", sa.String(255), nullable=False),
        sa.Column("origin", sa.String(255), nullable=False),
        sa.Column("topic", sa.String(255), nullable=True),
        sa.Column("enabled", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("settings_key_hash", sa.String(64), nullable=False),
    )
    op.create_index("user_settings_user_origin_idx", "user_settings", ["user", "origin"])
    op.create_index("user_settings_unique_idx", "user_settings", ["settings_key_hash"], unique=True)


def downgrade() -> None:
    """Drop everything ``upgrade`` created."""
    for table in ("user_settings", "broadcast_user_status", "broadcast", "notification"):
        op.drop_table(table)
