"""``host.testing``: start a real Greenroom host in your plugin's tests (a pytest plugin).

Installed with ``greenroom`` (entry point ``pytest11: greenroom``), so any
project with ``greenroom`` and ``pytest-asyncio`` can write::

    from host.testing import eventually, start_host

    async def test_hello() -> None:
        async with start_host(features=[hello_plugin]) as host:
            response = await host.client.get("/api/hello/hello")
            assert response.json() == {"hello": "world"}

:func:`start_host` serves the host with uvicorn on a free port of
127.0.0.1, on SQLite in a temporary directory (or PostgreSQL with
``db="postgres"``, one schema prefix per host, dropped afterwards). Entry-point
discovery is off unless you name the installed features to load with
``plugins=[...]``; ``features=[...]`` adds plugins, modules and service
factories directly. :class:`HostHandle` has an ``httpx`` client, the static
service token and user tokens. :func:`eventually` waits for background work.

The plugin adds the marker ``greenroom(features=..., config=..., plugins=...)``
and the fixture ``greenroom_host`` that starts a host from it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import tempfile
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import uvicorn

from host.aio import await_me_maybe
from host.app import GreenroomApp, create_app
from host.config import Config, deep_merge
from host.http_protocol import server_options
from host.server_limits import ServerLimits
from host.services import core_services

__all__ = [
    "HostHandle",
    "SERVICE_SUBJECT",
    "SERVICE_TOKEN",
    "base_config",
    "eventually",
    "free_port",
    "start_host",
]

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

    from host.connection_errors import CONNECTION_ERRORS

    try:
        conn = await asyncpg.connect(PG_DSN, timeout=3)
    except CONNECTION_ERRORS:
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
        database = {
            "client": "pg",
            "connection": pg_connection_config(),
            "pluginDivisionMode": "schema",
            "prefix": prefix,
            "pool": {"size": 4, "maxOverflow": 4},
        }
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
            "auth": {
                "externalAccess": [
                    {"type": "static", "options": {"token": SERVICE_TOKEN, "subject": SERVICE_SUBJECT}},
                ]
            },
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
        return str(token)

    async def user_headers(self, user_ref: str, ownership: Iterable[str] | None = None) -> dict[str, str]:
        """``Authorization`` header for ``user_ref``."""
        return {"Authorization": f"Bearer {await self.user_token(user_ref, ownership)}"}


@contextlib.asynccontextmanager
async def start_host(
    db: str = "sqlite",
    config: dict[str, Any] | None = None,
    features: Iterable[Any] = (),
    *,
    discover: bool | None = None,
    plugins: Iterable[str] | None = None,
    port: int | None = None,
    prefix: str | None = None,
    data_dir: str | None = None,
) -> AsyncIterator[HostHandle]:
    """Start a real host on a free port and yield a :class:`HostHandle`; stop it on exit.

    ``features`` are added directly. Entry-point discovery is on only when
    ``plugins`` names the installed features to load (or ``discover=True``
    loads every installed one). ``config`` is merged over a test base config
    (SQLite in a temporary directory, a static service token, quiet logs).
    """
    if discover is None:
        discover = plugins is not None
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
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            lifespan="on",
            log_level="warning",
            ws="websockets-sansio",
            ws_ping_interval=None,
            **limits,
        )
    )
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]  # SIGINT stays pytest's

    async def serve() -> None:
        # uvicorn says "startup failed" with sys.exit(3); a SystemExit escaping the task would stop the
        # event loop and the test run's bookkeeping (every later test on the worker errors): fail this test only
        try:
            await server.serve()
        except SystemExit as exit_:
            raise RuntimeError(
                f"The test host failed to start (uvicorn exit {exit_.code}, see the log above)"
            ) from None

    task = asyncio.create_task(serve())
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


async def eventually(
    check: Callable[[], Any | Awaitable[Any]],
    timeout: float = 10.0,  # noqa: ASYNC109 - the polling deadline is this helper's whole point
    interval: float = 0.02,
) -> Any:
    """Poll ``check`` (sync or async) until it returns something truthy, and return that; fail after ``timeout`` s."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = await await_me_maybe(check())
        if result:
            return result
        if loop.time() > deadline:
            raise AssertionError(f"condition not met within {timeout:g} s")
        await asyncio.sleep(interval)


# -- the pytest plugin -------------------------------------------------------------------------


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``greenroom`` marker."""
    config.addinivalue_line(
        "markers",
        "greenroom(features=(), config=None, plugins=None, db='sqlite'): how greenroom_host starts its host",
    )


def _marker_options(request: pytest.FixtureRequest) -> dict[str, Any]:
    marker = request.node.get_closest_marker("greenroom")
    return dict(marker.kwargs) if marker is not None else {}


try:
    import pytest_asyncio
except ImportError:  # pragma: no cover - start_host still works without the fixture
    pass
else:

    @pytest_asyncio.fixture
    async def greenroom_host(request: pytest.FixtureRequest) -> AsyncIterator[HostHandle]:
        """A running host configured by the test's ``@pytest.mark.greenroom(...)``."""
        async with start_host(**_marker_options(request)) as handle:
            yield handle
