"""Upgrade from the first released schema of each plugin to the latest, with data kept.

Data is written at the first revision (through the plugin's own store, which
only uses columns that revision has), then a host starts on the same storage,
upgrades to head at startup, and the data must come back through the API.
"""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa

import plugin_catalog
import plugin_notifications
from host.config import Config
from host.database import DatabaseManager
from plugin_notifications.models import (
    ChannelSetting,
    Notification,
    NotificationPayload,
    NotificationSettings,
    OriginSetting,
    utc_now,
)
from plugin_notifications.store import NotificationsStore
from tests.conftest import base_config, start_host

NOTIFICATIONS_MIGRATIONS = Path(plugin_notifications.__file__).parent / "migrations"
CATALOG_MIGRATIONS = Path(plugin_catalog.__file__).parent / "migrations"
ALICE = "user:default/alice"


def first_revision(location: Path) -> str:
    """The revision whose ``down_revision`` is None."""
    from alembic.config import Config as AlembicConfig
    from alembic.script import ScriptDirectory

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(location))
    return str(ScriptDirectory.from_config(cfg).get_base())


def note(title: str, user: str | None, minutes_ago: int) -> Notification:
    import uuid

    return Notification.model_construct(
        id=str(uuid.uuid4()),
        user=user,
        created=utc_now() - timedelta(minutes=minutes_ago),
        origin="legacy-service",
        payload=NotificationPayload(title=title, severity="high", topic="deploys"),
    )


async def test_notifications_upgrade_keeps_data(db_kind: str, tmp_path: Path) -> None:
    prefix = f"gr_upgrade_{uuid.uuid4().hex[:8]}_"  # unique: tests run side by side (start_host drops it)
    config = base_config(db_kind, port=0, data_dir=str(tmp_path), prefix=prefix)
    manager = DatabaseManager(Config(config))
    database = manager.for_plugin("notifications")
    await database.migrate(NOTIFICATIONS_MIGRATIONS, target=first_revision(NOTIFICATIONS_MIGRATIONS))
    engine = await database.get_engine()
    async with engine.connect() as conn:
        version = (await conn.execute(sa.text("SELECT version_num FROM alembic_version"))).scalar()
    assert version == "notifications_0001"

    store = NotificationsStore(engine)
    own = [note("old unread", ALICE, 30), note("old read", ALICE, 20)]
    await store.save_user_notifications(own)
    broadcast = note("old broadcast", None, 10)
    await store.save_broadcast(broadcast)
    await store.update_state(ALICE, [own[1].id, broadcast.id], read=True)
    await store.save_settings(
        ALICE,
        NotificationSettings(
            channels=[ChannelSetting(id="Web", origins=[OriginSetting(id="legacy-service", enabled=False)])]
        ),
    )
    await manager.dispose()

    async with start_host(
        db_kind, data_dir=str(tmp_path), prefix=prefix, plugins=["auth", "catalog", "notifications", "signals"]
    ) as host:
        headers = await host.user_headers(ALICE)
        listing = (await host.client.get("/api/notifications", headers=headers)).json()
        assert listing["totalCount"] == 3
        assert [n["payload"]["title"] for n in listing["notifications"]] == ["old broadcast", "old read", "old unread"]
        by_title = {n["payload"]["title"]: n for n in listing["notifications"]}
        assert by_title["old read"]["read"] is not None and by_title["old unread"]["read"] is None
        assert by_title["old broadcast"]["read"] is not None and by_title["old broadcast"]["user"] is None
        assert by_title["old unread"]["payload"]["severity"] == "high"
        assert (await host.client.get("/api/notifications/status", headers=headers)).json() == {"unread": 1, "read": 2}
        settings = (await host.client.get("/api/notifications/settings", headers=headers)).json()
        web = next(c for c in settings["channels"] if c["id"] == "Web")
        assert {o["id"]: o["enabled"] for o in web["origins"]}["legacy-service"] is False
        # archive and delete (revision 0006) work on rows written before they existed
        archived = await host.client.post(
            "/api/notifications/notifications/update",
            headers=headers,
            json={"ids": [by_title["old unread"]["id"], by_title["old broadcast"]["id"]], "archived": True},
        )
        assert archived.status_code == 200 and len(archived.json()) == 2
        assert (await host.client.get("/api/notifications/status", headers=headers)).json() == {"unread": 0, "read": 1}
        deleted = await host.client.delete(f"/api/notifications/{by_title['old read']['id']}", headers=headers)
        assert deleted.status_code == 204
        listing = (await host.client.get("/api/notifications", headers=headers, params={"archived": "true"})).json()
        assert [n["payload"]["title"] for n in listing["notifications"]] == ["old broadcast", "old unread"]
        # and the upgraded schema takes new writes
        created = await host.client.post(
            "/api/notifications",
            headers=host.service_headers,
            json={"recipients": {"type": "entity", "entityRef": ALICE}, "payload": {"title": "after upgrade"}},
        )
        assert created.status_code == 200
        manager = DatabaseManager(Config(host.config))
        upgraded = await manager.for_plugin("notifications").get_engine()
        async with upgraded.connect() as conn:
            version = (await conn.execute(sa.text("SELECT version_num FROM alembic_version"))).scalar()
        await manager.dispose()
        assert version != "notifications_0001"


async def test_catalog_upgrade_from_first_revision(db_kind: str, tmp_path: Path) -> None:
    prefix = f"gr_upgrade_cat_{uuid.uuid4().hex[:8]}_"
    catalog = tmp_path / "org.yaml"
    catalog.write_text(
        "apiVersion: backstage.io/v1alpha1\nkind: User\nmetadata: {name: alice}\nspec: {memberOf: [team]}\n---\n"
        "apiVersion: backstage.io/v1alpha1\nkind: Group\nmetadata: {name: team}\nspec: {type: team, children: []}\n"
    )
    config = base_config(db_kind, port=0, data_dir=str(tmp_path), prefix=prefix)
    manager = DatabaseManager(Config(config))
    database = manager.for_plugin("catalog")
    await database.migrate(CATALOG_MIGRATIONS, target=first_revision(CATALOG_MIGRATIONS))
    # an entity stored at the first revision, from a file that is gone when the upgraded host starts
    gone = tmp_path / "gone.yaml"
    legacy = {
        "apiVersion": "backstage.io/v1alpha1",
        "kind": "User",
        "spec": {},
        "relations": [],
        "metadata": {
            "name": "legacy",
            "namespace": "default",
            "uid": "u-1",
            "etag": "e-1",
            "annotations": {"backstage.io/managed-by-location": f"file:{gone}"},
        },
    }
    async with (await database.get_engine()).begin() as conn:
        await conn.execute(
            sa.text(
                "INSERT INTO entities (entity_ref, uid, kind, namespace, name, etag, hash, final_entity, updated_at) "
                "VALUES ('user:default/legacy', 'u-1', 'user', 'default', 'legacy', 'e-1', 'h', :body, :now)"
            ),
            {"body": json.dumps(legacy), "now": utc_now()},
        )
    await manager.dispose()
    locations = [{"type": "file", "target": str(catalog)}, {"type": "file", "target": str(gone)}]
    async with start_host(
        db_kind,
        data_dir=str(tmp_path),
        prefix=prefix,
        plugins=["auth", "catalog"],
        config={"catalog": {"locations": locations}},
    ) as host:
        response = await host.client.get(
            "/api/catalog/entities/by-name/user/default/alice", headers=host.service_headers
        )
        assert response.status_code == 200
        targets = {r["targetRef"] for r in response.json()["relations"]}
        assert "group:default/team" in targets
        # the upgrade recorded the old row's location, so the unreadable file keeps it
        kept = await host.client.get("/api/catalog/entities/by-name/user/default/legacy", headers=host.service_headers)
        assert kept.status_code == 200
        assert kept.json()["metadata"]["uid"] == "u-1"
