"""Archive and delete (Greenroom only), over HTTP on SQLite and PostgreSQL.

Archived notifications leave the default list, the topics and ``/status``; ``archived=true``
lists them. Deleting removes a user's own notification, and a broadcast for that user only.
Nobody can archive or delete another user's notification.
"""

from __future__ import annotations

from typing import Any

from host.testing import eventually
from tests.notifications.conftest import BROADCAST, Api, capture_signals, user

ME = "user:default/mock"
OTHER = "user:default/jane"


def titles(body: dict[str, Any]) -> list[str]:
    """Titles of a list answer, in order."""
    return [item["payload"]["title"] for item in body["notifications"]]


async def test_archive_hides_from_default_list_topics_and_counts(api: Api) -> None:
    signals = await capture_signals(api.handle)
    [kept] = await api.send_ok(user("mock"), title="kept", topic="deploys")
    [archived] = await api.send_ok(user("mock"), title="archived", topic="alerts")
    [read_archived] = await api.send_ok(user("mock"), title="read archived", topic="alerts")
    [shared] = await api.send_ok(BROADCAST, title="shared")
    [shared_archived] = await api.send_ok(BROADCAST, title="shared archived")
    await api.update(ME, [read_archived["id"]], read=True)
    assert (await api.get(ME, "/status")).json() == {"unread": 4, "read": 1}

    answer = await api.update(ME, [archived["id"], read_archived["id"], shared_archived["id"]], archived=True)
    assert sorted(item["payload"]["title"] for item in answer) == ["archived", "read archived", "shared archived"]
    assert all(item["archived"].endswith("Z") for item in answer)

    # the default list (and archived=false) leaves them out; archived=true shows only them
    assert titles(await api.list(ME)) == ["shared", "kept"]
    assert titles(await api.list(ME, archived="false")) == ["shared", "kept"]
    assert (await api.list(ME))["totalCount"] == 2
    body = await api.list(ME, archived="true")
    assert titles(body) == ["shared archived", "read archived", "archived"] and body["totalCount"] == 3
    assert titles(await api.list(ME, archived="true", read="true")) == ["read archived"]
    # notifications that are not archived carry no archived field: Backstage's clients see the same shape
    assert all("archived" not in item for item in (await api.list(ME))["notifications"])
    # topics follow the same filter
    assert (await api.get(ME, "/topics")).json() == {"topics": ["deploys"]}
    assert (await api.get(ME, "/topics", archived="true")).json() == {"topics": ["alerts"]}
    # unread and read counts leave archived ones out (own and broadcast)
    assert (await api.get(ME, "/status")).json() == {"unread": 2, "read": 0}
    # an archived one is still found by id
    found = (await api.get(ME, f"/notifications/{archived['id']}")).json()
    assert found["archived"] is not None and found["payload"]["title"] == "archived"

    # the broadcast is archived for this user only
    assert titles(await api.list(OTHER)) == ["shared archived", "shared"]
    assert (await api.get(OTHER, "/status")).json() == {"unread": 2, "read": 0}

    # unarchive brings them back, read state untouched
    answer = await api.update(ME, [read_archived["id"], shared_archived["id"]], archived=False)
    assert all("archived" not in item for item in answer)
    assert titles(await api.list(ME)) == ["shared archived", "shared", "read archived", "kept"]
    assert (await api.get(ME, "/status")).json() == {"unread": 3, "read": 1}
    assert kept["id"] and shared["id"]

    def actions() -> list[dict[str, Any]]:
        return [s["message"]["action"] for s in signals if s["message"]["action"].endswith("archived")]

    await eventually(lambda: len(actions()) == 2)
    assert actions() == ["notification_archived", "notification_unarchived"]
    assert all(
        s["recipients"] == {"type": "user", "entityRef": [ME]}
        for s in signals
        if s["message"]["action"] != "new_notification"
    )

    # a scoped re-send is news: it brings an archived notification back to the inbox (and unread)
    [first] = await api.send_ok(user("mock"), title="build failed", scope="build-7")
    await api.update(ME, [first["id"]], archived=True, read=True)
    assert "build failed" not in titles(await api.list(ME))
    await api.send_ok(user("mock"), title="build failed again", scope="build-7")
    [again] = (await api.list(ME, search="build failed again"))["notifications"]
    assert again["id"] == first["id"] and again["read"] is None and "archived" not in again

    # the filter and the flag are validated as the others
    response = await api.get(ME, "/notifications", archived="yes")
    assert response.status_code == 400
    assert response.json()["error"]["message"] == (
        "request/query/archived must be equal to one of the allowed values: true, false"
    )
    response = await api.post(ME, "/notifications/update", {"ids": [], "archived": "true"})
    assert response.status_code == 400
    assert response.json()["error"]["message"] == "request/body/archived must be boolean"


async def test_delete_own_and_broadcast_for_the_caller_only(api: Api) -> None:
    signals = await capture_signals(api.handle)
    [one] = await api.send_ok(user("mock"), title="one")
    [two] = await api.send_ok(user("mock"), title="two")
    [three] = await api.send_ok(user("mock"), title="three")
    [shared] = await api.send_ok(BROADCAST, title="shared")

    response = await api.client.delete(f"/api/notifications/notifications/{one['id']}", headers=await api.headers(ME))
    assert response.status_code == 204 and response.content == b""
    # a second delete finds nothing
    response = await api.client.delete(f"/api/notifications/{one['id']}", headers=await api.headers(ME))
    assert response.status_code == 404
    assert (await api.get(ME, f"/notifications/{one['id']}")).status_code == 404

    response = await api.post(ME, "/notifications/delete", {"ids": [two["id"], shared["id"], shared["id"]]})
    assert response.status_code == 200
    assert sorted(response.json()["deleted"]) == sorted([two["id"], shared["id"]])
    assert titles(await api.list(ME)) == ["three"]
    assert titles(await api.list(ME, archived="true")) == []
    assert (await api.get(ME, "/status")).json() == {"unread": 1, "read": 0}
    assert (await api.get(ME, f"/notifications/{shared['id']}")).status_code == 404
    # a deleted broadcast cannot be marked back into view, and is not deleted twice
    assert await api.update(ME, [shared["id"]], read=True, archived=False) == []
    response = await api.post(ME, "/notifications/delete", {"ids": [shared["id"]]})
    assert response.json() == {"deleted": []}
    # everyone else still has the broadcast
    assert titles(await api.list(OTHER)) == ["shared"]
    assert (await api.get(OTHER, "/status")).json() == {"unread": 1, "read": 0}
    assert await api.count_rows("broadcast") == 1
    assert await api.count_rows("notification") == 1

    def deletions() -> list[dict[str, Any]]:
        return [s for s in signals if s.get("message", {}).get("action") == "notification_deleted"]

    await eventually(lambda: len(deletions()) == 2)
    deleted = deletions()
    assert [sorted(s["message"]["notification_ids"]) for s in deleted] == [
        [one["id"]],
        sorted([two["id"], shared["id"]]),
    ]
    assert all(s["recipients"] == {"type": "user", "entityRef": [ME]} for s in deleted)
    assert three["id"]

    # nobody archives or deletes another user's notification
    [theirs] = await api.send_ok(user("jane"), title="jane's")
    assert await api.update(ME, [theirs["id"]], archived=True) == []
    response = await api.client.delete(
        f"/api/notifications/notifications/{theirs['id']}", headers=await api.headers(ME)
    )
    assert response.status_code == 404
    assert response.json()["error"] == {"name": "NotFoundError", "message": "Not found"}
    response = await api.post(ME, "/notifications/delete", {"ids": [theirs["id"], "not-a-uuid"]})
    assert response.status_code == 200 and response.json() == {"deleted": []}
    body = await api.list(OTHER)
    assert titles(body) == ["jane's", "shared"] and all("archived" not in item for item in body["notifications"])

    # a user token, an array of ids, at most notifications.limits.maxUpdateIds of them
    response = await api.client.post("/api/notifications/notifications/delete", json={"ids": []})
    assert response.status_code == 401
    response = await api.post(ME, "/notifications/delete", {"ids": "x"})
    assert response.status_code == 400
    assert response.json()["error"]["message"] == "request/body/ids must be array"
    response = await api.post(ME, "/notifications/delete", {"ids": ["a"] * 10001})
    assert response.status_code == 400
    assert "must NOT have more than" in response.json()["error"]["message"]
