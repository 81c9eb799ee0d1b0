"""A database that is down, restarting or drops connections: 503 with ``Retry-After``, never 500/400.

The shared PostgreSQL server is never stopped: the host reaches it through a
small TCP proxy that the test cuts (connections reset, new ones refused) and
restores.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from host import core_services, create_backend_plugin
from host.config import deep_merge
from tests.conftest import HostHandle, start_host
from tests.notifications.conftest import notifications_config

pytestmark = pytest.mark.postgres

JANE = "user:default/jane"
TEAM = {"type": "entity", "entityRef": "group:default/team"}


class TcpProxy:
    """Forwards 127.0.0.1:<port> to PostgreSQL; :meth:`cut` makes the database unreachable."""

    def __init__(self, target_port: int = 5432) -> None:
        self._target = target_port
        self.port = 0
        self._server: asyncio.Server | None = None
        self._pairs: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = set()
        self._idle = asyncio.Event()
        self._idle.set()

    async def start(self) -> None:
        """Listen (again, on the same port)."""
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def drop_connections(self) -> None:
        """Reset every forwarded connection (what a server restart does to pooled connections)."""
        for client, upstream in list(self._pairs):
            client.transport.abort()
            upstream.transport.abort()
        await asyncio.wait_for(self._idle.wait(), 5)

    async def cut(self) -> None:
        """The database goes away: connections reset, new ones refused."""
        assert self._server is not None
        self._server.close()
        await self.drop_connections()

    async def close(self) -> None:
        """Stop for good."""
        if self._server is not None:
            self._server.close()
        await self.drop_connections()

    async def _handle(self, client_reader: asyncio.StreamReader, client: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream = await asyncio.open_connection("127.0.0.1", self._target)
        except OSError:
            client.close()
            return
        pair = (client, upstream)
        self._pairs.add(pair)
        self._idle.clear()

        async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                while data := await reader.read(65536):
                    writer.write(data)
                    await writer.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                writer.transport.abort()

        try:
            await asyncio.gather(pipe(client_reader, upstream), pipe(upstream_reader, client))
        finally:
            self._pairs.discard(pair)
            if not self._pairs:
                self._idle.set()


@contextlib.asynccontextmanager
async def host_behind_proxy(
    extra: dict[str, Any] | None = None, features: list[Any] | None = None
) -> AsyncIterator[tuple[HostHandle, TcpProxy]]:
    proxy = TcpProxy()
    await proxy.start()
    config = deep_merge(
        notifications_config(),
        {
            "backend": {
                "database": {"connection": {"port": proxy.port}},
                "health": {"databaseProbeInterval": {"milliseconds": 200}},
            }
        },
    )
    try:
        async with start_host("postgres", config=deep_merge(config, extra or {}), features=features or []) as host:
            yield host, proxy
    finally:
        await proxy.close()


def _assert_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"] == "5"
    body = response.json()
    assert body["error"] == {
        "name": "ServiceUnavailableError",
        "message": "The service is temporarily unavailable, try again later",
    }
    assert body["response"] == {"statusCode": 503}
    assert "SQL" not in response.text and "SELECT" not in response.text


async def _readiness(host: HostHandle) -> int:
    return (await host.client.get("/.backstage/health/v1/readiness")).status_code


async def _until_readiness(host: HostHandle, status: int) -> None:
    """Wait (bounded) for readiness to report ``status``: the probe runs every 200 ms."""

    async def wait() -> None:
        while await _readiness(host) != status:
            await asyncio.sleep(0.05)

    await asyncio.wait_for(wait(), 10)


async def test_database_down_gives_503_and_recovers() -> None:
    async with host_behind_proxy() as (host, proxy):
        user = await host.user_headers(JANE)
        assert (
            await host.client.post(
                "/api/notifications",
                headers=host.service_headers,
                json={"recipients": TEAM, "payload": {"title": "before"}},
            )
        ).status_code == 200
        assert await _readiness(host) == 200

        await proxy.cut()
        _assert_unavailable(await host.client.get("/api/notifications", headers=user))
        _assert_unavailable(await host.client.get("/api/notifications/status", headers=user))
        # the group send resolves recipients in the catalog's database: 503 too, not a 400 with SQL in it
        _assert_unavailable(
            await host.client.post(
                "/api/notifications",
                headers=host.service_headers,
                json={"recipients": TEAM, "payload": {"title": "during"}},
            )
        )
        _assert_unavailable(
            await host.client.post(
                "/api/notifications",
                headers=host.service_headers,
                json={"recipients": {"type": "broadcast"}, "payload": {"title": "during"}},
            )
        )
        await _until_readiness(host, 503)

        await proxy.start()
        # the first request after the restart works: broken pooled connections were replaced
        listed = await host.client.get("/api/notifications", headers=user)
        assert listed.status_code == 200, listed.text
        assert [item["payload"]["title"] for item in listed.json()["notifications"]] == ["before"]
        await _until_readiness(host, 200)


async def test_dead_pooled_connections_are_replaced_before_use() -> None:
    extra = {"backend": {"database": {"pool": {"pingIdleAfter": {"milliseconds": 0}}}}}
    async with host_behind_proxy(extra) as (host, proxy):
        user = await host.user_headers(JANE)
        for _ in range(3):  # fill the pools
            assert (await host.client.get("/api/notifications", headers=user)).status_code == 200
        await proxy.drop_connections()  # as a PostgreSQL restart does; the proxy keeps listening
        for _ in range(3):
            response = await host.client.get("/api/notifications", headers=user)
            assert response.status_code == 200, response.text


def _failing_plugin() -> Any:
    """A plugin whose route runs a long, failing statement with many parameters (a generic 500)."""

    def register(reg: Any) -> None:
        async def init(router: Any, database: Any) -> None:
            engine = await database.get_engine()

            class Broken:
                async def on_get(self, req: Any, resp: Any) -> None:
                    params = {f"p{i}": f"secret-value-{i}" for i in range(2000)}
                    sql = "SELECT * FROM no_such_table WHERE x IN (" + ", ".join(f":{k}" for k in params) + ")"
                    async with engine.connect() as conn:
                        await conn.execute(sa.text(sql), params)

            router.add_route("/broken", Broken())

        reg.register_init(deps={"router": core_services.http_router, "database": core_services.database}, init=init)

    return create_backend_plugin("broken", register)


async def test_a_500_log_line_has_neither_the_whole_sql_nor_parameters(caplog: pytest.LogCaptureFixture) -> None:
    async with host_behind_proxy(features=[_failing_plugin()]) as (host, _proxy):
        with caplog.at_level("ERROR"):
            response = await host.client.get("/api/broken/broken", headers=await host.user_headers(JANE))
        assert response.status_code == 500
        assert response.json()["error"] == {"name": "Error", "message": "Internal Server Error"}
        logged = "\n".join(caplog.text.splitlines())
        assert "Request failed: GET /api/broken/broken" in logged
        assert "secret-value" not in logged
        assert len(logged) < 20000, len(logged)  # the statement alone is ~16 kB
