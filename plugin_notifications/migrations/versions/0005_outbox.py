"""The transactional outbox, sends (the delivery log's resolution) and delivery counters.

Revision ID: notifications_0005
Revises: notifications_0004
"""

import sqlalchemy as sa
from alembic import op

from plugin_notifications.tables import IdType, UtcDateTime

revision = "notifications_0005"
down_revision = "notifications_0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("notification", sa.Column("send_id", IdType, nullable=True))
    op.add_column("broadcast", sa.Column("send_id", IdType, nullable=True))
    op.create_table(
        "notification_send",
        sa.Column("id", IdType, primary_key=True),
        sa.Column("origin", sa.String(255), nullable=False),
        sa.Column("created", UtcDateTime, nullable=False),
        sa.Column("resolution", sa.JSON, nullable=False),
    )
    op.create_index("notification_send_created_idx", "notification_send", ["created"])
    op.create_table(
        "notification_outbox",
        sa.Column("id", IdType, primary_key=True),
        sa.Column("send_id", IdType, nullable=False),
        sa.Column("channel", sa.String(255), nullable=False),
        sa.Column("state", sa.String(8), nullable=False),
        sa.Column("origin", sa.String(255), nullable=False),
        sa.Column("created", UtcDateTime, nullable=False),
        sa.Column("updated", UtcDateTime, nullable=False),
        sa.Column("items", sa.JSON, nullable=False),
        sa.Column("next_attempt", UtcDateTime, nullable=False),
        sa.Column("lease_owner", sa.String(64), nullable=True),
        sa.Column("lease_expires", UtcDateTime, nullable=True),
    )
    op.create_index("notification_outbox_due_idx", "notification_outbox", ["state", "next_attempt"])
    op.create_index("notification_outbox_send_idx", "notification_outbox", ["send_id"])
    op.create_table(
        "notification_delivery_counter",
        sa.Column("channel", sa.String(255), primary_key=True),
        sa.Column("name", sa.String(16), primary_key=True),
        sa.Column("value", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("notification_delivery_counter")
    op.drop_index("notification_outbox_send_idx", table_name="notification_outbox")
    op.drop_index("notification_outbox_due_idx", table_name="notification_outbox")
    op.drop_table("notification_outbox")
    op.drop_index("notification_send_created_idx", table_name="notification_send")
    op.drop_table("notification_send")
    for table in ("broadcast", "notification"):
        with op.batch_alter_table(table) as batch:  # SQLite rebuilds the table
            batch.drop_column("send_id")
