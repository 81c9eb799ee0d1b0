"""Delivery preferences (digests, quiet hours) and held outbox rows.

Revision ID: notifications_0007
Revises: notifications_0006
"""

import sqlalchemy as sa
from alembic import op

from plugin_notifications.tables import UtcDateTime

revision = "notifications_0007"
down_revision = "notifications_0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("notification_outbox", sa.Column("digest_key", sa.String(512), nullable=True))
    op.create_index("notification_outbox_digest_idx", "notification_outbox", ["digest_key", "state"])
    op.create_table(
        "notification_preference",
        sa.Column("user", sa.String(255), primary_key=True),
        sa.Column("preferences", sa.JSON, nullable=False),
        sa.Column("updated", UtcDateTime, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("notification_preference")
    op.drop_index("notification_outbox_digest_idx", table_name="notification_outbox")
    with op.batch_alter_table("notification_outbox") as batch:  # SQLite rebuilds the table
        batch.drop_column("digest_key")
