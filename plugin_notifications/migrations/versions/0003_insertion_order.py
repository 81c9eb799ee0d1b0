"""An insertion sequence on PostgreSQL, so rows with equal sort keys come back in insertion order.

SQLite tables have one already (``rowid``); PostgreSQL gets an identity column ``seq`` on
``notification`` and ``broadcast``, filled for existing rows. The store breaks ties on it.

Revision ID: notifications_0003
Revises: notifications_0002
"""

import sqlalchemy as sa
from alembic import op

revision = "notifications_0003"
down_revision = "notifications_0002"
branch_labels = None
depends_on = None

TABLES = ("notification", "broadcast")


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in TABLES:
        op.add_column(table, sa.Column("seq", sa.BigInteger, sa.Identity(always=False), nullable=False))


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in TABLES:
        op.drop_column(table, "seq")
