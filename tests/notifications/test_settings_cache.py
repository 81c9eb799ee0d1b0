"""Settings are cached on the send path; saving them in one instance invalidates every other."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from tests.conftest import drop_pg_schemas, start_host
from tests.notifications.conftest import ORIGIN, notifications_config

ALICE = "user:default/mock"


def body(title: str) -> dict[str, object]:
    return {"recipients": {"type": "entity", "entityRef": ALICE}, "payload": {"title": title}}


@pytest.mark.postgres
async def test_saving_settings_on_one_instance_reaches_the_others(tmp_path: Path) -> None:
    prefix = f"gr_settings_cache_{uuid.uuid4().hex[:8]}_"  # unique: tests run side by side
    shared = {"prefix": prefix, "data_dir": str(tmp_path), "config": notifications_config()}
    async with start_host("postgres", **shared) as first, start_host("postgres", **shared) as second:
        # the second instance caches alice's (empty) settings while sending
        sent = await second.client.post("/api/notifications", json=body("before"), headers=second.service_headers)
        assert [n["user"] for n in sent.json()] == [ALICE]

        headers = await first.user_headers(ALICE)
        saved = await first.client.post(
            "/api/notifications/settings",
            headers=headers,
            json={"channels": [{"id": "Web", "origins": [{"id": ORIGIN, "enabled": False, "topics": []}]}]},
        )
        assert saved.status_code == 200

        for _ in range(50):  # the invalidation crosses the bus asynchronously
            response = await second.client.post(
                "/api/notifications", json=body("after"), headers=second.service_headers
            )
            if response.json() == []:
                break
            import asyncio

            await asyncio.sleep(0.05)
        assert response.json() == [], "the second instance kept delivering after the user opted out"
        listing = (await first.client.get("/api/notifications", headers=headers)).json()
        titles = {n["payload"]["title"] for n in listing["notifications"]}
        assert "before" in titles
    await drop_pg_schemas(prefix)


async def test_same_instance_applies_new_settings_immediately(db_kind: str) -> None:
    async with start_host(db_kind, config=notifications_config()) as host:
        assert (
            len((await host.client.post("/api/notifications", json=body("one"), headers=host.service_headers)).json())
            == 1
        )
        headers = await host.user_headers(ALICE)
        await host.client.post(
            "/api/notifications/settings",
            headers=headers,
            json={"channels": [{"id": "Web", "origins": [{"id": ORIGIN, "enabled": False, "topics": []}]}]},
        )
        assert (
            await host.client.post("/api/notifications", json=body("two"), headers=host.service_headers)
        ).json() == []
        await host.client.post(
            "/api/notifications/settings",
            headers=headers,
            json={"channels": [{"id": "Web", "origins": [{"id": ORIGIN, "enabled": True, "topics": []}]}]},
        )
        assert (
            len((await host.client.post("/api/notifications", json=body("three"), headers=host.service_headers)).json())
            == 1
        )
