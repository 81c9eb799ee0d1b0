"""The database service on SQLite and on the real PostgreSQL: migrations, isolation, sharing."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import falcon
import sqlalchemy as sa

from host import core_services, create_backend_plugin
from tests.conftest import start_host

MIGRATIONS = Path(__file__).parent / "fixtures" / "notes_migrations"


class Notes:
    """POST adds a note; GET lists notes and the tables this plugin can see."""

    def __init__(self, database: Any) -> None:
        self._database = database

    async def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        body = await req.get_media()
        engine = await self._database.get_engine()
        async with engine.begin() as conn:
            await conn.execute(
                sa.text("INSERT INTO notes (body, author) VALUES (:b, :a)"),
                {"b": body["body"], "a": body.get("author")},
            )
        resp.status = 201

    async def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        engine = await self._database.get_engine()
        async with engine.connect() as conn:
            rows = (await conn.execute(sa.text("SELECT body, author FROM notes ORDER BY id"))).all()
            tables = await conn.run_sync(lambda sync: sa.inspect(sync).get_table_names())
        resp.media = {
            "notes": [list(r) for r in rows],
            "tables": sorted(tables),
            "postgres": self._database.is_postgres,
        }


def notes_plugin(plugin_id: str) -> Any:
    def register(reg: Any) -> None:
        async def init(router: Any, database: Any) -> None:
            await database.migrate(MIGRATIONS)
            router.add_route("/notes", Notes(database))
            router.add_auth_policy("/*", allow="unauthenticated")

        reg.register_init(deps={"router": core_services.http_router, "database": core_services.database}, init=init)

    return create_backend_plugin(plugin_id, register)


async def test_migrations_and_queries(db_kind: str) -> None:
    async with start_host(db_kind, features=[notes_plugin("notes"), notes_plugin("other")], plugins=["auth"]) as host:
        assert (await host.client.post("/api/notes/notes", json={"body": "first", "author": "me"})).status_code == 201
        listing = (await host.client.get("/api/notes/notes")).json()
        assert listing["notes"] == [["first", "me"]]
        assert "notes" in listing["tables"] and "alembic_version" in listing["tables"]
        assert listing["postgres"] is (db_kind == "postgres")
        # each plugin has its own database (or schema): the other plugin sees none of these rows
        assert (await host.client.get("/api/other/notes")).json()["notes"] == []


async def test_data_survives_restart_and_migrations_are_idempotent(db_kind: str, tmp_path: Path) -> None:
    prefix = f"gr_restart_{uuid.uuid4().hex[:8]}_"  # unique: tests run side by side
    kwargs: dict[str, Any] = {"features": [notes_plugin("notes")], "plugins": ["auth"], "data_dir": str(tmp_path)}
    import os

    os.environ["GREENROOM_TEST_KEEP_DB"] = "1"
    try:
        async with start_host(db_kind, prefix=prefix, **kwargs) as host:
            await host.client.post("/api/notes/notes", json={"body": "kept"})
    finally:
        os.environ.pop("GREENROOM_TEST_KEEP_DB")
    async with start_host(db_kind, prefix=prefix, **kwargs) as host:
        assert (await host.client.get("/api/notes/notes")).json()["notes"] == [["kept", None]]


async def test_upgrade_from_first_revision_keeps_data(db_kind: str, tmp_path: Path) -> None:
    from host import core_services

    async with start_host(db_kind, plugins=["auth"], data_dir=str(tmp_path)) as host:
        manager = await host.backend.get_service(core_services.root_database)
        database = manager.for_plugin("upgrade-test")
        await database.migrate(MIGRATIONS, target="notes_0001")
        engine = await database.get_engine()
        async with engine.begin() as conn:
            await conn.execute(sa.text("INSERT INTO notes (body) VALUES ('written at revision 1')"))
            columns = await conn.run_sync(lambda sync: [c["name"] for c in sa.inspect(sync).get_columns("notes")])
        assert "author" not in columns
        await database.migrate(MIGRATIONS)
        async with engine.connect() as conn:
            rows = (await conn.execute(sa.text("SELECT body, author FROM notes"))).all()
            version = (await conn.execute(sa.text("SELECT version_num FROM alembic_version"))).scalar()
        assert [tuple(r) for r in rows] == [("written at revision 1", None)]
        assert version == "notes_0002"


async def test_workers_booting_together_create_the_schema_once() -> None:
    """Several processes creating the same plugin schema at once all succeed (no unique-index race)."""
    import asyncio

    from host.config import Config
    from host.database import DatabaseManager
    from tests.conftest import base_config, drop_pg_schemas

    for attempt in range(5):
        prefix = f"gr_race_{uuid.uuid4().hex[:8]}_{attempt}_"
        await drop_pg_schemas(prefix)
        managers = [
            DatabaseManager(Config(base_config("postgres", port=0, data_dir="", prefix=prefix))) for _ in range(6)
        ]
        try:
            engines = await asyncio.gather(*(m.for_plugin("notes").get_engine() for m in managers))
            assert len(engines) == 6
        finally:
            for manager in managers:
                await manager.dispose()
            await drop_pg_schemas(prefix)


async def test_waiting_for_the_sqlite_migration_lock_does_not_block_the_event_loop(tmp_path: Path) -> None:
    """Another process holds the migration lock: this one waits in a thread while its loop keeps serving."""
    import asyncio
    import fcntl
    import os
    import threading

    from host.config import Config
    from host.database import DatabaseManager
    from tests.conftest import base_config

    manager = DatabaseManager(Config(base_config("sqlite", port=0, data_dir=str(tmp_path), prefix="")))
    try:
        engine = await manager.for_plugin("notes").get_engine()
        path = f"{manager.sqlite_path('notes')}.alembic_version.lock"
        holder = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)  # as another process would hold it
        fcntl.flock(holder, fcntl.LOCK_EX)
        release = threading.Timer(2.0, lambda: (fcntl.flock(holder, fcntl.LOCK_UN), os.close(holder)))
        release.start()
        entered = asyncio.Event()

        async def migrate() -> None:
            async with manager.migration_lock("notes", engine, "alembic_version"):
                entered.set()

        waiter = asyncio.create_task(migrate())
        for _ in range(5):  # the loop keeps running while the lock is held elsewhere
            await asyncio.sleep(0.01)
        assert not entered.is_set(), "the event loop was blocked until the lock came free"
        await asyncio.wait_for(waiter, 10)
        assert entered.is_set()
        release.join()
    finally:
        await manager.dispose()


_MIGRATE_AND_REPORT = """
import asyncio, json, sys
from host.config import Config
from host.database import DatabaseManager

async def main():
    manager = DatabaseManager(Config(json.loads(sys.argv[1])))
    try:
        await manager.for_plugin("notes").migrate(sys.argv[2])
    finally:
        await manager.dispose()
    print(json.dumps({"alembic": "alembic" in sys.modules}))

asyncio.run(main())
"""


async def test_a_database_already_at_the_head_is_not_migrated_through_alembic(db_kind: str, tmp_path: Path) -> None:
    """The first process migrates with Alembic; the next (a restart, a second worker) sees the heads and never loads it."""
    import asyncio
    import json
    import sys

    from tests.conftest import base_config, drop_pg_schemas

    prefix = f"gr_heads_{uuid.uuid4().hex[:8]}_"
    config = json.dumps(base_config(db_kind, port=0, data_dir=str(tmp_path), prefix=prefix))

    async def migrate_in_a_new_process() -> bool:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", _MIGRATE_AND_REPORT, config, str(MIGRATIONS), stdout=asyncio.subprocess.PIPE
        )
        out, _ = await proc.communicate()
        assert proc.returncode == 0
        return bool(json.loads(out)["alembic"])

    try:
        assert await migrate_in_a_new_process() is True  # a new database: Alembic runs the history
        assert await migrate_in_a_new_process() is False  # already at notes_0002: nothing to load
    finally:
        if db_kind == "postgres":
            await drop_pg_schemas(prefix)


def test_head_revisions_are_read_from_the_revision_files(tmp_path: Path) -> None:
    from host.database import head_revisions

    assert head_revisions(MIGRATIONS) == {"notes_0002"}
    branched = tmp_path / "versions"
    branched.mkdir()
    (branched / "a.py").write_text('revision = "a"\ndown_revision = None\n')
    (branched / "b.py").write_text('revision = "b"\ndown_revision = "a"\n')
    (branched / "c.py").write_text('revision = "c"\ndown_revision = "a"\n')
    (branched / "d.py").write_text('revision = "d"\ndown_revision = ("b", "c")\n')
    assert head_revisions(tmp_path) == {"d"}
    (branched / "e.py").write_text("revision = compute()\n")  # not a literal: Alembic decides
    assert head_revisions(tmp_path) == set()
