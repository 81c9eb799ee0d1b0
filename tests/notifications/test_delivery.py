"""Recipients (60-63), retention (57-59), fan-out, isolation between users, and the notification service."""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from host import ServiceUnavailableError, core_services, create_backend_plugin
from host.config import deep_merge
from host.testing import eventually
from plugin_notifications import NotificationSendError, notification_service_ref
from plugin_notifications.service import NotificationService
from tests.conftest import start_host
from tests.notifications.conftest import (
    BROADCAST,
    ORG,
    Api,
    notifications_config,
    remote_notification_service,
    user,
)

WRITE = re.compile(
    r"\s*(INSERT INTO|UPDATE|DELETE FROM) (notification|broadcast|broadcast_user_status|user_settings)\b"
)
JANE, JOHN, SUB, MOCK = (f"user:default/{name}" for name in ("jane", "john", "sub", "mock"))


def recipients(items: list[dict[str, Any]]) -> list[str]:
    """Sorted users of a create answer."""
    return sorted(item["user"] for item in items)


# -- recipients (60-63) ----------------------------------------------------------------------


async def test_user_refs_need_no_catalog_entry(api: Api) -> None:
    """60: user refs are taken as they are (even unknown ones); excluded users are removed."""
    items = await api.send_ok({"type": "entity", "entityRef": ["user:default/ghost", JANE], "excludeEntityRef": JANE})
    assert recipients(items) == ["user:default/ghost"]


async def test_group_resolves_members_and_child_groups(api: Api) -> None:
    """61: a group gives its members plus members of child groups, minus excluded users."""
    assert recipients(await api.send_ok(user("group:default/team"))) == [JANE, JOHN, SUB]
    items = await api.send_ok({"type": "entity", "entityRef": "group:default/team", "excludeEntityRef": SUB})
    assert recipients(items) == [JANE, JOHN]


async def test_owned_entities_resolve_to_owners(api: Api) -> None:
    """62, 63: a user-owned component gives that user; a group-owned one its members; excluding the owner leaves []."""
    assert recipients(await api.send_ok(user("component:default/janes-service"))) == [JANE]
    assert recipients(await api.send_ok(user("component:default/team-service"))) == [JANE, JOHN, SUB]
    excluded = {"type": "entity", "entityRef": "component:default/janes-service", "excludeEntityRef": JANE}
    assert await api.send_ok(excluded) == []


# -- retention (57-59) -------------------------------------------------------------------------


async def test_cleaner_deletes_old_notifications(db_kind: str) -> None:
    """57, 58: the notification-cleaner task is scheduled and deletes what is older than the retention."""
    async with start_host(db_kind, config=notifications_config(retention={"days": 5})) as handle:
        api = Api(handle)
        [old] = await api.send_ok(user("mock"), title="old")
        [old_shared] = await api.send_ok(BROADCAST, title="old broadcast")
        await api.update(MOCK, [old_shared["id"]], read=True)
        await api.send_ok(user("mock"), title="new")
        engine = await api.database_engine()
        ten_days_ago = datetime.now(UTC) - timedelta(days=10)
        async with engine.begin() as conn:
            for table in ("notification", "broadcast"):
                await conn.execute(
                    sa.text(f"UPDATE {table} SET created = :at WHERE title LIKE 'old%'"), {"at": ten_days_ago}
                )
        scheduler = await handle.backend.get_service(core_services.scheduler, "notifications")
        assert {"id": "notification-cleaner", "scope": "global"} in scheduler.get_scheduled_tasks()
        await scheduler.trigger_task("notification-cleaner")

        async def remaining() -> list[str]:
            return [item["payload"]["title"] for item in (await api.list(MOCK))["notifications"]]

        deadline = time.monotonic() + 15
        while await remaining() != ["new"] and time.monotonic() < deadline:
            await eventually(lambda: True)
        assert await remaining() == ["new"]
        assert await api.count_rows("broadcast_user_status") == 0  # cascaded
        assert (await api.get(MOCK, f"/{old['id']}")).status_code == 404


async def test_retention_false_disables_the_cleaner() -> None:
    """59: notifications.retention false schedules nothing and says so in the log."""
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    logging.getLogger("greenroom").addHandler(handler)
    try:
        config = notifications_config(retention=False)
        config["backend"]["logger"] = {"level": "info"}
        async with start_host("sqlite", config=config) as handle:
            scheduler = await handle.backend.get_service(core_services.scheduler, "notifications")
            assert all(task["id"] != "notification-cleaner" for task in scheduler.get_scheduled_tasks())
    finally:
        logging.getLogger("greenroom").removeHandler(handler)
    assert any(
        "Notification retention is disabled, skipping notification cleaner task" in record.getMessage()
        for record in records
    )


# -- fan-out -----------------------------------------------------------------------------------


def write_big_group(directory: Path, size: int) -> Path:
    """A catalog file with group:default/everyone of ``size`` users."""
    names = [f"u{index:04d}" for index in range(size)]
    documents = [
        "apiVersion: backstage.io/v1alpha1\nkind: Group\nmetadata:\n  name: everyone\nspec:\n"
        f"  type: team\n  children: []\n  members: [{', '.join(names)}]\n"
    ]
    documents += [
        f"apiVersion: backstage.io/v1alpha1\nkind: User\nmetadata:\n  name: {name}\nspec: {{}}\n" for name in names
    ]
    path = directory / "everyone.yaml"
    path.write_text("---\n".join(documents))
    return path


async def test_fan_out_to_a_thousand_users(db_kind: str, tmp_path: Path) -> None:
    """One POST to a 1,000-user group stores 1,000 rows in bulk; every member sees exactly theirs."""
    config = notifications_config()
    config["catalog"]["locations"].append({"type": "file", "target": str(write_big_group(tmp_path, 1000))})
    async with start_host(db_kind, config=config) as handle:
        api = Api(handle)
        engine = await api.database_engine()
        statements: list[str] = []

        def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
            if WRITE.match(statement):
                statements.append(statement)

        sa.event.listen(engine.sync_engine, "before_cursor_execute", count)
        try:
            items = await api.send_ok(user("group:default/everyone"), title="all hands", scope="town-hall")
            assert len(items) == 1000
            assert len(statements) <= 3, statements
            statements.clear()
            again = await api.send_ok(user("group:default/everyone"), title="all hands (moved)", scope="town-hall")
            assert len(statements) <= 3
        finally:
            sa.event.remove(engine.sync_engine, "before_cursor_execute", count)
        assert {item["id"] for item in again} == {item["id"] for item in items}
        assert await api.count_rows() == 1000
        for name in ("u0000", "u0999"):
            body = await api.list(f"user:default/{name}")
            assert body["totalCount"] == 1
            assert body["notifications"][0]["payload"]["title"] == "all hands (moved)"


async def test_unscoped_fan_out_keeps_every_field(db_kind: str, tmp_path: Path) -> None:
    """The bulk path for large unscoped sends (COPY on PostgreSQL) stores every payload field."""
    config = notifications_config()
    config["catalog"]["locations"].append({"type": "file", "target": str(write_big_group(tmp_path, 300))})
    async with start_host(db_kind, config=config) as handle:
        api = Api(handle)
        items = await api.send_ok(
            user("group:default/everyone"),
            title="release",
            description="v2 is out",
            link="/docs",
            topic="releases",
            severity="high",
            icon="rocket",
            metadata={"version": 2, "tags": ["a"]},
        )
        assert len(items) == 300
        ids = [item["id"] for item in items]
        assert len(set(ids)) == 300
        assert all(str(uuid.UUID(i)) == i and uuid.UUID(i).version == 4 for i in ids)
        assert await api.count_rows() == 300
        body = await api.list("user:default/u0299")
        assert body["totalCount"] == 1
        stored = body["notifications"][0]
        assert stored["id"] == next(i["id"] for i in items if i["user"] == "user:default/u0299")
        assert stored["payload"] == {
            "title": "release",
            "description": "v2 is out",
            "link": "/docs",
            "topic": "releases",
            "severity": "high",
            "scope": None,
            "icon": "rocket",
            "metadata": {"version": 2, "tags": ["a"]},
        }
        assert stored["read"] is None and stored["created"] == items[0]["created"]


# -- isolation between users -----------------------------------------------------------------------


async def test_users_cannot_see_or_change_each_others_notifications(api: Api) -> None:
    """Another user's id gives 404, is ignored by update, and never shows up in lists or counts."""
    [janes] = await api.send_ok(user("jane"), title="for jane only", topic="private")
    assert (await api.get(MOCK, f"/{janes['id']}")).status_code == 404
    assert (await api.get(MOCK, f"/notifications/{janes['id']}")).status_code == 404
    assert await api.update(MOCK, [janes["id"]], read=True, saved=True) == []
    got = (await api.get(JANE, f"/{janes['id']}")).json()
    assert got["read"] is None and got["saved"] is None
    assert (await api.list(MOCK, search="jane"))["totalCount"] == 0
    assert (await api.get(MOCK, "/status")).json() == {"unread": 0, "read": 0}
    assert (await api.get(MOCK, "/topics")).json() == {"topics": []}
    assert (await api.get(MOCK, "/settings")).json()["channels"][0]["origins"] == [
        {"id": "test-service2", "enabled": False, "topics": []}
    ]


# -- notificationService ---------------------------------------------------------------------------


def _sender_plugin(sent: dict[str, Any]) -> Any:
    """A plugin that sends a notification through notification_service_ref during init."""

    def register(reg: Any) -> None:
        async def init(notifications: NotificationService) -> None:
            sent["service"] = notifications
            await notifications.send(recipients={"type": "entity", "entityRef": JANE}, payload={"title": "from init"})

        reg.register_init(deps={"notifications": notification_service_ref}, init=init)

    return create_backend_plugin("sender", register)


async def test_service_in_process(db_kind: str) -> None:
    """Another plugin sends in-process with origin plugin:<id>, even while notifications is still starting."""
    sent: dict[str, Any] = {}
    async with start_host(db_kind, config=notifications_config(), features=[_sender_plugin(sent)]) as handle:
        api = Api(handle)
        [item] = (await api.list(JANE))["notifications"]
        assert item["origin"] == "plugin:sender"
        assert item["payload"]["title"] == "from init"
        with pytest.raises(Exception) as raised:
            await sent["service"].send(recipients={"type": "broadcast"}, payload={})
        assert "request/body/payload must have required property 'title'" in str(raised.value)


async def test_service_fails_fast_when_notifications_failed_to_start() -> None:
    """A sender learns at once that the notifications plugin failed (it used to wait 30 s)."""

    outcome: dict[str, Any] = {}

    def register_sender(reg: Any) -> None:
        async def init(notifications: NotificationService) -> None:
            started = time.monotonic()
            try:
                await notifications.send(recipients={"type": "broadcast"}, payload={"title": "lost"})
            except ServiceUnavailableError as error:
                outcome["error"] = str(error)
            outcome["seconds"] = time.monotonic() - started

        reg.register_init(deps={"notifications": notification_service_ref}, init=init)

    config = deep_merge(
        notifications_config(retention="not a duration"),  # the notifications init fails
        {"backend": {"startup": {"plugins": {"notifications": {"onPluginBootFailure": "continue"}}}}},
    )
    async with start_host(config=config, features=[create_backend_plugin("sender", register_sender)]):
        assert outcome["error"].startswith("The notifications plugin failed to start: "), outcome
        assert "retention" in outcome["error"]
        assert outcome["seconds"] < 5


@pytest.fixture
async def remote(db_kind: str) -> AsyncIterator[Any]:
    """A host running notifications, and the auth service of a plugin on it acting as a remote caller."""
    async with start_host(db_kind, config=notifications_config()) as handle:
        yield handle


async def test_service_over_http(remote: Any) -> None:
    """Without a local notifications plugin the service POSTs with a plugin token via discovery."""
    service = await remote_notification_service(remote)
    await service.send(recipients={"type": "entity", "entityRef": "group:default/mock"}, payload={"title": "remote"})
    [item] = (await Api(remote).list(MOCK))["notifications"]
    assert item["origin"] == "plugin:scaffolder"
    with pytest.raises(NotificationSendError, match="Request failed with status 400"):
        await service.send(recipients={"type": "broadcast"}, payload={"link": "ftp://x"})


async def test_catalog_file_path_is_shared() -> None:
    """The shared test catalog exists (guards against fixture moves)."""
    assert ORG.exists()
