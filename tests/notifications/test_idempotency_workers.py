"""Idempotency keys across the workers of a real ``greenroom start --workers 2`` on PostgreSQL.

Every request opens a new TCP connection, so the kernel spreads them over both workers (shown
with the signals test plugin, which answers its worker's pid). Identical keyed sends, at once
and one after another, create one notification; every answer is the first one or a 409.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from host.testing import eventually
from tests.notifications.conftest import ORG
from tests.signals.test_signals_workers import greenroom_start, new_connection_client

pytestmark = pytest.mark.postgres

JANE = "user:default/jane"
BODY = {"recipients": {"type": "entity", "entityRef": JANE}, "payload": {"title": "Deploy 42 finished"}}
CONFIG = {
    "catalog": {"locations": [{"type": "file", "target": str(ORG)}]},
    "auth": {"providers": {"proxy": {"allowUnknownUsers": True}}},  # signs Jane in for the inbox check
}


async def keyed_send(http: httpx.AsyncClient, key: str) -> httpx.Response:
    return await http.post("/api/notifications", json=BODY, headers={"Idempotency-Key": f'"{key}"'})


async def both_workers_answer(http: httpx.AsyncClient) -> None:
    """Fresh connections reach both workers (the signals test plugin answers its worker's pid)."""
    body = {"recipients": {"type": "user", "entityRef": [JANE]}, "channel": "idempotency-probe", "message": {}}
    pids: set[int] = set()

    async def probe() -> bool:
        answers = await asyncio.gather(*(http.post("/api/signals-test/publish", json=body) for _ in range(8)))
        pids.update(answer.json()["pid"] for answer in answers)
        return len(pids) == 2

    await eventually(probe, timeout=20)


async def jane_titles(url: str) -> list[str]:
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        refresh = await client.get("/api/auth/proxy/refresh", headers={"x-forwarded-user": JANE})
        token = refresh.json()["backstageIdentity"]["token"]
        listing = await client.get("/api/notifications", headers={"Authorization": f"Bearer {token}"})
        assert listing.status_code == 200, listing.text
        return [item["payload"]["title"] for item in listing.json()["notifications"]]


async def test_one_send_per_key_across_two_workers() -> None:
    async with greenroom_start("postgres", workers=2, overrides=CONFIG) as url, new_connection_client(url) as http:
        await both_workers_answer(http)
        answers: list[Any] = list(await asyncio.gather(*(keyed_send(http, "deploy-42") for _ in range(12))))
        answers += [await keyed_send(http, "deploy-42") for _ in range(6)]  # after the first finished
        ok = [answer for answer in answers if answer.status_code == 200]
        assert ok and all(answer.content == ok[0].content for answer in ok)
        assert {answer.status_code for answer in answers} <= {200, 409}, [a.text for a in answers]
        assert all(answer.status_code == 200 for answer in answers[12:])
        assert await jane_titles(url) == ["Deploy 42 finished"]
        # the other body is refused by whichever worker gets it; another key sends again
        other = await http.post(
            "/api/notifications",
            json={**BODY, "payload": {"title": "other"}},
            headers={"Idempotency-Key": '"deploy-42"'},
        )
        assert other.status_code == 422, other.text
        assert (await keyed_send(http, "deploy-43")).status_code == 200
        assert await jane_titles(url) == ["Deploy 42 finished", "Deploy 42 finished"]
