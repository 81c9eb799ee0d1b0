"""``notifications.limits`` and the robustness of reads: bad sizes are 400s, stored rows never break a list.

Each test runs over HTTP against a real host, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import pytest
import sqlalchemy as sa

from host.testing import eventually
from tests.conftest import start_host
from tests.notifications.conftest import BROADCAST, Api, capture_signals, notifications_config, user

JANE = "user:default/jane"


def _nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


@pytest.fixture
async def limited(db_kind: str) -> AsyncIterator[Api]:
    """A host with small notifications limits and room for big bodies."""
    config = notifications_config(
        limits={
            "maxDescriptionLength": 10,
            "maxLinkLength": 30,
            "maxMetadataBytes": 200,
            "maxUpdateIds": 50000,
            "maxSearchLength": 20,
        }
    )
    config["backend"]["limits"] = {"maxBodyBytes": 4 * 1024 * 1024, "maxHeaderBytes": 256 * 1024}
    async with start_host(db_kind, config=config) as handle:
        yield Api(handle)


async def test_deep_metadata_is_refused_and_lists_keep_working(api: Api) -> None:
    response = await api.send(BROADCAST, metadata=_nested(256))
    assert response.status_code == 400
    assert response.json()["error"] == {
        "name": "InputError",
        "message": "request/body/payload/metadata must NOT be nested more than 32 levels deep",
    }
    assert await api.count_rows("broadcast") == 0
    response = await api.send(user("jane"), metadata=_nested(256))
    assert response.status_code == 400
    assert await api.count_rows("notification") == 0
    assert (await api.list(JANE))["totalCount"] == 0
    # at the limit it is stored and listed
    await api.send_ok(user("jane"), metadata=_nested(32))
    assert (await api.list(JANE))["notifications"][0]["payload"]["metadata"] == _nested(32)


_CREATED = datetime(2026, 1, 1)


async def _plant(api: Api, metadata_json: str, title: str) -> None:
    """Insert a notification for jane directly, with ``metadata_json`` as the stored JSON text."""
    engine = await api.database_engine()
    cast = "CAST(:m AS json)" if engine.dialect.name == "postgresql" else ":m"
    async with engine.begin() as conn:
        await conn.execute(
            sa.text(
                'INSERT INTO notification (id, title, severity, origin, metadata, created, "user") '
                f"VALUES (:id, :title, 'normal', 'planted', {cast}, :created, :user)"
            ),
            {"id": str(uuid.uuid4()), "title": title, "m": metadata_json, "created": _CREATED, "user": JANE},
        )


async def test_pathological_stored_metadata_does_not_break_reads(api: Api) -> None:
    """Rows stored before the limits (or by hand): too deep to send back, or too deep to decode at all."""
    await _plant(api, json.dumps(_nested(300)), "deep")  # decodes, but no JSON encoder writes it back
    await _plant(api, "[" * 3000 + "]" * 3000, "deeper")  # no JSON decoder reads it
    await _plant(api, json.dumps({"fine": True}), "fine")
    listed = await api.list(JANE)
    assert listed["totalCount"] == 3
    by_title = {item["payload"]["title"]: item["payload"] for item in listed["notifications"]}
    assert "metadata" not in by_title["deep"] and "metadata" not in by_title["deeper"]
    assert by_title["fine"]["metadata"] == {"fine": True}
    for item in listed["notifications"]:
        assert (await api.get(JANE, f"/{item['id']}")).status_code == 200


async def test_field_sizes_are_bounded(limited: Api) -> None:
    api = limited
    cases = [
        ({"description": "x" * 11}, "request/body/payload/description must NOT have more than 10 characters"),
        (
            {"link": "https://example.com/" + "x" * 20},
            "request/body/payload/link must NOT have more than 30 characters",
        ),
        ({"metadata": {"k": "x" * 300}}, "request/body/payload/metadata must NOT be larger than 200 bytes"),
        ({"title": "x" * 256}, "request/body/payload/title must NOT have more than 255 characters"),
    ]
    for payload, message in cases:
        response = await api.send(BROADCAST, **payload)
        assert response.status_code == 400, payload
        assert response.json()["error"]["message"] == message
    assert await api.count_rows("broadcast") == 0
    await api.send_ok(BROADCAST, description="x" * 10, link="https://example.com/x", metadata={"k": "v"})


async def test_update_with_40000_ids(limited: Api) -> None:
    """Bind-parameter limits (PostgreSQL 32767, SQLite 32766) do not apply: the ids are chunked."""
    api = limited
    created = await api.send_ok(user("jane"))
    broadcast = (await api.send_ok(BROADCAST))[0]
    seen = await capture_signals(api.handle)
    ids = [str(uuid.uuid4()) for _ in range(40000)]
    ids[1234] = created[0]["id"]
    ids[39000] = broadcast["id"]
    updated = await api.update(JANE, ids, read=True)
    assert {item["id"] for item in updated} == {created[0]["id"], broadcast["id"]}
    assert all(item["read"] for item in updated)

    # the ids are republished in bounded signals, not as one 1.5 MB event
    def read_signals() -> list[dict[str, Any]]:
        return [s for s in seen if s["message"]["action"] == "notification_read"]

    await eventually(lambda: len(read_signals()) == 80)
    signals = read_signals()
    assert all(len(s["message"]["notification_ids"]) <= 500 for s in signals)
    assert sum(len(s["message"]["notification_ids"]) for s in signals) == 40000


async def test_update_ids_count_is_bounded(api: Api) -> None:
    config = notifications_config(limits={"maxUpdateIds": 100})
    async with start_host(api.handle.db, config=config) as handle:
        small = Api(handle)
        response = await small.post(JANE, "/update", {"ids": [str(uuid.uuid4()) for _ in range(101)], "read": True})
        assert response.status_code == 400
        assert response.json()["error"] == {
            "name": "InputError",
            "message": "request/body/ids must NOT have more than 100 items",
        }
        await small.update(JANE, [str(uuid.uuid4()) for _ in range(100)], read=True)


@pytest.mark.parametrize("bad", ["o" * 256, "origin\x00"])
async def test_settings_ids_are_bounded(api: Api, bad: str) -> None:
    for origins in (
        [{"id": bad, "enabled": False}],
        [{"id": "fine", "enabled": True, "topics": [{"id": bad, "enabled": False}]}],
    ):
        response = await api.post(JANE, "/settings", {"channels": [{"id": "Web", "origins": origins}]})
        assert response.status_code == 400, response.text
        assert response.json()["error"]["name"] == "InputError"
    ok = await api.post(
        JANE, "/settings", {"channels": [{"id": "Web", "origins": [{"id": "o" * 255, "enabled": False}]}]}
    )
    assert ok.status_code == 200


async def test_search_length_is_bounded(api: Api, limited: Api) -> None:
    response = await limited.get(JANE, "/notifications", search="s" * 21)
    assert response.status_code == 400
    assert response.json()["error"]["message"] == "Invalid search, must NOT have more than 20 characters"
    assert (await limited.get(JANE, "/topics", search="s" * 21)).status_code == 400
    assert (await limited.get(JANE, "/notifications", search="s" * 20)).status_code == 200
    # SQLite's "LIKE or GLOB pattern too complex" (over 50,000 bytes) is never reached
    assert (await limited.get(JANE, "/notifications", search="s" * 60000)).status_code == 400
    # default limit (1000); a search longer than the header limit is refused by the server (431)
    assert (await api.get(JANE, "/notifications", search="%_" * 600)).status_code == 400
    assert (await api.get(JANE, "/notifications", search="s" * 20000)).status_code == 431
    assert (await api.get(JANE, "/notifications", search="%_" * 400)).status_code == 200


async def test_limits_config_is_checked(tmp_path: Any) -> None:
    from host.config import Config
    from plugin_notifications.limits import NotificationLimits

    with pytest.raises(ValueError, match="'notifications.limits.maxUpdateIds': Input should be greater than 0"):
        NotificationLimits.from_config(Config({"notifications": {"limits": {"maxUpdateIds": 0}}}))
    assert NotificationLimits.from_config(Config({})).max_update_ids == 10000
