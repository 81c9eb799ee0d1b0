"""The Slack processor's delivery hook without a host: a catalog stub, a SQLite ledger and the fake Slack API.

It is called as the outbox's dispatcher calls it, with :class:`Delivery`
objects; the end-to-end tests through a host are in ``test_slack_outbox.py``.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from greenroom_notifications_slack import SlackConfig, SlackProcessor, SlackRenderers
from greenroom_notifications_slack.store import SlackMessageStore, metadata
from slack_fake_api import TOKEN, FakeSlack
from sqlalchemy.ext.asyncio import create_async_engine

from plugin_notifications.delivery import Delivery
from plugin_notifications.models import Notification, NotificationPayload, utc_now

ENTITIES: dict[str, dict[str, Any]] = {
    "user:default/jane": {"kind": "User", "spec": {"profile": {"email": "jane@example.com"}}},
    "user:default/joe": {"kind": "User", "metadata": {"annotations": {"slack.com/bot-notify": "U0JOE"}}},
    "group:default/ops": {"kind": "Group", "metadata": {"annotations": {"slack.com/bot-notify": "C0OPS"}}},
}


class Catalog:
    """The one catalog call the processor makes, answering from :data:`ENTITIES` and counting calls."""

    def __init__(self) -> None:
        self.calls = 0

    async def get_entities_by_refs(self, refs: list[str], fields: list[str] | None = None) -> list[Any]:
        self.calls += 1
        return [ENTITIES.get(ref) for ref in refs]


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    with FakeSlack(users={"jane@example.com": "U0JANE"}).start() as served:
        yield served


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SlackMessageStore]:
    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'slack.sqlite'}")
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    yield SlackMessageStore(engine)
    await engine.dispose()


def processor(
    fake: FakeSlack, store: SlackMessageStore, renderers: SlackRenderers | None = None, **settings: Any
) -> SlackProcessor:
    config = SlackConfig.model_validate([{"token": TOKEN, "apiUrl": fake.api_url, "name": "t", **settings}])
    return SlackProcessor(
        config, catalog=Catalog(), store=store, renderers=renderers, base_url="https://portal.example.com/app"
    )


def delivery(*refs: str, recipients: tuple[str, ...] | None = None, **payload: Any) -> Delivery:
    payload.setdefault("title", "Deploy finished")
    note = Notification(
        id=str(uuid.uuid4()),
        user=None,
        created=utc_now(),
        origin="plugin:ci",
        payload=NotificationPayload.model_validate(payload),
    )
    users = tuple(ref for ref in refs if ref.startswith("user:")) if recipients is None else recipients
    return Delivery(str(uuid.uuid4()), "slack:t", note, users or ("user:default/olga",), entity_refs=refs)


async def deliver(proc: SlackProcessor, *deliveries: Delivery) -> dict[str, Any]:
    try:
        return await proc.notifications_deliver("slack:t", list(deliveries))
    finally:
        await proc.close()


async def test_mentions_links_and_the_description_format(fake: FakeSlack, store: SlackMessageStore) -> None:
    item = delivery(
        "user:default/joe",
        description="Ask <@user:default/jane> or <@user:default/ghost> about **it**",
        link="/catalog/x",
        metadata={"descriptionFormat": "markdown"},
    )
    assert (await deliver(processor(fake, store), item))[item.id].kind == "sent"
    [post] = fake.of("chat.postMessage")
    section = post.args["attachments"][0]["blocks"][0]
    assert section["text"]["text"] == "Ask <@U0JANE> or &lt;@user:default/ghost&gt; about *it*"
    assert section["accessory"]["url"] == "https://portal.example.com/app/catalog/x"


async def test_a_user_named_but_not_a_recipient_gets_no_dm(fake: FakeSlack, store: SlackMessageStore) -> None:
    """jane switched the channel off (she is not among the delivery's recipients); ops still gets its message."""
    item = delivery("user:default/jane", "group:default/ops", recipients=("user:default/olga",))
    assert (await deliver(processor(fake, store), item))[item.id].kind == "sent"
    assert [c.args["channel"] for c in fake.of("chat.postMessage")] == ["C0OPS"]


async def test_the_throttle_hands_the_rest_back_to_the_outbox(fake: FakeSlack, store: SlackMessageStore) -> None:
    proc = processor(fake, store, concurrencyLimit=1, throttleInterval={"hours": 1})
    item = delivery("user:default/joe", "group:default/ops")
    outcome = (await deliver(proc, item))[item.id]
    assert outcome.kind == "retry" and outcome.error == "throttled (concurrencyLimit per throttleInterval)"
    assert outcome.retry_after is not None and 3590 < outcome.retry_after <= 3600
    assert [c.args["channel"] for c in fake.of("chat.postMessage")] == ["C0OPS"]  # the first took the only slot
    assert list(await store.posted_by(item.id)) == ["C0OPS"]  # the retry will not post it again


async def test_a_renderer_that_raises_fails_its_delivery_only(fake: FakeSlack, store: SlackMessageStore) -> None:
    def broken(payload: NotificationPayload) -> list[dict[str, Any]]:
        raise ValueError("template bug")

    renderers = SlackRenderers()
    renderers.set_block_kit_renderer(broken)
    item = delivery("group:default/ops")
    outcome = (await deliver(processor(fake, store, renderers), item))[item.id]
    assert (outcome.kind, outcome.error) == ("failed", "the Slack renderer failed (ValueError)")
    assert fake.of("chat.postMessage", ok=None) == []


async def test_entities_and_lookups_are_cached(fake: FakeSlack, store: SlackMessageStore) -> None:
    proc = processor(fake, store)
    first, second = delivery("user:default/jane"), delivery("user:default/jane")
    outcomes = await deliver(proc, first, second)
    assert {o.kind for o in outcomes.values()} == {"sent"}
    assert len(fake.of("users.lookupByEmail")) == 1
    assert [w.directory._catalog.calls for w in proc.workspaces.values()] == [1]
