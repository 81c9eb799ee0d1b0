"""Scheduler task coordination table.

Revision ID: scheduler_0001
Revises:
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "scheduler_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "greenroom_tasks",
        sa.Column("id", sa.String(255), primary_key=True),
        sa.Column("settings_json", sa.Text(), nullable=False),
        sa.Column("next_run_start_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("current_run_ticket", sa.String(64), nullable=True),
        sa.Column("current_run_started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("current_run_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_run_ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_run_error_json", sa.Text(), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("greenroom_tasks")
