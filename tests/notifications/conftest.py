"""Fixtures of the notifications tests: a migrated store on SQLite and on PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from host.config import Config
from host.database import DatabaseManager
from plugin_notifications.store import NotificationsStore

MIGRATIONS = Path(__file__).parents[2] / "plugin_notifications" / "migrations"
PG_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
FIXTURES = Path(__file__).parent / "fixtures"


def store_config(kind: str, tmp_path: Path, schema_prefix: str) -> Config:
    """Database config for a throw-away notifications database of ``kind``."""
    if kind == "sqlite":
        return Config({"backend": {"database": {"client": "sqlite", "connection": {"directory": str(tmp_path)}}}})
    return Config(
        {
            "backend": {
                "database": {
                    "client": "pg",
                    "connection": {"host": "127.0.0.1", "port": 5432, "user": "postgres", "database": "test"},
                    "pluginDivisionMode": "schema",
                    "prefix": schema_prefix,
                }
            }
        }
    )


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[NotificationsStore]:
    """A migrated :class:`NotificationsStore` on SQLite or on a fresh PostgreSQL schema."""
    prefix = f"t{uuid.uuid4().hex[:10]}_"
    manager = DatabaseManager(store_config(request.param, tmp_path, prefix))
    database = manager.for_plugin("notifications")
    await database.migrate(MIGRATIONS)
    try:
        yield NotificationsStore(await database.get_engine())
    finally:
        await manager.dispose()
        if request.param == "postgres":
            engine = create_async_engine(PG_URL, isolation_level="AUTOCOMMIT")
            async with engine.connect() as conn:
                await conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{prefix}notifications" CASCADE'))
            await engine.dispose()
