"""Slack through a real host's outbox, on SQLite and PostgreSQL, against a local fake Slack Web API.

One host per database serves every test of the module (starting hosts is
what costs time); each test uses its own recipients or scope and starts
with a fresh record of calls. The outbox backs off for an hour, so a retry
that comes sooner was brought by a ``Retry-After``. What the host recorded
is read from the delivery log (``GET /api/notifications/{id}/deliveries``)
as a recipient sees it; what Slack got, from the fake's call records.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import sqlalchemy as sa
from greenroom_notifications_slack.module import CLEANUP_TASK
from greenroom_notifications_slack.store import PostedMessage, SlackMessageStore
from slack_fake_api import TOKEN, FakeSlack

from host import core_services
from host.scheduler import tasks_table
from host.testing import eventually
from tests.conftest import SERVICE_SUBJECT, HostHandle, start_host

pytestmark = pytest.mark.asyncio(loop_scope="module")

ORG = Path(__file__).parent / "fixtures" / "slack-org.yaml"
SLOW = {
    "maxAttempts": 5,
    "backoff": {"initial": {"hours": 1}, "max": {"hours": 1}},  # only Retry-After brings a retry back soon
    "pollInterval": {"milliseconds": 50},
}
ROUTES = [
    {"topic": "alerts", "channel": "C0ALERTS"},
    {"origin": SERVICE_SUBJECT, "topic": "news", "channel": ["C0NEWS1", "C0NEWS2"]},
    {"origin": "plugin:catalog", "channel": "C0CATALOG"},
    {"origin": SERVICE_SUBJECT, "topic": "alerts", "channel": "C0SVCALERTS"},
]
JANE, JOE, OLGA = "user:default/jane", "user:default/joe", "user:default/olga"
OPS, DEV = "group:default/ops", "group:default/dev"
CHANNEL = "slack:main"


def slack_config(fake: FakeSlack, **workspace: Any) -> dict[str, Any]:
    """Host config: the test catalog, slow outbox retries and one workspace ``main`` on ``fake``."""
    return {
        "app": {"baseUrl": "https://portal.example.com"},
        "catalog": {"locations": [{"type": "file", "target": str(ORG)}]},
        "notifications": {
            "delivery": SLOW,
            "processors": {"slack": [{"token": TOKEN, "name": "main", "apiUrl": fake.api_url, **workspace}]},
        },
    }


@pytest.fixture(scope="module")
def served() -> Iterator[FakeSlack]:
    with FakeSlack(users={"jane@example.com": "U0JANE", "olga@example.com": "U0OLGA"}).start() as fake:
        yield fake


@pytest.fixture
def fake(served: FakeSlack) -> FakeSlack:
    """The module's fake Slack, with no calls recorded yet."""
    served.reset()
    return served


@pytest_asyncio.fixture(
    scope="module", loop_scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
async def host(request: pytest.FixtureRequest, served: FakeSlack) -> AsyncIterator[HostHandle]:
    """One host per database for the whole module."""
    # concurrencyLimit: Backstage's default, 10 calls a minute, would hold up this busy module
    config = slack_config(served, broadcastRoutes=ROUTES, broadcastChannels=["C0ALL"], concurrencyLimit=1000)
    async with start_host(str(request.param), config=config) as handle:
        yield handle


async def send(host: HostHandle, recipients: dict[str, Any], **payload: Any) -> list[dict[str, Any]]:
    payload.setdefault("title", f"note {uuid.uuid4().hex[:6]}")
    response = await host.client.post(
        "/api/notifications", headers=host.service_headers, json={"recipients": recipients, "payload": payload}
    )
    assert response.status_code == 200, response.text
    return list(response.json())


def to(*refs: str) -> dict[str, Any]:
    return {"type": "entity", "entityRef": list(refs)}


async def settled(host: HostHandle, user: str, notification_id: str) -> dict[str, Any]:
    """Wait until the Slack delivery of ``user``'s notification is final; return its delivery log entry."""

    async def final() -> dict[str, Any] | None:
        response = await host.client.get(
            f"/api/notifications/{notification_id}/deliveries", headers=await host.user_headers(user)
        )
        assert response.status_code == 200, response.text
        entry = next((e for e in response.json()["channels"] if e["channel"] == CHANNEL), None)
        return entry if entry and entry["status"] in ("sent", "skipped", "dead") else None

    return dict(await eventually(final, timeout=20))


def by_user(items: list[dict[str, Any]]) -> dict[str, str]:
    return {item["user"]: item["id"] for item in items}


async def test_a_named_user_gets_a_dm_and_an_annotated_group_a_channel_message(
    host: HostHandle, fake: FakeSlack
) -> None:
    """jane is looked up by e-mail and gets a DM; ops gets one message in its channel, its members no DMs."""
    sent = await send(
        host,
        to(OPS, "user:jane"),
        title="Deploy <v2> & co",
        description="**v2** is live, see [the notes](https://docs.example.com/v2)",
        link="/catalog/default/component/shop",
        severity="critical",
        topic="deploys",
        metadata={"descriptionFormat": "markdown"},
    )
    entry = await settled(host, JANE, by_user(sent)[JANE])
    assert entry["status"] == "sent" and entry["attempts"] == 1
    [lookup] = fake.of("users.lookupByEmail")
    assert lookup.args["email"] == "jane@example.com"  # the catalog's e-mail, looked up in Slack
    posts = {call.args["channel"]: call for call in fake.of("chat.postMessage")}
    assert sorted(posts) == ["C0OPS", "U0JANE"]  # olga and oscar were reached through ops: no DMs
    dm = posts["U0JANE"]
    assert dm.headers["authorization"] == f"Bearer {TOKEN}"
    assert dm.args["text"] == "Deploy &lt;v2&gt; &amp; co"
    [attachment] = dm.args["attachments"]
    assert attachment["color"] == "#E01E5A"
    section, context = attachment["blocks"]
    assert section["text"] == {
        "type": "mrkdwn",
        "text": "*v2* is live, see <https://docs.example.com/v2|the notes>",
    }
    assert section["accessory"]["url"] == "https://portal.example.com/catalog/default/component/shop"
    assert [e["text"] for e in context["elements"]] == ["Severity: critical", "Topic: deploys"]
    assert dm.args["metadata"]["event_type"] == "greenroom_notification"
    assert dm.args["metadata"]["event_payload"]["delivery_id"] == entry["deliveryId"]  # for deduplication
    assert posts["C0OPS"].args["attachments"] == dm.args["attachments"]  # the same message


async def test_group_members_get_no_dm_and_a_group_without_channel_is_skipped(
    host: HostHandle, fake: FakeSlack
) -> None:
    sent = await send(host, to(DEV))
    entry = await settled(host, JOE, by_user(sent)[JOE])
    assert entry["status"] == "skipped"
    assert entry["lastError"] == "no Slack destination: no user named in the send, no entity with a Slack channel"
    sent = await send(host, to("user:joe", "user:nobody"))
    entry = await settled(host, JOE, by_user(sent)[JOE])
    assert entry["status"] == "sent"
    assert [c.args["channel"] for c in fake.of("chat.postMessage")] == ["U0JOE"]  # by his slack.com/user_id
    assert [c.args["email"] for c in fake.of("users.lookupByEmail", ok=None)] == ["nobody@example.com"]


async def test_metadata_slack_channel_wins_over_the_annotation(host: HostHandle, fake: FakeSlack) -> None:
    sent = await send(host, to(OPS), metadata={"slackChannel": "C0INCIDENT"})
    assert (await settled(host, OLGA, by_user(sent)[OLGA]))["status"] == "sent"
    assert [c.args["channel"] for c in fake.of("chat.postMessage")] == ["C0INCIDENT"]


async def test_a_scoped_resend_updates_the_same_message(host: HostHandle, fake: FakeSlack) -> None:
    first = await send(host, to(OPS, JANE), title="Build 7 running", scope="build-7")
    await settled(host, JANE, by_user(first)[JANE])
    posted = {c.args["channel"]: c.answer for c in fake.of("chat.postMessage")}
    second = await send(host, to(OPS, JANE), title="Build 7 passed", scope="build-7")
    entry = await settled(host, JANE, by_user(second)[JANE])
    assert entry["status"] == "sent"
    updates = {c.args["channel"]: c for c in fake.of("chat.update")}
    assert sorted(updates) == ["C0OPS", "D0JANE"]  # the DM is updated in its conversation
    assert updates["C0OPS"].args["ts"] == posted["C0OPS"]["ts"]
    assert updates["D0JANE"].args["ts"] == posted["U0JANE"]["ts"]
    assert updates["C0OPS"].args["text"] == "Build 7 passed"
    assert len(fake.of("chat.postMessage")) == 2  # nothing new was posted
    other = await send(host, to(OPS), title="Build 8 running", scope="build-8")
    await settled(host, OLGA, by_user(other)[OLGA])
    assert len(fake.of("chat.postMessage")) == 3 and len(fake.of("chat.update")) == 2  # another scope: a new one


async def test_a_429_is_retried_after_retry_after_without_repeating_what_went_out(
    host: HostHandle, fake: FakeSlack
) -> None:
    """The channel message went out, the DM got a 429: the retry, a second later, posts the DM only."""
    fake.script(
        "chat.postMessage",
        (200, {}, {"ok": True, "channel": "C0OPS", "ts": "1.000001"}),
        (429, {"Retry-After": "1"}, {"ok": False, "error": "ratelimited"}),
    )
    sent = await send(host, to(JANE, OPS))
    entry = await settled(host, JANE, by_user(sent)[JANE])
    assert (entry["status"], entry["attempts"]) == ("sent", 2)
    calls = fake.of("chat.postMessage", ok=None)
    assert [(c.args["channel"], c.status) for c in calls] == [("C0OPS", 200), ("U0JANE", 429), ("U0JANE", 200)]
    assert 0.95 <= calls[2].at - calls[1].at < 15, calls[2].at - calls[1].at


async def test_a_permanent_error_is_dead_at_once(host: HostHandle, fake: FakeSlack) -> None:
    fake.script("chat.postMessage", (200, {}, {"ok": False, "error": "channel_not_found"}))
    sent = await send(host, to(OPS))
    entry = await settled(host, OLGA, by_user(sent)[OLGA])
    assert (entry["status"], entry["attempts"]) == ("dead", 1)
    assert entry["lastError"] == "chat.postMessage to C0OPS: channel_not_found"


async def test_broadcasts_follow_the_most_specific_route(host: HostHandle, fake: FakeSlack) -> None:
    [alerts] = await send(host, {"type": "broadcast"}, topic="alerts")  # origin+topic beats topic-only
    [news] = await send(host, {"type": "broadcast"}, topic="news")
    [other] = await send(host, {"type": "broadcast"}, topic="weather")  # no route: broadcastChannels
    for item in (alerts, news, other):
        assert (await settled(host, JANE, item["id"]))["status"] == "sent"
    channels = sorted(c.args["channel"] for c in fake.of("chat.postMessage"))
    assert channels == ["C0ALL", "C0NEWS1", "C0NEWS2", "C0SVCALERTS"]


async def test_message_timestamps_are_kept_in_the_modules_table_and_cleaned(host: HostHandle, fake: FakeSlack) -> None:
    sent = await send(host, to(OPS), title="Kept", scope="kept-1")
    entry = await settled(host, OLGA, by_user(sent)[OLGA])
    database = (await host.backend.get_service(core_services.root_database)).for_plugin("notifications")
    engine = await database.get_engine()
    store = SlackMessageStore(engine)
    [post] = fake.of("chat.postMessage")
    assert await store.posted_by(entry["deliveryId"]) == {"C0OPS": PostedMessage("C0OPS", post.answer["ts"])}
    assert await store.latest(CHANNEL, SERVICE_SUBJECT, "kept-1", "C0OPS") == PostedMessage("C0OPS", post.answer["ts"])
    async with engine.connect() as conn:  # the daily clean-up is scheduled, in the plugin's task table
        task = await conn.scalar(sa.select(tasks_table.c.id).where(tasks_table.c.id == CLEANUP_TASK))
    assert task == CLEANUP_TASK
    assert await store.purge(CHANNEL, timedelta(hours=24)) == 0  # young rows stay
    assert await store.purge("slack:other", timedelta(0)) == 0  # another workspace's retention
    assert await store.purge(CHANNEL, timedelta(0)) >= 1
    assert await store.latest(CHANNEL, SERVICE_SUBJECT, "kept-1", "C0OPS") is None
