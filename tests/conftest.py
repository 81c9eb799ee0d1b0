"""Shared test harness: a real host served by uvicorn on a free port.

``start_host(db="sqlite"|"postgres", config={...}, features=[...])`` is an
async context manager yielding a :class:`HostHandle`. On PostgreSQL every
host gets its own schemas (``pluginDivisionMode: schema`` with a unique
prefix) in the ``test`` database, dropped afterwards. With ``CI=true`` a
missing PostgreSQL or Redis fails the run instead of skipping.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from host import core_services
from host.app import GreenroomApp, create_app
from host.config import Config, deep_merge
from host.http_protocol import server_options
from host.limits import ServerLimits

PG_DSN = os.environ.get("GREENROOM_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("GREENROOM_TEST_REDIS", "redis://127.0.0.1:6379/0")
SERVICE_TOKEN = "test-service-token-0123456789"
SERVICE_SUBJECT = "test-service"
IN_CI = os.environ.get("CI") == "true"


def free_port() -> int:
    """An unused TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pg_connection_config() -> dict[str, Any]:
    """``backend.database.connection`` for the local test PostgreSQL."""
    return {"host": "127.0.0.1", "port": 5432, "user": "postgres", "database": "test"}


async def _pg_available() -> bool:
    import asyncpg

    try:
        conn = await asyncpg.connect(PG_DSN, timeout=3)
    except Exception:
        return False
    await conn.close()
    return True


async def drop_pg_schemas(prefix: str) -> None:
    """Drop every schema whose name starts with ``prefix``."""
    import asyncpg

    conn = await asyncpg.connect(PG_DSN)
    try:
        rows = await conn.fetch("SELECT nspname FROM pg_namespace WHERE nspname LIKE $1", prefix + "%")
        for row in rows:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{row["nspname"]}" CASCADE')
    finally:
        await conn.close()


def base_config(db: str, *, port: int, data_dir: str, prefix: str) -> dict[str, Any]:
    """Config overrides every test host starts from."""
    database: dict[str, Any]
    if db == "postgres":
        database = {"client": "pg", "connection": pg_connection_config(), "pluginDivisionMode": "schema",
                    "prefix": prefix, "pool": {"size": 4, "maxOverflow": 4}}
    elif db == "sqlite":
        database = {"client": "sqlite", "connection": {"directory": data_dir}}
    else:
        raise ValueError(f"unknown db kind {db!r}")
    url = f"http://127.0.0.1:{port}"
    # hosts of one test share a NOTIFY channel; concurrent test runs on the shared server do not
    events = {"postgres": {"channel": f"{prefix}events"}} if db == "postgres" else {}
    return {
        "events": events,
        "app": {"baseUrl": url},
        "backend": {
            "baseUrl": url,
            "listen": {"host": "127.0.0.1", "port": port},
            "database": database,
            "auth": {"externalAccess": [
                {"type": "static", "options": {"token": SERVICE_TOKEN, "subject": SERVICE_SUBJECT}},
            ]},
            "scheduler": {"checkPeriod": {"milliseconds": 200}},
            "logger": {"level": os.environ.get("GREENROOM_TEST_LOG_LEVEL", "warn")},
        },
    }


@dataclass
class HostHandle:
    """A running test host."""

    app: GreenroomApp
    url: str
    client: httpx.AsyncClient
    service_token: str
    db: str
    config: dict[str, Any]

    @property
    def backend(self) -> Any:
        """The :class:`host.backend.Backend`."""
        return self.app.backend

    @property
    def service_headers(self) -> dict[str, str]:
        """``Authorization`` header with the static service token."""
        return {"Authorization": f"Bearer {self.service_token}"}

    async def user_token(self, user_ref: str, ownership: Iterable[str] | None = None) -> str:
        """Mint a user token as the host's sign-in would."""
        tokens = await self.backend.get_service(core_services.root_auth)
        token, _ = await tokens.issue_user_token(user_ref, list(ownership) if ownership is not None else [user_ref])
        return token

    async def user_headers(self, user_ref: str, ownership: Iterable[str] | None = None) -> dict[str, str]:
        """``Authorization`` header for ``user_ref``."""
        return {"Authorization": f"Bearer {await self.user_token(user_ref, ownership)}"}


@contextlib.asynccontextmanager
async def start_host(
    db: str = "sqlite",
    config: dict[str, Any] | None = None,
    features: Iterable[Any] = (),
    *,
    discover: bool = True,
    plugins: Iterable[str] | None = None,
    port: int | None = None,
    prefix: str | None = None,
    data_dir: str | None = None,
) -> AsyncIterator[HostHandle]:
    """Start a real host on a free port; ``plugins`` limits entry-point discovery to those names."""
    if db == "postgres" and not await _pg_available():
        message = f"PostgreSQL is not reachable at {PG_DSN}"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    port = port or free_port()
    prefix = prefix or f"gr_{uuid.uuid4().hex[:8]}_"
    own_dir = data_dir is None
    data_dir = data_dir or tempfile.mkdtemp(prefix="greenroom-test-")
    overrides = base_config(db, port=port, data_dir=data_dir, prefix=prefix)
    if plugins is not None:
        overrides = deep_merge(overrides, {"backend": {"features": {"include": list(plugins)}}})
    overrides = deep_merge(overrides, config or {})
    app = create_app([], overrides=overrides, features=list(features), discover=discover)
    limits = server_options(ServerLimits.from_config(Config.load([], overrides=overrides)))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="on", log_level="warning",
                                           ws="websockets-sansio", ws_ping_interval=None, **limits))
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if task.done():
                task.result()
                raise RuntimeError("The test host failed to start (see the log above)")
            await asyncio.sleep(0.02)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            yield HostHandle(app, f"http://127.0.0.1:{port}", client, SERVICE_TOKEN, db, overrides)
    finally:
        server.should_exit = True
        with contextlib.suppress(BaseException):
            await asyncio.wait_for(task, 15)
        if db == "postgres" and prefix and not os.environ.get("GREENROOM_TEST_KEEP_DB"):
            await drop_pg_schemas(prefix)
        if own_dir:
            import shutil

            shutil.rmtree(data_dir, ignore_errors=True)


async def startup_error(
    data_dir: Path, *, config: dict[str, Any] | None = None, features: Iterable[Any] = (),
    plugins: Iterable[str] | None = None,
) -> str:
    """Start a backend that must fail (SQLite in ``data_dir``); return its error and every cause, joined.

    With ``plugins`` only those entry points are discovered; without, only ``features`` are added.
    """
    from host.defaults import create_backend

    overrides = {"backend": {"database": {"connection": {"directory": str(data_dir)}}, "logger": {"level": "error"}}}
    if plugins is not None:
        overrides["backend"]["features"] = {"include": list(plugins)}
    backend = create_backend(Config.load(overrides=deep_merge(config or {}, overrides)), discover=plugins is not None)
    for feature in features:
        backend.add(feature)
    with pytest.raises(Exception) as failure:
        await backend.start()
    await backend.stop()
    texts: list[str] = []
    current: BaseException | None = failure.value
    while current is not None:
        texts.append(str(current))
        current = current.__cause__ or current.__context__
    return " | ".join(texts)


def install_distribution(source: Path, directory: Path) -> Path:
    """``pip install --target`` the distribution at ``source`` into ``directory/site``; return that site dir.

    The source is copied first so the build leaves nothing behind in the repository.
    Put the returned directory on ``sys.path`` to "install" it, remove it to "uninstall" it.
    """
    import shutil
    import subprocess
    import sys

    copy = directory / "src" / source.name
    shutil.copytree(source, copy)
    site = directory / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--target", str(site), str(copy)],
        check=True,
    )
    return site


@contextlib.contextmanager
def on_sys_path(site: Path, *modules: str) -> Iterator[None]:
    """Make the distributions in ``site`` importable ("installed") for the block; forget ``modules`` after."""
    import importlib
    import sys

    sys.path.insert(0, str(site))
    importlib.invalidate_caches()
    try:
        yield
    finally:
        sys.path.remove(str(site))
        for module in modules:
            sys.modules.pop(module, None)
        importlib.invalidate_caches()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_kind(request: pytest.FixtureRequest) -> str:
    """Run a test once on SQLite and once on PostgreSQL."""
    return str(request.param)
