"""Fixtures for the catalog's domain tests: a migrated catalog store on SQLite or PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from host.config import Config
from host.database import DatabaseManager
from plugin_catalog.catalog import Catalog
from plugin_catalog.ingestion import LocationSpec
from plugin_catalog.plugin import MIGRATIONS
from plugin_catalog.refresh import CatalogRefresher
from plugin_catalog.store import CatalogStore
from tests.conftest import base_config, drop_pg_schemas

FIXTURES = Path(__file__).parent / "fixtures"


class RecordingLogger:
    """Collects log calls so tests can assert what was reported."""

    def __init__(self) -> None:
        self.records: list[tuple[str, str, dict[str, Any]]] = []

    def _log(self, level: str, message: str, args: tuple[Any, ...], fields: dict[str, Any]) -> None:
        self.records.append((level, message % args if args else message, fields))

    def info(self, message: str, *args: Any, **fields: Any) -> None:
        self._log("info", message, args, fields)

    def warning(self, message: str, *args: Any, **fields: Any) -> None:
        self._log("warning", message, args, fields)

    def error(self, message: str, *args: Any, **fields: Any) -> None:
        self._log("error", message, args, fields)


@pytest.fixture
async def catalog_store(db_kind: str, tmp_path: Path) -> AsyncIterator[CatalogStore]:
    """A migrated, empty catalog store; PostgreSQL runs in a throw-away schema."""
    prefix = f"catalog_test_{uuid.uuid4().hex[:10]}_"
    database_config = base_config(db_kind, port=0, data_dir=str(tmp_path), prefix=prefix)["backend"]["database"]
    manager = DatabaseManager(Config({"backend": {"database": database_config}}))
    database = manager.for_plugin("catalog")
    try:
        await database.migrate(MIGRATIONS)
        yield CatalogStore(await database.get_engine())
    finally:
        await manager.dispose()
        if db_kind == "postgres":
            await drop_pg_schemas(prefix)


@pytest.fixture
def logger() -> RecordingLogger:
    """A logger that records instead of printing."""
    return RecordingLogger()


def make_refresher(store: CatalogStore, logger: Any, *files: Path) -> CatalogRefresher:
    """A refresher reading ``files`` (absolute paths)."""
    return CatalogRefresher(store, [LocationSpec("file", str(path)) for path in files], FIXTURES, logger)


@pytest.fixture
async def org_catalog(catalog_store: CatalogStore, logger: RecordingLogger) -> Catalog:
    """The fixture org (``fixtures/org.yaml``) ingested into a fresh store."""
    await make_refresher(catalog_store, logger, FIXTURES / "org.yaml").refresh()
    return Catalog(catalog_store)
