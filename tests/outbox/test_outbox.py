"""The outbox through a real host: retries, dead-lettering, lease reclaim, the delivery log and metrics."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from host import core_services
from host.testing import eventually
from plugin_notifications.delivery import DeliveryOutcome
from plugin_notifications.tables import UtcDateTime
from tests.conftest import SERVICE_TOKEN, HostHandle, start_host
from tests.notifications.conftest import Api, user
from tests.outbox.conftest import Recorder, outbox_config, recorder_module

JANE, JOHN, SUB = "user:default/jane", "user:default/john", "user:default/sub"


async def test_fails_twice_then_one_delivery(recorder_host: HostHandle, recorder: Recorder) -> None:
    recorder.outcomes = [DeliveryOutcome.retry("503 from receiver"), DeliveryOutcome.retry("timeout")]
    api = Api(recorder_host)
    [item] = await api.send_ok(user("jane"), title="deploy")
    await eventually(lambda: recorder.delivered)
    [delivery] = recorder.delivered
    attempts = [call[0] for call in recorder.calls]
    assert [d.attempt for d in attempts] == [1, 2, 3]
    assert {d.id for d in attempts} == {delivery.id}  # the same delivery id on every attempt
    assert delivery.notification.id == item["id"] and delivery.recipients == (JANE,)
    assert delivery.notification.payload.title == "deploy"
    assert delivery.entity_refs == (JANE,)  # the send named jane herself
    log = (await api.get(JANE, f"/{item['id']}/deliveries")).json()
    [web, channel] = log["channels"]
    assert web == {**web, "channel": "Web", "status": "sent"}
    assert channel["channel"] == "recorder" and channel["status"] == "sent"
    assert channel["attempts"] == 3 and channel["lastError"] is None and channel["deliveryId"] == delivery.id


async def test_dead_after_max_attempts(recorder_host: HostHandle, recorder: Recorder) -> None:
    recorder.outcomes = [DeliveryOutcome.retry("down")] * 5
    api = Api(recorder_host)
    [item] = await api.send_ok(user("jane"))

    async def dead() -> Any:
        log = (await api.get(JANE, f"/{item['id']}/deliveries")).json()
        return log["channels"][1]["status"] == "dead" and log

    log = await eventually(dead)
    assert log["channels"][1]["attempts"] == 3 and log["channels"][1]["lastError"] == "down"
    assert len(recorder.calls) == 3 and not recorder.delivered
    metrics = (
        await recorder_host.client.get(
            "/api/notifications/delivery-metrics", headers={"Authorization": f"Bearer {SERVICE_TOKEN}"}
        )
    ).json()
    assert metrics["channels"]["recorder"] == {**metrics["channels"]["recorder"], "dead": 1, "retried": 2, "failed": 3}
    assert metrics["queueDepth"] == 0


async def test_permanent_failure_is_dead_at_once(recorder_host: HostHandle, recorder: Recorder) -> None:
    recorder.outcomes = [DeliveryOutcome.failed("410 Gone")]
    api = Api(recorder_host)
    [item] = await api.send_ok(user("jane"))

    async def status() -> Any:
        return (await api.get(JANE, f"/{item['id']}/deliveries")).json()["channels"][1]["status"] == "dead"

    await eventually(status)
    assert len(recorder.calls) == 1


async def test_group_member_log_shows_the_path_and_muted_channels(
    recorder_host: HostHandle, recorder: Recorder
) -> None:
    api = Api(recorder_host)
    muted = {"channels": [{"id": "Recorder", "origins": [{"id": "test-service", "enabled": False}]}]}
    assert (await api.post(SUB, "/settings", muted)).status_code == 200
    items = await api.send_ok({"type": "entity", "entityRef": "group:default/team"})
    by_user = {item["user"]: item for item in items}
    await eventually(lambda: len(recorder.delivered) == 2)  # jane and john; sub muted the channel
    assert sorted(d.recipients[0] for d in recorder.delivered) == [JANE, JOHN]
    # a channel sees what the send addressed: a member reached through the group is not named in it
    assert {d.entity_refs for d in recorder.delivered} == {("group:default/team",)}
    sub_log = (await api.get(SUB, f"/{by_user[SUB]['id']}/deliveries")).json()
    assert sub_log["resolution"] == [
        {"entityRef": "group:default/team", "relation": None},
        {"entityRef": "group:default/subteam", "relation": "parentOf"},
        {"entityRef": SUB, "relation": "hasMember"},
    ]
    assert [(c["channel"], c["status"], c["setting"]) for c in sub_log["channels"]] == [
        ("Web", "sent", "default"),
        ("recorder", "muted", "user origin"),
    ]
    john_log = (await api.get(JOHN, f"/{by_user[JOHN]['id']}/deliveries")).json()
    assert [step["entityRef"] for step in john_log["resolution"]] == ["group:default/team", JOHN]
    # another user cannot read it: a 404 in Backstage's error shape
    response = await api.get(JANE, f"/{by_user[SUB]['id']}/deliveries")
    assert response.status_code == 404
    assert response.json()["error"] == {"name": "NotFoundError", "message": "Not found"}
    # a service reads any, and ?user= must name the recipient
    service = {"Authorization": f"Bearer {SERVICE_TOKEN}"}
    path = f"/api/notifications/{by_user[SUB]['id']}/deliveries"
    assert (await recorder_host.client.get(path, headers=service)).json()["resolution"] == sub_log["resolution"]
    assert (await recorder_host.client.get(path, params={"user": JANE}, headers=service)).status_code == 404


async def test_send_scope_log_records_muted_users(db_kind: str) -> None:
    """A user who switched a ``send``-scope channel off is no recipient, and their log says ``muted`` and why."""
    recorder = Recorder(scope="send")
    async with start_host(db_kind, config=outbox_config(), features=[recorder_module(recorder)]) as host:
        api = Api(host)
        muted = {"channels": [{"id": "Recorder", "origins": [{"id": "test-service", "enabled": False}]}]}
        assert (await api.post(SUB, "/settings", muted)).status_code == 200
        zed = "user:default/zed"  # asked for directly, beside the group
        items = await api.send_ok({"type": "entity", "entityRef": ["group:default/team", zed]})
        by_user = {item["user"]: item for item in items}
        [delivery] = await eventually(lambda: recorder.delivered)
        assert sorted(delivery.recipients) == [JANE, JOHN, zed]
        sub_log = (await api.get(SUB, f"/{by_user[SUB]['id']}/deliveries")).json()
        assert [(c["channel"], c["status"], c["setting"], c["attempts"]) for c in sub_log["channels"]] == [
            ("Web", "sent", "default", 1),
            ("recorder", "muted", "user origin", 0),
        ]
        assert [step["entityRef"] for step in sub_log["resolution"]] == [
            "group:default/team",
            "group:default/subteam",
            SUB,
        ]
        jane_log = (await api.get(JANE, f"/{by_user[JANE]['id']}/deliveries")).json()
        assert [(c["channel"], c["status"]) for c in jane_log["channels"]] == [("Web", "sent"), ("recorder", "sent")]
        assert [step["entityRef"] for step in jane_log["resolution"]] == ["group:default/team", JANE]
        zed_log = (await api.get(zed, f"/{by_user[zed]['id']}/deliveries")).json()
        assert zed_log["resolution"] == [{"entityRef": zed, "relation": None}]


async def test_expired_lease_is_reclaimed(db_kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Rows leased by a worker that died are delivered by another once the lease expires, not before."""
    recorder = Recorder()
    storage = {"data_dir": str(tmp_path), "prefix": f"gr_{uuid.uuid4().hex[:8]}_"}
    monkeypatch.setenv("GREENROOM_TEST_KEEP_DB", "1")  # the second host reuses the first one's database
    async with start_host(
        db_kind, config=outbox_config(dispatcher=False), features=[recorder_module(recorder)], **storage
    ) as host:
        api = Api(host)
        [item] = await api.send_ok(user("jane"))
        engine = await api.database_engine()
        expires = datetime.now(UTC) + timedelta(seconds=1.5)
        o = sa.table("notification_outbox", sa.column("lease_owner"), sa.column("lease_expires", UtcDateTime))
        async with engine.begin() as conn:  # what a worker killed mid-delivery leaves behind
            await conn.execute(sa.update(o).values(lease_owner="dead-worker", lease_expires=expires))
    assert not recorder.calls
    monkeypatch.delenv("GREENROOM_TEST_KEEP_DB")
    async with start_host(db_kind, config=outbox_config(), features=[recorder_module(recorder)], **storage):
        [delivery] = await eventually(lambda: recorder.delivered)
        assert datetime.now(UTC) >= expires
        assert delivery.notification.id == item["id"] and delivery.attempt == 1


async def test_retention_purges_finished_outbox_rows(db_kind: str, recorder: Recorder) -> None:
    """The notification-cleaner task also deletes finished outbox rows and sends older than the retention."""
    config = outbox_config()
    config["notifications"]["retention"] = {"days": 5}
    async with start_host(db_kind, config=config, features=[recorder_module(recorder)]) as host:
        api = Api(host)
        await api.send_ok(user("jane"), title="old")
        await eventually(lambda: recorder.delivered)
        [fresh] = await api.send_ok(user("jane"), title="fresh")
        await eventually(lambda: len(recorder.delivered) == 2)
        engine = await api.database_engine()
        ten_days_ago = datetime.now(UTC) - timedelta(days=10)

        async def finished() -> bool:
            async with engine.connect() as conn:
                return (
                    int(await conn.scalar(sa.text("SELECT count(*) FROM notification_outbox WHERE state = 'done'")))
                    == 2
                )

        await eventually(finished)
        async with engine.begin() as conn:  # the first send is ten days old
            for table in ("notification_outbox", "notification_send"):
                column = "updated" if table == "notification_outbox" else "created"
                await conn.execute(
                    sa.text(
                        f"UPDATE {table} SET {column} = :at WHERE send_id IN "
                        "(SELECT send_id FROM notification WHERE title = 'old')"
                        if table == "notification_outbox"
                        else f"UPDATE {table} SET {column} = :at WHERE id IN "
                        "(SELECT send_id FROM notification WHERE title = 'old')"
                    ),
                    {"at": ten_days_ago},
                )
        scheduler = await host.backend.get_service(core_services.scheduler, "notifications")
        await scheduler.trigger_task("notification-cleaner")

        async def purged() -> bool:
            return await api.count_rows("notification_outbox") == 1 and await api.count_rows("notification_send") == 1

        await eventually(purged)
        log = (await api.get(JANE, f"/{fresh['id']}/deliveries")).json()
        assert log["channels"][1]["status"] == "sent"  # the fresh send's log is intact


@pytest.mark.postgres
async def test_a_send_on_one_instance_wakes_the_dispatcher_of_another() -> None:
    """Instance A only writes (dispatcher off); B, polling once a minute, delivers at once: the events bus woke it."""
    recorder = Recorder()
    prefix = f"gr_{uuid.uuid4().hex[:8]}_"
    writer = outbox_config(dispatcher=False)
    deliverer = outbox_config(pollInterval={"seconds": 60})
    async with (
        start_host("postgres", config=writer, features=[recorder_module(Recorder())], prefix=prefix) as a,
        start_host("postgres", config=deliverer, features=[recorder_module(recorder)], prefix=prefix),
    ):
        await asyncio.sleep(0.5)  # B's dispatcher has made its first (empty) round and sleeps for a minute
        started = time.monotonic()
        [item] = await Api(a).send_ok(user("jane"))
        [delivery] = await eventually(lambda: recorder.delivered, timeout=10)
        assert delivery.notification.id == item["id"]
        assert time.monotonic() - started < 10


@pytest.mark.parametrize("scope", ["recipient", "send"])
async def test_channel_off_by_default_reaches_only_the_users_who_turned_it_on(db_kind: str, scope: str) -> None:
    """``defaultSettings`` switches the channel off for the origin; one member turns it back on."""
    recorder = Recorder(scope=scope)
    off_by_default = {"channels": [{"id": "Recorder", "origins": [{"id": "test-service", "enabled": False}]}]}
    config = outbox_config()
    config["notifications"]["defaultSettings"] = off_by_default
    async with start_host(db_kind, config=config, features=[recorder_module(recorder)]) as host:
        api = Api(host)
        on = {"channels": [{"id": "Recorder", "origins": [{"id": "test-service", "enabled": True}]}]}
        assert (await api.post(JOHN, "/settings", on)).status_code == 200
        items = await api.send_ok({"type": "entity", "entityRef": "group:default/team"})
        by_user = {item["user"]: item for item in items}
        [delivery] = await eventually(lambda: recorder.delivered)
        assert delivery.recipients == (JOHN,)
        john_log = (await api.get(JOHN, f"/{by_user[JOHN]['id']}/deliveries")).json()
        assert [(c["channel"], c["status"], c["setting"]) for c in john_log["channels"]][1] == (
            "recorder",
            "sent",
            "user origin" if scope == "recipient" else "send",
        )
        for other in (JANE, SUB):
            log = (await api.get(other, f"/{by_user[other]['id']}/deliveries")).json()
            assert [(c["channel"], c["status"], c["setting"]) for c in log["channels"]][1] == (
                "recorder",
                "muted",
                "config origin",
            )


async def test_logs_of_sends_that_recorded_no_send_row(db_kind: str) -> None:
    """A send to users asked for directly, with no durable channel, stores no send row; its log is still whole."""
    async with start_host(db_kind, config=outbox_config()) as host:
        api = Api(host)
        service = {"Authorization": f"Bearer {SERVICE_TOKEN}"}
        [direct] = await api.send_ok(user("jane"))
        log = (await api.get(JANE, f"/{direct['id']}/deliveries")).json()
        assert log["resolution"] == [{"entityRef": JANE, "relation": None}]
        assert log["channels"] == [
            {
                "channel": "Web",
                "status": "sent",
                "attempts": 1,
                "lastError": None,
                "updated": direct["created"],
                "setting": "default",
            }
        ]
        # a broadcast: a service principal reads its log too
        response = await host.client.post(
            "/api/notifications",
            json={"recipients": {"type": "broadcast"}, "payload": {"title": "to all"}},
            headers=service,
        )
        [broadcast] = response.json()
        answer = await host.client.get(f"/api/notifications/{broadcast['id']}/deliveries", headers=service)
        assert answer.status_code == 200, answer.text
        assert answer.json()["resolution"] == [{"entityRef": None, "relation": "broadcast"}]
        assert answer.json()["channels"][0]["updated"] == broadcast["created"]
        # a scoped re-send asked for directly points the kept row at the new send, not the group send
        team = {"type": "entity", "entityRef": "group:default/team"}
        first = {item["user"]: item for item in await api.send_ok(team, title="v1", scope="deploy")}
        [again] = await api.send_ok(user("jane"), title="v2", scope="deploy")
        assert again["id"] == first[JANE]["id"]
        log = (await api.get(JANE, f"/{again['id']}/deliveries")).json()
        assert log["resolution"] == [{"entityRef": JANE, "relation": None}]
