"""Catalog filters are bounded, cost linear time, time out on PostgreSQL and stop when the client leaves."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from tests.catalog.conftest import FIXTURES
from tests.catalog.test_api import _error, catalog_host
from tests.conftest import PG_DSN, start_host

_LETTERS = "abcdefghijklmnopqrstuvwxyz0123456789"


def _keys(count: int) -> list[str]:
    """``count`` distinct three-character keys, so a 3,000-condition filter fits the 16 KiB request line."""
    return [a + b + c for a in _LETTERS for b in _LETTERS for c in _LETTERS][:count]


def _and_filter(conditions: int) -> str:
    """One filter of ``conditions`` ANDed "exists" conditions on distinct keys (the shape that used to blow up)."""
    return ",".join(_keys(conditions))


async def test_filter_size_is_bounded_with_a_clear_400(db_kind: str) -> None:
    async with catalog_host(db_kind, FIXTURES / "org.yaml") as host:
        headers = host.service_headers
        assert (
            await host.client.get(
                "/api/catalog/entities/by-query", params={"filter": _and_filter(500)}, headers=headers
            )
        ).status_code == 200
        for conditions in (501, 3000):  # 3,000 used to answer 500 on SQLite ("Expression tree is too large")
            expected = f"The filter has {conditions} conditions, more than the 500 allowed"
            # commas unescaped, as browsers send them, so 3,000 conditions fit the default request line
            response = await host.client.get(
                f"/api/catalog/entities/by-query?filter={_and_filter(conditions)}", headers=headers
            )
            assert _error(response, 400, "InputError")["error"]["message"] == expected
        # ORed filters and values count too, on every route that filters
        many_values = "kind=" + ",kind=".join(_keys(501))
        facets = await host.client.get(
            "/api/catalog/entity-facets", params={"facet": "kind", "filter": many_values}, headers=headers
        )
        _error(facets, 400, "InputError")
        ored = "&".join(f"filter={key}" for key in _keys(501))
        refs = await host.client.post(f"/api/catalog/entities/by-refs?{ored}", json={"entityRefs": []}, headers=headers)
        _error(refs, 400, "InputError")


async def test_large_filters_cost_linear_time(db_kind: str) -> None:
    """With the limit raised, 3,000 ANDed or 3,001 ORed conditions answer at once (160 ANDed took 10 s before)."""
    extra = {"catalog": {"query": {"maxFilterConditions": 5000}}, "backend": {"limits": {"maxHeaderBytes": 65536}}}
    async with catalog_host(db_kind, FIXTURES / "org.yaml", extra=extra) as host:
        headers = host.service_headers
        started = time.monotonic()
        anded = await host.client.get(
            "/api/catalog/entities/by-query", params={"filter": f"kind=user,{_and_filter(2999)}"}, headers=headers
        )
        assert anded.status_code == 200, anded.text
        assert anded.json()["totalItems"] == 0
        ored = "&".join(
            [
                "filter=metadata.name=sam",
                *(f"filter={key}=x" for key in _keys(1500)),
                *(f"filter=spec.{key}" for key in _keys(1500)),
            ]
        )
        either = await host.client.get(f"/api/catalog/entities/by-query?{ored}", headers=headers)
        assert either.status_code == 200, either.text
        assert [item["metadata"]["name"] for item in either.json()["items"]] == ["sam"]
        facets = await host.client.get(f"/api/catalog/entity-facets?facet=kind&{ored}", headers=headers)
        assert facets.json() == {"facets": {"kind": [{"value": "User", "count": 1}]}}
        assert time.monotonic() - started < 10


def _schema(prefix: str) -> str:
    return f"{prefix}catalog"


async def _lock_entities(prefix: str) -> asyncpg.Connection:
    """Hold an exclusive lock on the catalog's entities table, so every catalog read waits."""
    conn = await asyncpg.connect(PG_DSN)
    await conn.execute("BEGIN")
    await conn.execute(f'LOCK TABLE "{_schema(prefix)}".entities IN ACCESS EXCLUSIVE MODE')
    return conn


async def _waiting_for_entities(conn: asyncpg.Connection, prefix: str) -> int:
    """How many backends wait for a lock on this host's entities table."""
    return int(
        await conn.fetchval(
            "SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = to_regclass($1)",
            f'"{_schema(prefix)}".entities',
        )
    )


@pytest.mark.postgres
async def test_statement_timeout_answers_503(tmp_path: Path) -> None:
    prefix = f"gr_{uuid.uuid4().hex[:8]}_"
    config = {
        "catalog": {
            "locations": [{"type": "file", "target": str(FIXTURES / "org.yaml")}],
            "query": {"statementTimeout": {"milliseconds": 300}},
        }
    }
    async with start_host("postgres", config, plugins=["auth", "catalog"], prefix=prefix) as host:
        lock = await _lock_entities(prefix)
        try:
            started = time.monotonic()
            requests = [
                host.client.get(
                    "/api/catalog/entities/by-query", params={"filter": "kind=user"}, headers=host.service_headers
                ),
                host.client.get(
                    "/api/catalog/entity-facets",
                    params={"facet": "kind", "filter": "kind=user"},
                    headers=host.service_headers,
                ),
                host.client.post(
                    "/api/catalog/entities/by-refs",
                    json={"entityRefs": ["user:default/sam"]},
                    headers=host.service_headers,
                ),
            ]
            for response in await asyncio.gather(*requests):
                body = _error(response, 503, "ServiceUnavailableError")
                assert body["error"]["message"].startswith("The catalog query took longer than 300 ms")
            assert time.monotonic() - started < 5
        finally:
            await lock.close()
        assert (
            await host.client.get(
                "/api/catalog/entities/by-query", params={"filter": "kind=user"}, headers=host.service_headers
            )
        ).status_code == 200


@pytest.mark.postgres
async def test_a_query_stops_when_its_client_disconnects() -> None:
    prefix = f"gr_{uuid.uuid4().hex[:8]}_"
    config = {"catalog": {"locations": [{"type": "file", "target": str(FIXTURES / "org.yaml")}]}}
    async with start_host("postgres", config, plugins=["auth", "catalog"], prefix=prefix) as host:
        lock = await _lock_entities(prefix)
        try:
            pending = asyncio.ensure_future(
                host.client.get(
                    "/api/catalog/entities/by-query", params={"filter": "kind=group"}, headers=host.service_headers
                )
            )
            for _ in range(50):  # a query that keeps its connection waits too, so the check below can see one
                if await _waiting_for_entities(lock, prefix):
                    break
                await asyncio.sleep(0.05)
            assert await _waiting_for_entities(lock, prefix) == 1
            async with httpx.AsyncClient(base_url=host.url) as client:
                with pytest.raises(httpx.ReadTimeout):
                    await client.get(
                        "/api/catalog/entities/by-query",
                        params={"filter": "kind=user"},
                        headers=host.service_headers,
                        timeout=1.0,
                    )
            # the lock is still held: only a cancel can have ended the waiting query
            waiting: Any = None
            for _ in range(50):
                waiting = await _waiting_for_entities(lock, prefix)
                if waiting == 1:
                    break
                await asyncio.sleep(0.1)
            assert waiting == 1  # the abandoned query is gone; the connected client's query still waits
        finally:
            await lock.close()
        assert (await pending).status_code == 200
