"""Per-origin/topic retention (``notifications.retentionRules``) on top of ``notifications.retention``.

Rows are written through the store with old ``created``/``updated`` times (no waiting), then the
``notification-cleaner`` task runs and the lists show what is left.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from host import core_services
from host.config import Config, ConfigError
from host.testing import eventually
from plugin_notifications.cleaner import retention_rules_of
from plugin_notifications.models import Notification, NotificationPayload, utc_now
from plugin_notifications.store import NotificationsStore
from tests.conftest import start_host
from tests.notifications.conftest import Api, notifications_config

ME = "user:default/mock"
OTHER = "user:default/jane"
RULES = [
    {"origin": "test-service", "topic": "ci", "retention": {"days": 1}},
    {"topic": "audit", "retention": False},
    {"origin": "test-service2", "retention": "P7D"},
]


def aged(title: str, *, origin: str, topic: str | None, days: float, updated_days: float | None = None) -> Notification:
    """A notification for ``ME`` (a broadcast when the title starts with ``broadcast``) created ``days`` ago."""
    now = utc_now()
    return Notification.model_construct(
        id=str(uuid.uuid4()),
        user=None if title.startswith("broadcast") else ME,
        created=now - timedelta(days=days),
        updated=None if updated_days is None else now - timedelta(days=updated_days),
        origin=origin,
        payload=NotificationPayload(title=title, topic=topic),
    )


#: (notification, kept by the cleaner?)
CASES = [
    (aged("ci, 2 days", origin="test-service", topic="ci", days=2), False),  # rule 1
    (aged("ci, 12 hours", origin="test-service", topic="ci", days=0.5), True),
    (aged("ci, old but updated", origin="test-service", topic="ci", days=5, updated_days=0.5), True),
    (aged("ci of another origin, 2 days", origin="test-service2", topic="ci", days=2), True),  # rule 3: 7 days
    (aged("deploys, 2 days", origin="test-service", topic="deploys", days=2), True),  # the 30 days
    (aged("no topic, 31 days", origin="test-service", topic=None, days=31), False),  # the 30 days
    (aged("audit, 400 days", origin="test-service", topic="audit", days=400), True),  # rule 2: kept for ever
    (aged("audit of service2, 400 days", origin="test-service2", topic="audit", days=400), True),  # rule 2 first
    (aged("service2, 8 days", origin="test-service2", topic=None, days=8), False),  # rule 3
    (aged("service2, 6 days", origin="test-service2", topic="x", days=6), True),
    (aged("broadcast ci, 2 days", origin="test-service", topic="ci", days=2), False),
    (aged("broadcast service2, 6 days", origin="test-service2", topic=None, days=6), True),
]


async def test_rules_delete_only_what_they_cover(db_kind: str) -> None:
    config = notifications_config(retention={"days": 30}, retentionRules=RULES)
    async with start_host(db_kind, config=config) as handle:
        api = Api(handle)
        store = NotificationsStore(await api.database_engine())
        await store.save_user_notifications([item for item, _ in CASES if item.user])
        for item, _ in CASES:
            if item.user is None:
                await store.save_broadcast(item)
        # another user's broadcast state goes with the broadcast
        broadcast_ids = [item.id for item, _ in CASES if item.user is None]
        await api.update(OTHER, broadcast_ids, read=True)
        assert (await api.list(ME, limit=50))["totalCount"] == len(CASES)

        scheduler = await handle.backend.get_service(core_services.scheduler, "notifications")
        await scheduler.trigger_task("notification-cleaner")
        kept = sorted(item.payload.title for item, keep in CASES if keep)

        async def only_kept_left() -> bool:
            body = await api.list(ME, limit=50)
            return sorted(item["payload"]["title"] for item in body["notifications"]) == kept

        await eventually(only_kept_left)
        assert await api.count_rows("broadcast_user_status") == 1
        assert (await api.get(OTHER, "/status")).json() == {"unread": 0, "read": 1}


async def test_rules_alone_clean_with_the_global_retention_off() -> None:
    config = notifications_config(retention=False, retentionRules=[{"topic": "ci", "retention": {"hours": 1}}])
    async with start_host("sqlite", config=config) as handle:
        api = Api(handle)
        store = NotificationsStore(await api.database_engine())
        await store.save_user_notifications(
            [
                aged("ci, 2 hours", origin="test-service", topic="ci", days=2 / 24),
                aged("other, 10 years", origin="test-service", topic="other", days=3650),
            ]
        )
        scheduler = await handle.backend.get_service(core_services.scheduler, "notifications")
        assert {"id": "notification-cleaner", "scope": "global"} in scheduler.get_scheduled_tasks()
        await scheduler.trigger_task("notification-cleaner")

        async def only_other_left() -> bool:
            return [item["payload"]["title"] for item in (await api.list(ME))["notifications"]] == ["other, 10 years"]

        await eventually(only_other_left)


def test_a_rule_names_an_origin_or_a_topic() -> None:
    rules = retention_rules_of(Config({"notifications": {"retentionRules": RULES}}))
    assert [(rule.origin, rule.topic, rule.max_age) for rule in rules] == [
        ("test-service", "ci", timedelta(days=1)),
        (None, "audit", None),
        ("test-service2", None, timedelta(days=7)),
    ]
    with pytest.raises(ConfigError, match=r"retentionRules\[0\]: Value error, a retention rule needs an origin"):
        retention_rules_of(Config({"notifications": {"retentionRules": [{"retention": {"days": 1}}]}}))
    with pytest.raises(ConfigError, match=r"retentionRules\[1.retention"):
        retention_rules_of(
            Config({"notifications": {"retentionRules": [RULES[0], {"topic": "x", "retention": "soon"}]}})
        )
