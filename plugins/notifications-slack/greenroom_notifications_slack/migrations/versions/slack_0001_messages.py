"""The Slack module's message ledger: what each delivery posted, and the timestamps for scoped updates.

Revision ID: notifications_slack_0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

from plugin_notifications.tables import UtcDateTime

revision = "notifications_slack_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "slack_messages",
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
    op.create_index("slack_messages_scope_idx", "slack_messages", ["channel", "origin", "scope", "destination"])
    op.create_index("slack_messages_created_idx", "slack_messages", ["created"])


def downgrade() -> None:
    op.drop_table("slack_messages")
