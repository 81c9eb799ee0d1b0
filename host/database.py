"""The database service: one SQLAlchemy async engine per plugin.

SQLite is the zero-set-up default (one file per plugin under
``backend.database.connection.directory``). PostgreSQL is selected with
``backend.database.client: pg``; each plugin then gets its own database
(``<prefix><pluginId>``, created on demand) or, with
``pluginDivisionMode: schema``, its own schema inside one database.

Each plugin owns an Alembic migration history that the host applies at
startup through :meth:`PluginDatabase.migrate`. Migrations are serialised
across workers and instances (an advisory lock on PostgreSQL, a file lock on
SQLite), so many gunicorn workers can start at once.
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import fcntl
import hashlib
import json
import logging
import os
import re
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import orjson
from sqlalchemy import event, text
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from host import instance_lock
from host.config import Config
from host.connection_errors import CONNECTION_ERRORS, ConnectionFailedError, database_failure, root_cause
from host.database_health import ping_idle_connections
from host.database_layout import DatabaseLayout

_LOGGER = logging.getLogger("greenroom.database")
_DRIVER_ERRORS: tuple[type[BaseException], ...] = (*CONNECTION_ERRORS, DBAPIError)
#: Pooled PostgreSQL connections idle this long are pinged at checkout (``backend.database.pool.pingIdleAfter``).
DEFAULT_PING_IDLE_SECONDS = 1.0


def read_json(text: str | bytes) -> Any:
    """Decode a JSON column value; a value no decoder can read comes back as ``None`` (logged).

    orjson first (fast; it stops at 1,024 levels), then the standard library
    (NaN, huge integers); rows written by hand or by older versions must not
    make every read that touches them fail.
    """
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        pass
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as error:
        _LOGGER.warning("Unreadable JSON value in the database, read as null: %s", str(error)[:200])
        return None


#: Options of every engine: errors never carry bind parameters (they end up in logs), and
#: JSON columns are decoded defensively (see :func:`read_json`).
ENGINE_SAFETY: dict[str, Any] = {"hide_parameters": True, "json_deserializer": read_json}

DEFAULT_PREFIX = "greenroom_plugin_"


class PluginDatabase:
    """Database access for one plugin.

    Use :meth:`get_engine` for an :class:`~sqlalchemy.ext.asyncio.AsyncEngine`
    and :meth:`migrate` to apply the plugin's Alembic history.
    """

    def __init__(self, manager: DatabaseManager, plugin_id: str) -> None:
        self._manager = manager
        self.plugin_id = plugin_id
        self._engine: AsyncEngine | None = None
        self._lock = asyncio.Lock()

    @property
    def client(self) -> str:
        """``"sqlite"`` or ``"pg"``."""
        return self._manager.client_for(self.plugin_id)

    @property
    def is_postgres(self) -> bool:
        """Whether this plugin's database is PostgreSQL."""
        return self.client == "pg"

    @property
    def skip_migrations(self) -> bool:
        """Whether ``backend.database.skipMigrations`` (or the plugin override) is set."""
        return self._manager.skip_migrations(self.plugin_id)

    async def get_engine(self) -> AsyncEngine:
        """Return the plugin's engine, creating the database or schema first if needed."""
        if self._engine is None:
            async with self._lock:
                if self._engine is None:
                    self._engine = await self._manager.create_engine(self.plugin_id)
        return self._engine

    async def migrate(
        self, location: str | Path, *, version_table: str = "alembic_version", target: str = "heads"
    ) -> None:
        """Upgrade this plugin's database to ``target`` (default: the head) of the Alembic history at ``location``.

        ``location`` is a directory holding ``versions/*.py`` revision files;
        no ``env.py`` is needed because the host drives Alembic itself.
        """
        if self.skip_migrations:
            return
        engine = await self.get_engine()
        if target == "heads" and await _at_heads(engine, Path(location), version_table):
            return  # the usual restart and every worker after the first: Alembic is never imported
        # Alembic keeps its migration context in module globals, so migrations in
        # one process run one at a time; the cross-process lock comes on top.
        async with (
            _process_migration_lock(),
            self._manager.migration_lock(self.plugin_id, engine, version_table),
            engine.begin() as conn,
        ):
            await conn.run_sync(_upgrade, str(location), version_table, target)

    async def dispose(self) -> None:
        """Close every pooled connection."""
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = None


_PROCESS_LOCKS: dict[int, asyncio.Lock] = {}


def _process_migration_lock() -> asyncio.Lock:
    loop_id = id(asyncio.get_running_loop())
    if loop_id not in _PROCESS_LOCKS:
        _PROCESS_LOCKS.clear()  # locks of finished event loops are useless
        _PROCESS_LOCKS[loop_id] = asyncio.Lock()
    return _PROCESS_LOCKS[loop_id]


def unicode_lower(value: Any) -> Any:
    """SQL ``unicode_lower()`` on SQLite connections: Unicode lower case, as PostgreSQL's ``lower()``.

    ``NULL`` stays ``NULL``. SQLite's own ``lower()`` folds ASCII letters only.
    """
    return value.lower() if isinstance(value, str) else value


#: ``ast.parse`` in several threads at once (plugins migrate side by side, each in ``to_thread``) can fail
#: on CPython 3.11 with "SystemError: AST constructor recursion depth mismatch" (CPython gh-106905).
_AST_PARSE = threading.Lock()


def head_revisions(location: Path) -> set[str]:
    """The head revision ids of the Alembic history in ``location``/``versions``, read without Alembic.

    Each revision file's module-level ``revision`` and ``down_revision`` assignments are read with
    :mod:`ast`; a head is a revision no other one revises. An empty set when the files cannot be read
    that way (the caller then migrates through Alembic as usual).
    """
    revisions: set[str] = set()
    revised: set[str] = set()
    for path in (location / "versions").glob("*.py"):
        try:
            with _AST_PARSE:
                tree = ast.parse(path.read_text(encoding="utf-8"))
        except (OSError, SyntaxError, ValueError):
            return set()
        values: dict[str, Any] = {}
        for node in tree.body:
            target = node.targets[0] if isinstance(node, ast.Assign) and len(node.targets) == 1 else None
            if isinstance(target, ast.Name) and target.id in ("revision", "down_revision"):
                try:
                    values[target.id] = ast.literal_eval(node.value)  # type: ignore[attr-defined]
                except ValueError:
                    return set()
        if not isinstance(values.get("revision"), str):
            return set()
        revisions.add(values["revision"])
        down = values.get("down_revision")
        revised.update([down] if isinstance(down, str) else list(down or ()))
    return revisions - revised


async def _at_heads(engine: AsyncEngine, location: Path, version_table: str) -> bool:
    """Whether the database already records exactly the heads of the history at ``location``."""
    heads = await asyncio.to_thread(head_revisions, location)
    if not heads or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", version_table):
        return False
    try:
        async with engine.connect() as conn:
            rows = (await conn.exec_driver_sql(f"SELECT version_num FROM {version_table}")).all()
    except DBAPIError:
        return False  # no version table yet: a new database
    return {row[0] for row in rows} == heads


def _upgrade(connection: Connection, location: str, version_table: str, target: str) -> None:
    # Imported here: Alembic is only needed while migrating, not in a serving worker's memory.
    from alembic.config import Config as AlembicConfig
    from alembic.runtime.environment import EnvironmentContext
    from alembic.script import ScriptDirectory

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", location)
    script = ScriptDirectory.from_config(cfg)

    def upgrade(rev: Any, context: Any) -> Any:
        return script._upgrade_revs(target, rev)

    with EnvironmentContext(cfg, script, fn=upgrade, destination_rev=target) as env:
        env.configure(
            connection=connection,
            version_table=version_table,
            render_as_batch=connection.dialect.name == "sqlite",
            transactional_ddl=True,
        )
        with env.begin_transaction():
            env.run_migrations()


class DatabaseManager(DatabaseLayout):
    """Creates per-plugin databases from ``backend.database`` config (root scoped)."""

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        self._plugins: dict[str, PluginDatabase] = {}
        self._directory_locks: list[Path] = []  # one entry per acquire

    def engines(self) -> list[tuple[str, AsyncEngine]]:
        """``(plugin_id, engine)`` of every engine created so far."""
        return [(plugin_id, db._engine) for plugin_id, db in self._plugins.items() if db._engine is not None]

    def for_plugin(self, plugin_id: str) -> PluginDatabase:
        """Return the (cached) database handle of ``plugin_id``."""
        if plugin_id not in self._plugins:
            self._plugins[plugin_id] = PluginDatabase(self, plugin_id)
        return self._plugins[plugin_id]

    async def dispose(self) -> None:
        """Dispose every engine created so far."""
        for db in self._plugins.values():
            await db.dispose()
        for directory in self._directory_locks:
            instance_lock.release(directory)
        self._directory_locks.clear()

    def pg_url(self, plugin_id: str) -> tuple[URL, str | None]:
        """Return the asyncpg URL for ``plugin_id`` and its schema (schema division mode)."""
        conn = self._connection(plugin_id)
        if conn is None:
            raise ValueError("backend.database.connection is required for the pg client")
        if isinstance(conn, str):
            url = make_url(conn)
        else:
            url = URL.create(
                "postgresql",
                username=conn.get("user"),
                password=conn.get("password"),
                host=conn.get("host", "127.0.0.1"),
                port=int(conn["port"]) if conn.get("port") else None,
                database=conn.get("database"),
            )
        url = url.set(drivername="postgresql+asyncpg")
        prefix = self._config.get_optional_string("backend.database.prefix") or DEFAULT_PREFIX
        mode = self._config.get_optional_string("backend.database.pluginDivisionMode") or "database"
        explicit_db = isinstance(self._plugin_config(plugin_id).get_optional("connection"), (dict, str))
        if mode == "schema":
            return url, _safe_identifier(f"{prefix}{plugin_id}")
        if explicit_db and url.database:
            return url, None
        return url.set(database=_safe_identifier(f"{prefix}{plugin_id}")), None

    # -- engines ---------------------------------------------------------------

    async def create_engine(self, plugin_id: str) -> AsyncEngine:
        """Create the engine of ``plugin_id``, ensuring its database or schema exists."""
        pool = self._config.get_config("backend.database.pool", default={})
        if self.client_for(plugin_id) == "sqlite":
            path = self.sqlite_path(plugin_id)
            if path != ":memory:" and not path.startswith("file:"):
                _private_file(path)
                # One host per SQLite directory (see host.instance_lock).
                self._directory_locks.append(instance_lock.acquire(Path(path).parent))
            engine = create_async_engine(f"sqlite+aiosqlite:///{path}", connect_args={"timeout": 30}, **ENGINE_SAFETY)

            @event.listens_for(engine.sync_engine, "connect")
            def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
                cursor = dbapi_conn.cursor()
                cursor.execute("PRAGMA foreign_keys = ON")
                if path != ":memory:":
                    cursor.execute("PRAGMA journal_mode = WAL")
                    cursor.execute("PRAGMA synchronous = NORMAL")
                cursor.execute("PRAGMA busy_timeout = 30000")
                cursor.close()
                # SQLite's lower() folds ASCII only; unicode_lower() folds every letter, as PostgreSQL's lower().
                dbapi_conn.create_function("unicode_lower", 1, unicode_lower, deterministic=True)

            return engine
        url, schema = self.pg_url(plugin_id)
        try:
            await self._ensure_pg_database(url, schema)
        except _DRIVER_ERRORS as error:
            raise self._failure(plugin_id, url, error) from error
        server_settings = {"application_name": f"greenroom_plugin_{plugin_id}"[:63]}
        if schema:
            server_settings["search_path"] = schema
        connect_args: dict[str, Any] = {"server_settings": server_settings}
        ssl = self._connection_option(plugin_id, "ssl")
        if ssl is None and url.host in ("127.0.0.1", "localhost", "::1", None):
            ssl = False  # loopback: skip asyncpg's TLS attempt on every new connection
        if ssl is not None:
            connect_args["ssl"] = ssl
        engine = create_async_engine(
            url,
            # Sized for bursts: connections beyond pool_size are closed on return,
            # and reopening them costs far more than an idle connection.
            pool_size=int(pool.get_optional_number("size") or 20),
            max_overflow=int(pool.get_optional_number("maxOverflow") or 10),
            # Pre-ping costs a round trip per checkout; connections idle for pingIdleAfter
            # are pinged instead (see ping_idle_connections). prePing pings every checkout.
            pool_pre_ping=bool(pool.get_optional_boolean("prePing")),
            pool_recycle=int(pool.get_optional_number("recycleSeconds") or 1800),
            connect_args=connect_args,
            **ENGINE_SAFETY,
        )
        idle = pool.get_optional_duration("pingIdleAfter")
        ping_idle_connections(engine, idle.total_seconds() if idle is not None else DEFAULT_PING_IDLE_SECONDS)
        try:  # fail here, naming the plugin and the server, rather than in the first query
            async with engine.connect():
                pass
        except _DRIVER_ERRORS as error:
            await engine.dispose()
            raise self._failure(plugin_id, url, error) from error
        return engine

    def _failure(self, plugin_id: str, url: URL, error: BaseException) -> ConnectionFailedError:
        plugin_key = f"backend.database.plugin.{plugin_id}.connection"
        key = plugin_key if self._plugin_config(plugin_id).has("connection") else "backend.database.connection"
        return database_failure(
            f"Plugin '{plugin_id}'",
            host=url.host,
            port=url.port,
            database=url.database,
            user=url.username,
            config_key=key,
            error=error,
        )

    async def _ensure_pg_database(self, url: URL, schema: str | None) -> None:
        """Create the plugin's schema or database if missing.

        In schema mode the configured database itself is created (from the
        ``postgres`` database) when it does not exist yet. ``CREATE ... IF NOT
        EXISTS`` is not safe against a concurrent create (two workers booting
        together can both pass the check and one fails on the catalog's unique
        index), so creation is serialised with an advisory lock.
        """
        if self._config.get_optional_boolean("backend.database.ensureExists") is False:
            return
        if not schema:
            await self._create_database(url.set(database=self._maintenance_database()), str(url.database))
            return
        statement = f'CREATE SCHEMA IF NOT EXISTS "{schema}"'
        try:
            await _locked(url, f"schema:{schema}", lambda conn: conn.execute(text(statement)))
        except _DRIVER_ERRORS as error:
            if not isinstance(root_cause(error), asyncpg.InvalidCatalogNameError):
                raise
            try:
                await self._create_database(url.set(database="postgres"), str(url.database))
            except _DRIVER_ERRORS:
                raise error from None  # explain the missing database, not the failed create
            await _locked(url, f"schema:{schema}", lambda conn: conn.execute(text(statement)))

    async def _create_database(self, maintenance: URL, name: str) -> None:
        async def create(conn: AsyncConnection) -> None:
            if not await conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": name}):
                await conn.execute(text(f'CREATE DATABASE "{name}"'))

        await _locked(maintenance, f"database:{name}", create)

    def _maintenance_database(self) -> str:
        conn = self._config.get_optional("backend.database.connection")
        if isinstance(conn, dict) and conn.get("database"):
            return str(conn["database"])
        if isinstance(conn, str) and make_url(conn).database:
            return str(make_url(conn).database)
        return "postgres"

    # -- migration locking -------------------------------------------------------

    @contextlib.asynccontextmanager
    async def migration_lock(self, plugin_id: str, engine: AsyncEngine, name: str) -> AsyncIterator[None]:
        """Serialise migrations of one plugin history across processes."""
        if engine.dialect.name == "postgresql":
            key = int.from_bytes(hashlib.sha256(f"{plugin_id}:{name}".encode()).digest()[:8], "big", signed=True)
            async with engine.connect() as conn:
                await conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": key})
                try:
                    yield
                finally:
                    await conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                    await conn.commit()
            return
        path = self.sqlite_path(plugin_id)
        if path == ":memory:":
            yield
            return
        async with _file_lock(f"{path}.{name}.lock"):
            yield


def _private_file(path: str) -> None:
    """Create ``path`` readable by its owner only (0600), or take group and other access away from it.

    SQLite creates the ``-wal`` and ``-shm`` files with the database file's mode.
    A plugin's database can hold secrets (the ``auth`` plugin's signing key).
    """
    os.close(os.open(path, os.O_CREAT | os.O_RDWR, 0o600))
    for name in (path, f"{path}-wal", f"{path}-shm"):
        with contextlib.suppress(FileNotFoundError, PermissionError):  # PermissionError: not ours to change
            if os.stat(name).st_mode & 0o077:
                os.chmod(name, 0o600)


@contextlib.asynccontextmanager
async def _file_lock(path: str) -> AsyncIterator[None]:
    """Hold an exclusive ``flock`` on ``path``; waiting for it blocks a worker thread, not the event loop."""
    taking = asyncio.get_running_loop().run_in_executor(None, _lock_file, path)
    try:
        fd = await asyncio.shield(taking)
    except asyncio.CancelledError:  # the thread may still get the lock: give it back then
        taking.add_done_callback(_unlock_when_taken)
        raise
    try:
        yield
    finally:
        _unlock_file(fd)


def _lock_file(path: str) -> int:
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _unlock_file(fd: int) -> None:
    fcntl.flock(fd, fcntl.LOCK_UN)
    os.close(fd)


def _unlock_when_taken(taking: asyncio.Future[int]) -> None:
    if not taking.cancelled() and taking.exception() is None:
        _unlock_file(taking.result())


async def _locked(url: URL, name: str, work: Callable[[AsyncConnection], Awaitable[Any]]) -> None:
    """Run ``work`` on an autocommit connection to ``url`` under an advisory lock named ``name``."""
    key = int.from_bytes(hashlib.sha256(f"greenroom:create:{name}".encode()).digest()[:8], "big", signed=True)
    engine = create_async_engine(url, isolation_level="AUTOCOMMIT", **ENGINE_SAFETY)
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": key})
            try:
                await work(conn)
            finally:
                await conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
    finally:
        await engine.dispose()


def _safe_identifier(name: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9_]", "_", name)
    return cleaned[:63]
