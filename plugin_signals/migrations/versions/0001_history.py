"""Signal history: the stream's epoch and counter, and the stored signals.

Revision ID: signals_0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "signals_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "signal_stream",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("epoch", sa.String(32), nullable=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "signal_history",
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
        sa.Column("channel", sa.Text, nullable=False),
        sa.Column("body", sa.Text, nullable=False),
    )
    op.create_index("signal_history_created_idx", "signal_history", ["created_ms"])


def downgrade() -> None:
    op.drop_index("signal_history_created_idx", table_name="signal_history")
    op.drop_table("signal_history")
    op.drop_table("signal_stream")
