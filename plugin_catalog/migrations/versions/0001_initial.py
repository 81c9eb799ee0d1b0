"""catalog: entities, relations, search index and refresh state.

Revision ID: catalog_0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "catalog_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the catalog tables and their indexes."""
    op.create_table(
        "entities",
        sa.Column("entity_ref", sa.String(255), primary_key=True),
        sa.Column("uid", sa.String(36), nullable=False, unique=True),
        sa.Column("kind", sa.String(63), nullable=False),
        sa.Column("namespace", sa.String(63), nullable=False),
        sa.Column("name", sa.String(63), nullable=False),
        sa.Column("etag", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("final_entity", sa.Text, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_entities_kind", "entities", ["kind"])
    op.create_index("ix_entities_namespace", "entities", ["namespace"])
    op.create_index("ix_entities_name", "entities", ["name"])
    op.create_table(
        "relations",
        sa.Column("source_ref", sa.String(255), primary_key=True),
        sa.Column("type", sa.String(63), primary_key=True),
        sa.Column("target_ref", sa.String(255), primary_key=True),
    )
    op.create_index("relations_target_type_idx", "relations", ["target_ref", "type"])
    op.create_table(
        "search",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("entity_ref", sa.String(255), nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("value", sa.String(255), nullable=True),
        sa.Column("original_value", sa.String(255), nullable=True),
    )
    op.create_index("ix_search_entity_ref", "search", ["entity_ref"])
    op.create_index("search_key_value_idx", "search", ["key", "value"])
    refresh_state = op.create_table(
        "refresh_state",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("generation", sa.Integer, nullable=False),
        sa.Column("refreshed_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.bulk_insert(refresh_state, [{"id": 1, "generation": 0, "refreshed_at": None}])


def downgrade() -> None:
    """Drop every catalog table."""
    for table in ("refresh_state", "search", "relations", "entities"):
        op.drop_table(table)
