"""PostgreSQL restarted under load: only 503s while it is away, and nothing accepted is lost.

A private cluster (never the shared server) backs a ``greenroom start`` with
two workers. Senders keep posting notifications while the cluster is stopped
(``fast``: every client is disconnected, as in a failover) and started again.
Every answer must be a 200 or a 503 with ``Retry-After`` in Backstage's error
shape; sending must work again afterwards; and every notification a 200
returned must be in the database.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.faults.conftest import PrivatePostgres, host_config, serve, wait_for

pytestmark = [pytest.mark.faults, pytest.mark.postgres]

USER = "user:default/loader"
SENDERS = 6


class Load:
    """Concurrent senders that record every answer until told to stop."""

    def __init__(self, url: str, headers: dict[str, str]) -> None:
        self.url = url
        self.headers = headers
        self.answers: list[tuple[float, int, dict[str, str], Any]] = []
        self.transport_errors: list[str] = []
        self.stop = threading.Event()

    def ok_since(self, moment: float) -> int:
        return sum(1 for at, status, _, _ in self.answers if status == 200 and at > moment)

    async def run(self) -> None:
        async with httpx.AsyncClient(base_url=self.url, headers=self.headers, timeout=60) as client:
            await asyncio.gather(*(self._sender(client, i) for i in range(SENDERS)))

    async def _sender(self, client: httpx.AsyncClient, index: int) -> None:
        count = 0
        while not self.stop.is_set():
            count += 1
            body = {"recipients": {"type": "entity", "entityRef": USER}, "payload": {"title": f"load {index}-{count}"}}
            try:
                response = await client.post("/api/notifications", json=body)
            except httpx.TransportError as error:
                self.transport_errors.append(repr(error))
                await asyncio.sleep(0.05)
                continue
            self.answers.append((time.monotonic(), response.status_code, dict(response.headers), _json(response)))
            if response.status_code != 200:
                await asyncio.sleep(0.05)  # as a client honouring Retry-After would, only faster


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text


async def _stored(dsn: str, ids: list[str]) -> set[str]:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("SELECT id::text AS id FROM notification WHERE id::text = ANY($1::text[])", ids)
    finally:
        await conn.close()
    return {row["id"] for row in rows}


def test_postgres_restart_under_load(tmp_path: Path, private_postgres: PrivatePostgres) -> None:
    org = tmp_path / "org.yaml"
    org.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "backstage.io/v1alpha1",
                "kind": "User",
                "metadata": {"name": "loader"},
                "spec": {"memberOf": []},
            }
        )
    )
    prefix = f"gr_{uuid.uuid4().hex[:6]}_"
    database = {"client": "pg", "connection": private_postgres.connection, "prefix": prefix}
    config = host_config(tmp_path, database=database, catalog={"locations": [{"type": "file", "target": str(org)}]})
    with serve(config, tmp_path, workers=2) as host:
        load = Load(host.url, host.headers())
        runner = threading.Thread(target=lambda: asyncio.run(load.run()))
        runner.start()
        try:
            wait_for(lambda: load.ok_since(0) >= 20, 60, "sends to succeed before the restart")
            private_postgres.stop("fast")
            stopped = time.monotonic()
            wait_for(
                lambda: any(status == 503 for at, status, _, _ in load.answers if at > stopped),
                30,
                "a 503 while PostgreSQL is down",
            )
            private_postgres.start()
            restarted = time.monotonic()
            wait_for(lambda: load.ok_since(restarted) >= 20, 60, "sends to succeed again after the restart")
        finally:
            load.stop.set()
            runner.join(90)
        assert not load.transport_errors, f"connections failed: {load.transport_errors[:3]}"
        bad = [(status, body) for _, status, _, body in load.answers if status not in (200, 503)]
        assert not bad, f"answers other than 200 and 503: {bad[:3]}"
        for _, status, headers, body in load.answers:
            if status == 503:
                assert headers.get("retry-after"), headers
                assert body["error"]["name"] == "ServiceUnavailableError", body
                assert body["response"] == {"statusCode": 503}, body
                assert "sql" not in str(body).lower() and "asyncpg" not in str(body).lower(), body
        accepted = [item["id"] for _, status, _, body in load.answers if status == 200 for item in body]
        assert len(accepted) >= 40
    stored = asyncio.run(_stored(private_postgres.dsn.rsplit("/", 1)[0] + f"/{prefix}notifications", accepted))
    missing = set(accepted) - stored
    assert not missing, f"{len(missing)} of {len(accepted)} accepted notifications were lost"
