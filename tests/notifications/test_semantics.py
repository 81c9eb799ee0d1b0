"""Scope re-sends, tie order, non-ASCII search, and the places where Backstage has a bug.

Each test runs over HTTP against a real host, on SQLite and on PostgreSQL. The expected behaviour
is what a live Backstage (notifications-backend 0.6.11) does, except where docs/notifications.md
says why Greenroom does what users expect instead.
"""

from __future__ import annotations

from typing import Any

from tests.notifications.conftest import BROADCAST, Api, user

MOCK = "user:default/mock"
JANE = "user:default/jane"
SCOPED = {
    "description": "first description",
    "link": "/first",
    "topic": "builds",
    "icon": "rocket",
    "metadata": {"run": 1},
    "severity": "high",
}


async def test_scope_resend_keeps_omitted_fields(api: Api) -> None:
    """Only what is sent replaces; read resets, saved stays, updated is set, id and created are kept."""
    [first] = await api.send_ok(user("mock"), title="first", scope="deploy", **SCOPED)
    await api.update(MOCK, [first["id"]], read=True, saved=True)
    [again] = await api.send_ok(user("mock"), title="second", scope="deploy")
    assert (again["id"], again["created"]) == (first["id"], first["created"])
    assert again["payload"] == {
        "title": "second",
        "description": "first description",
        "link": "/first",
        "topic": "builds",
        "icon": "rocket",
        "metadata": {"run": 1},
        "severity": "normal",
        "scope": "deploy",
    }
    assert again["read"] is None and again["saved"] is not None and again["updated"] is not None
    [stored] = (await api.list(MOCK))["notifications"]
    assert stored == again
    [third] = await api.send_ok(user("mock"), title="third", scope="deploy", description="new", topic="t2")
    assert (third["payload"]["description"], third["payload"]["topic"], third["payload"]["link"]) == (
        "new",
        "t2",
        "/first",
    )
    assert await api.count_rows() == 1


async def test_scoped_broadcast_resend_keeps_each_users_state(api: Api) -> None:
    """One row; each user's read and saved marks stay; the answer is the stored row (not a fresh id)."""
    [first] = await api.send_ok(BROADCAST, title="first", scope="outage", description="kept")
    await api.update(MOCK, [first["id"]], read=True)
    await api.update(JANE, [first["id"]], saved=True)
    [again] = await api.send_ok(BROADCAST, title="second", scope="outage")
    assert (again["id"], again["created"], again["user"]) == (first["id"], first["created"], None)
    assert again["updated"] is not None
    assert again["payload"]["title"] == "second" and again["payload"]["description"] == "kept"
    assert "read" not in again and "saved" not in again
    [mine] = (await api.list(MOCK))["notifications"]
    [janes] = (await api.list(JANE))["notifications"]
    assert (mine["id"], mine["payload"]["title"]) == (first["id"], "second")
    assert mine["read"] is not None and mine["saved"] is None
    assert janes["read"] is None and janes["saved"] is not None
    assert await api.count_rows("broadcast") == 1


async def test_equal_sort_keys_keep_insertion_order(api: Api) -> None:
    """Ties come back in insertion order, own rows before broadcasts, whatever the direction."""
    sent: list[tuple[str, str]] = []
    for index in range(9):
        target: Any = BROADCAST if index % 3 == 1 else user("mock")
        [item] = await api.send_ok(target, title=f"n{index}", topic="same", severity="normal")
        sent.append(("broadcast" if item["user"] is None else "own", item["payload"]["title"]))
    expected = [title for kind, title in sent if kind == "own"] + [title for kind, title in sent if kind == "broadcast"]
    for order in ("topic", "topic,desc", "severity,asc", "origin,desc"):
        body = await api.list(MOCK, orderField=order)
        assert [item["payload"]["title"] for item in body["notifications"]] == expected, order
    paged = [
        item["payload"]["title"]
        for offset in range(0, 9, 2)
        for item in (await api.list(MOCK, orderField="topic", limit=2, offset=offset))["notifications"]
    ]
    assert paged == expected


async def test_search_is_case_insensitive_for_every_letter(api: Api) -> None:
    """``ÜBER`` finds ``über`` and ``äpfel`` finds ``ÄPFEL`` on SQLite as on PostgreSQL."""
    await api.send_ok(user("mock"), title="über alles")
    await api.send_ok(user("mock"), title="Plain", description="GRÜNE ÄPFEL")
    await api.send_ok(BROADCAST, title="Ωmega news")
    assert [item["payload"]["title"] for item in (await api.list(MOCK, search="ÜBER"))["notifications"]] == [
        "über alles"
    ]
    assert (await api.list(MOCK, search="äpfel"))["totalCount"] == 1
    assert (await api.list(MOCK, search="ωMEGA"))["totalCount"] == 1
    topics = await api.get(MOCK, "/topics", search="ÜBER")
    assert topics.status_code == 200


async def test_empty_settings_restore_the_defaults(api: Api) -> None:
    """``{"channels": []}`` forgets the user's choices and answers the defaults (Backstage: 500)."""
    await api.send_ok(user("mock"), title="from an origin")

    def service_enabled(settings: dict[str, Any]) -> bool:
        web = next(channel for channel in settings["channels"] if channel["id"] == "Web")
        return next(origin["enabled"] for origin in web["origins"] if origin["id"] == "test-service")

    changed = {"channels": [{"id": "Web", "origins": [{"id": "test-service", "enabled": False, "topics": []}]}]}
    saved = await api.post(MOCK, "/settings", changed)
    assert saved.status_code == 200, saved.text
    assert not service_enabled(saved.json())
    response = await api.post(MOCK, "/settings", {"channels": []})
    assert response.status_code == 200, response.text
    assert response.json() == (await api.get(MOCK, "/settings")).json()
    assert service_enabled(response.json())
    assert await api.count_rows("user_settings") == 0


async def test_non_canonical_user_refs_reach_the_user(api: Api) -> None:
    """``user:guest`` and ``User:Default/Mock`` are stored canonically (Backstage stores them verbatim)."""
    items = await api.send_ok({"type": "entity", "entityRef": ["user:mock", "User:Default/Mock", "user:jane"]})
    assert sorted(item["user"] for item in items) == [JANE, MOCK]
    assert (await api.list(MOCK))["totalCount"] == 1
    assert (await api.list(JANE))["totalCount"] == 1
    excluded = await api.send_ok(
        {"type": "entity", "entityRef": ["user:default/mock", "user:default/jane"], "excludeEntityRef": "user:jane"}
    )
    assert [item["user"] for item in excluded] == [MOCK]
