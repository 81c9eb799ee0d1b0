"""Idempotency keys of sends (``Idempotency-Key`` on ``POST /notifications`` and the service).

Revision ID: notifications_0004
Revises: notifications_0003
"""

import sqlalchemy as sa
from alembic import op

from plugin_notifications.tables import UtcDateTime

revision = "notifications_0004"
down_revision = "notifications_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "idempotency_key",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("claim", sa.String(36), nullable=False),
        sa.Column("created", UtcDateTime, nullable=False),
        sa.Column("lease_until", UtcDateTime, nullable=False),
        sa.Column("status", sa.Integer, nullable=True),
        sa.Column("response", sa.LargeBinary, nullable=True),
    )
    op.create_index("idempotency_key_created_idx", "idempotency_key", ["created"])


def downgrade() -> None:
    op.drop_index("idempotency_key_created_idx", table_name="idempotency_key")
    op.drop_table("idempotency_key")
