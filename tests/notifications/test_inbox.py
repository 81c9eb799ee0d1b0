"""Spec section 16, store statements 26-57, shown over HTTP on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from tests.notifications.conftest import BROADCAST, ORIGIN, SECOND_SERVICE_TOKEN, Api, user

ME = "user:default/mock"
OTHER = "user:default/jane"


def titles(body: dict) -> list[str]:
    """Titles of a list answer, in order."""
    return [item["payload"]["title"] for item in body["notifications"]]


async def test_round_trip_of_every_field(api: Api) -> None:
    """26, 27, 50: a notification and a broadcast round-trip every payload field (and metadata)."""
    payload = {
        "title": "t",
        "description": "d",
        "topic": "tp",
        "link": "https://x.test/a",
        "severity": "high",
        "icon": "docs",
        "metadata": {"backstage.io/body.markdown": "**hi**"},
    }
    [own] = await api.send_ok(user("mock"), **payload)
    [shared] = await api.send_ok(BROADCAST, **payload)
    for created, expected_user in ((own, ME), (shared, None)):
        got = (await api.get(ME, f"/notifications/{created['id']}")).json()
        assert got["user"] == expected_user
        assert got["origin"] == ORIGIN
        assert got["payload"] == {**payload, "scope": None}


async def test_list_visibility_and_default_order(api: Api) -> None:
    """28, 29: own notifications and broadcasts, newest first; never other users'; broadcasts user null."""
    await api.send_ok(user("mock"), title="one")
    [shared] = await api.send_ok(BROADCAST, title="two")
    await api.send_ok(user("jane"), title="not mine")
    await api.send_ok(user("mock"), title="three")
    await api.update(ME, [shared["id"]], read=True)  # a status row exists now
    body = await api.list(ME)
    assert titles(body) == ["three", "two", "one"]
    assert [item["user"] for item in body["notifications"]] == [ME, None, ME]


async def test_read_filter_and_per_user_broadcast_state(api: Api) -> None:
    """30-33: read=true / read=false / no filter; a broadcast read by one user stays unread for another."""
    [read_own] = await api.send_ok(user("mock"), title="read own")
    await api.send_ok(user("mock"), title="unread own")
    [read_shared] = await api.send_ok(BROADCAST, title="read shared")
    await api.send_ok(BROADCAST, title="unread shared")
    await api.update(ME, [read_own["id"], read_shared["id"]], read=True)
    assert sorted(titles(await api.list(ME, read="true"))) == ["read own", "read shared"]
    assert sorted(titles(await api.list(ME, read="false"))) == ["unread own", "unread shared"]
    assert len(titles(await api.list(ME))) == 4
    assert (await api.get(ME, "/notifications", read="maybe")).status_code == 400  # strict, as Backstage
    other = await api.list(OTHER, read="false")
    assert sorted(titles(other)) == ["read shared", "unread shared"]


async def test_search_created_after_topic(api: Api) -> None:
    """34-36: search (case-insensitive, title or description), createdAfter, topic."""
    await api.send_ok(user("mock"), title="Please FIND ME now")
    await api.send_ok(user("mock"), title="x", description="you can find me here")
    await api.send_ok(user("jane"), title="find me too")
    await api.send_ok(user("mock"), title="exact topic", topic="the-topic")
    assert sorted(titles(await api.list(ME, search="find me"))) == ["Please FIND ME now", "x"]
    assert titles(await api.list(ME, topic="the-topic")) == ["exact topic"]
    engine = await api.database_engine()
    async with engine.begin() as conn:  # make one notification old
        await conn.execute(
            sa.text("UPDATE notification SET created = :old WHERE title = 'x'"),
            {"old": datetime.now(UTC) - timedelta(hours=1)},
        )
    recent = (datetime.now(UTC) - timedelta(minutes=5)).isoformat().replace("+00:00", "Z")
    assert "x" not in titles(await api.list(ME, createdAfter=recent))
    assert len(titles(await api.list(ME, createdAfter=recent))) == 2


async def test_minimum_severity(api: Api) -> None:
    """37-40: minimumSeverity keeps that level and more severe ones; unspecified counts as normal."""
    for severity in ("critical", "high", "normal", "low"):
        await api.send_ok(user("mock"), title=severity, severity=severity)
    await api.send_ok(user("mock"), title="unspecified")
    assert sorted(titles(await api.list(ME, minimumSeverity="normal"))) == ["critical", "high", "normal", "unspecified"]
    assert titles(await api.list(ME, minimumSeverity="critical")) == ["critical"]
    assert sorted(titles(await api.list(ME, minimumSeverity="high"))) == ["critical", "high"]
    assert len(titles(await api.list(ME, minimumSeverity="low"))) == 5
    for bogus in ("bogus", "HIGH"):  # the exact enum only, as Backstage's validator
        assert (await api.get(ME, "/notifications", minimumSeverity=bogus)).status_code == 400


async def test_paging_and_sorting(api: Api) -> None:
    """41-44: no implicit paging; limit/offset pages; limit 0 is empty; created/topic/origin sort both ways."""
    for index in range(7):
        await api.send_ok(user("mock"), title=f"n{index}", topic=f"topic-{index % 3}")
    assert titles(await api.list(ME)) == [f"n{index}" for index in range(6, -1, -1)]
    assert titles(await api.list(ME, limit=3, offset=0)) == ["n6", "n5", "n4"]
    assert titles(await api.list(ME, limit=3, offset=3)) == ["n3", "n2", "n1"]
    assert (await api.list(ME, limit=0))["notifications"] == []
    assert titles(await api.list(ME, orderField="created,asc", limit=2, offset=1)) == ["n1", "n2"]
    assert titles(await api.list(ME, orderField=["topic,asc", "created,asc"], limit=3)) == ["n0", "n3", "n6"]
    assert titles(await api.list(ME, orderField=["topic,desc", "created,desc"], limit=2)) == ["n5", "n2"]
    await api.send(user("mock"), token=SECOND_SERVICE_TOKEN)  # disabled by config: stays out
    await api.post(
        ME, "/settings", {"channels": [{"id": "Web", "origins": [{"id": "test-service2", "enabled": True}]}]}
    )
    await api.send(user("mock"), token=SECOND_SERVICE_TOKEN, title="from 2")
    body = await api.list(ME, orderField="origin,desc", limit=1)
    assert titles(body) == ["from 2"]
    assert titles(await api.list(ME, orderField=["origin,asc", "created,desc"], limit=1)) == ["n6"]


async def test_status_counts(api: Api) -> None:
    """45: read 2 / unread 2 across own rows and broadcasts, ignoring other users."""
    items = [(await api.send_ok(user("mock"), title=f"u{index}"))[0] for index in range(2)]
    shared = [(await api.send_ok(BROADCAST, title=f"b{index}"))[0] for index in range(2)]
    await api.send_ok(user("jane"))
    await api.update(ME, [items[0]["id"], shared[0]["id"]], read=True)
    assert (await api.get(ME, "/status")).json() == {"unread": 2, "read": 2}
    assert (await api.get(OTHER, "/status")).json() == {"unread": 3, "read": 0}


async def test_scoped_broadcast_renotify(api: Api) -> None:
    """47, 49: a scoped broadcast is updated in place, keeps its id and each user's read/saved marks."""
    [first] = await api.send_ok(BROADCAST, title="old", scope="maintenance-1")
    await api.update(ME, [first["id"]], read=True, saved=True)
    [second] = await api.send_ok(BROADCAST, title="new", scope="maintenance-1")
    assert second["id"] == first["id"] and second["updated"]
    got = (await api.get(ME, f"/{first['id']}")).json()
    assert got["payload"]["title"] == "new" and got["read"] is not None and got["saved"] is not None
    assert (await api.list(ME))["totalCount"] == 1


async def test_scoped_user_renotify_restores(api: Api) -> None:
    """46, 48: (user, scope, origin) finds the row; re-notify keeps id, replaces title and severity, read null."""
    [first] = await api.send_ok(user("mock"), title="first", scope="s", severity="low")
    await api.update(ME, [first["id"]], read=True)
    [second] = await api.send_ok(user("mock"), title="second", scope="s", severity="critical")
    assert second["id"] == first["id"]
    assert second["payload"]["title"] == "second" and second["payload"]["severity"] == "critical"
    assert second["read"] is None


async def test_mark_read_unread_saved_unsaved(api: Api) -> None:
    """51, 52: markRead/markUnread and markSaved/markUnsaved for own rows and broadcasts."""
    [own] = await api.send_ok(user("mock"))
    [shared] = await api.send_ok(BROADCAST)
    ids = [own["id"], shared["id"]]
    assert all(item["read"] for item in await api.update(ME, ids, read=True))
    assert all(item["read"] is None for item in await api.update(ME, ids, read=False))
    assert all(item["saved"] for item in await api.update(ME, ids, saved=True))
    assert all(item["read"] is None for item in await api.update(ME, ids, saved=True))  # only saved changed
    assert all(item["saved"] is None for item in await api.update(ME, ids, saved=False))
    assert len(titles(await api.list(ME, saved="false"))) == 2


async def test_settings_round_trip(api: Api) -> None:
    """53: saved settings read back as the same structure, including empty topic lists."""
    await api.send_ok(user("mock"), topic="a")
    body = {
        "channels": [
            {
                "id": "Web",
                "origins": [
                    {"id": ORIGIN, "enabled": True, "topics": [{"id": "a", "enabled": False}]},
                    {"id": "test-service2", "enabled": False, "topics": []},
                ],
            }
        ]
    }
    response = await api.post(ME, "/settings", body)
    assert response.json() == body
    assert (await api.get(ME, "/settings")).json() == body


async def test_topics_statements(api: Api) -> None:
    """54-56: distinct topics of own rows and broadcasts, no nulls, search and minimumSeverity honoured."""
    await api.send_ok(user("mock"), topic="a", title="find this", severity="critical")
    await api.send_ok(user("mock"), topic="a")
    await api.send_ok(user("mock"))
    await api.send_ok(BROADCAST, topic="b")
    await api.send_ok(user("jane"), topic="c")
    assert (await api.get(ME, "/topics")).json() == {"topics": ["a", "b"]}
    assert (await api.get(ME, "/topics", search="find this")).json() == {"topics": ["a"]}
    assert (await api.get(ME, "/topics", minimumSeverity="critical")).json() == {"topics": ["a"]}
