"""catalog: each entity's location, so a location that fails to read keeps its entities.

Adds ``entities.location`` (the ``backstage.io/managed-by-location``
annotation, indexed) and fills it in for the rows already stored.

Revision ID: catalog_0002
Revises: catalog_0001
Create Date: 2026-12-01
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = "catalog_0002"
down_revision = "catalog_0001"
branch_labels = None
depends_on = None

_MANAGED_BY_LOCATION = "backstage.io/managed-by-location"


def upgrade() -> None:
    """Add and backfill ``entities.location``."""
    with op.batch_alter_table("entities") as batch:
        batch.add_column(sa.Column("location", sa.Text, nullable=True))
    op.create_index("entities_location_idx", "entities", ["location"])
    entities = sa.table(
        "entities",
        sa.column("entity_ref", sa.String),
        sa.column("final_entity", sa.Text),
        sa.column("location", sa.Text),
    )
    conn = op.get_bind()
    updates = []
    for ref, body in conn.execute(sa.select(entities.c.entity_ref, entities.c.final_entity)):
        annotations = (json.loads(body).get("metadata") or {}).get("annotations") or {}
        if annotations.get(_MANAGED_BY_LOCATION):
            updates.append({"b_ref": ref, "location": annotations[_MANAGED_BY_LOCATION]})
    if updates:
        conn.execute(
            entities.update()
            .where(entities.c.entity_ref == sa.bindparam("b_ref"))
            .values(location=sa.bindparam("location")),
            updates,
        )


def downgrade() -> None:
    """Drop ``entities.location``."""
    op.drop_index("entities_location_idx", "entities")
    with op.batch_alter_table("entities") as batch:
        batch.drop_column("location")
