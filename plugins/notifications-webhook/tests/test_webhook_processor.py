"""The Webhook processor's delivery hook against a real local receiver: body, signature, outcomes.

These call ``notifications_deliver`` as the outbox's dispatcher does (with
:class:`Delivery` objects) and look at what the receiver got; the end-to-end
tests through a host's outbox are in ``test_webhook_outbox.py``.
"""

from __future__ import annotations

import base64
import json
import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest
from greenroom_notifications_webhook import WebhookConfig, WebhookProcessor
from standardwebhooks import Webhook, WebhookVerificationError

from plugin_notifications.delivery import Delivery
from plugin_notifications.http_channels import RouteFilter, retry_after_seconds
from plugin_notifications.models import Notification
from tests.http_receiver import Receiver
from tests.notifications.conftest import notification

SECRET = "whsec_" + base64.b64encode(os.urandom(32)).decode()


def new_secret() -> str:
    """A fresh Standard Webhooks secret."""
    return "whsec_" + base64.b64encode(os.urandom(32)).decode()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver().start() as served:
        yield served


class Catalog:
    """The one catalog call the processor makes (``resolve_users``), answering from a fixed map."""

    def __init__(self, members: dict[str, list[str]] | None = None) -> None:
        self.members = members or {}
        self.calls = 0

    async def resolve_users(self, refs: list[str], excluded: list[str]) -> list[str]:
        self.calls += 1
        return [user for ref in refs for user in self.members.get(ref, [ref] if ref.startswith("user:") else [])]


def processor(*endpoints: dict[str, Any], catalog: Catalog | None = None, **settings: Any) -> WebhookProcessor:
    config = WebhookConfig.model_validate({"endpoints": list(endpoints), **settings})
    return WebhookProcessor(config, catalog=catalog or Catalog())


def delivery(note: Notification | None = None, recipients: tuple[str, ...] = ("user:default/jane",)) -> Delivery:
    return Delivery(id=str(uuid.uuid4()), channel="", notification=note or notification(), recipients=recipients)


async def deliver(proc: WebhookProcessor, *deliveries: Delivery) -> dict[str, Any]:
    [channel] = proc.notifications_delivery_channels()
    try:
        return await proc.notifications_deliver(channel.name, list(deliveries))
    finally:
        await proc.close()


async def test_a_delivery_is_one_signed_post_with_the_notification_and_recipients(receiver: Receiver) -> None:
    note = notification(description="v1.2.3 is live", severity="high", topic="deploys", link="/ci/42")
    item = delivery(note, ("user:default/jane", "user:default/joe"))
    outcomes = await deliver(processor({"url": receiver.url, "secret": SECRET}), item)
    assert outcomes[item.id].kind == "sent"
    [got] = receiver.requests
    assert got.path == "/hooks" and got.headers["content-type"] == "application/json"
    assert got.headers["webhook-id"] == item.id  # the outbox delivery id: receivers deduplicate on it
    assert got.headers["webhook-signature"].startswith("v1,")
    body = Webhook(SECRET).verify(got.body, got.headers)
    assert body == json.loads(got.body)
    assert body["type"] == "notification.created"
    assert body["data"]["recipients"] == ["user:default/jane", "user:default/joe"]
    assert body["data"]["broadcast"] is False
    sent = body["data"]["notification"]
    assert sent["id"] == note.id and sent["origin"] == "plugin:ci" and "user" not in sent
    assert sent["payload"] == {
        "title": "Deploy finished",
        "description": "v1.2.3 is live",
        "severity": "high",
        "topic": "deploys",
        "link": "/ci/42",
    }


async def test_the_signature_fails_for_another_secret_or_a_changed_body(receiver: Receiver) -> None:
    await deliver(processor({"url": receiver.url, "secret": SECRET}), delivery())
    [got] = receiver.requests
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(got.body, got.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(got.body.replace(b"Deploy", b"Revert"), got.headers)
    with pytest.raises(WebhookVerificationError):  # the id is signed too
        Webhook(SECRET).verify(got.body, {**got.headers, "webhook-id": str(uuid.uuid4())})


async def test_a_broadcast_says_so_and_lists_no_recipients(receiver: Receiver) -> None:
    item = delivery(recipients=())
    assert (await deliver(processor({"url": receiver.url, "secret": SECRET}), item))[item.id].kind == "sent"
    body = json.loads(receiver.requests[0].body)
    assert body["data"]["broadcast"] is True and body["data"]["recipients"] == []


@pytest.mark.parametrize(
    ("answer", "kind", "error"),
    [
        (200, "sent", None),
        (202, "sent", None),
        (500, "retry", "HTTP 500"),
        (503, "retry", "HTTP 503"),
        (408, "retry", "HTTP 408"),
        (429, "retry", "HTTP 429"),
        (400, "failed", "HTTP 400"),
        (401, "failed", "HTTP 401"),
        (404, "failed", "HTTP 404"),
        (410, "failed", "HTTP 410"),
        ((302, {"location": "/elsewhere"}), "failed", "HTTP 302 (redirects are not followed)"),
    ],
)
async def test_answers_are_classified(receiver: Receiver, answer: Any, kind: str, error: str | None) -> None:
    receiver.script(answer)
    item = delivery()
    outcome = (await deliver(processor({"url": receiver.url, "secret": SECRET}), item))[item.id]
    assert (outcome.kind, outcome.error, outcome.retry_after) == (kind, error, None)
    assert len(receiver.requests) == 1  # one attempt per call: retries are the outbox's


async def test_retry_after_is_passed_on_and_capped(receiver: Receiver) -> None:
    receiver.script((429, {"Retry-After": "7"}), (503, {"Retry-After": "86400"}))
    first, second = delivery(), delivery()
    proc = processor({"url": receiver.url, "secret": SECRET}, maxRetryAfter={"minutes": 10}, concurrency=1)
    outcomes = await deliver(proc, first, second)
    assert (outcomes[first.id].kind, outcomes[first.id].retry_after) == ("retry", 7.0)
    assert outcomes[first.id].error == "HTTP 429, Retry-After 7 s"
    assert (outcomes[second.id].kind, outcomes[second.id].retry_after) == ("retry", 600.0)


def test_retry_after_parses_seconds_and_http_dates() -> None:
    now = datetime(2026, 12, 1, 20, 0, tzinfo=UTC)
    assert retry_after_seconds("120", now=now) == 120.0
    assert retry_after_seconds(format_datetime(now + timedelta(seconds=90), usegmt=True), now=now) == 90.0
    assert retry_after_seconds(format_datetime(now - timedelta(seconds=90), usegmt=True), now=now) == 0.0
    assert retry_after_seconds("soon", now=now) is None and retry_after_seconds(None) is None
    assert retry_after_seconds("-5", now=now) is None


async def test_a_receiver_that_does_not_answer_in_time_is_retried(receiver: Receiver) -> None:
    receiver.hang = True
    item = delivery()
    proc = processor({"url": receiver.url, "secret": SECRET, "timeout": {"milliseconds": 200}}, timeout="PT30S")
    outcome = (await deliver(proc, item))[item.id]
    assert (outcome.kind, outcome.error) == ("retry", "timed out after 0.2 s")


async def test_a_receiver_that_is_down_is_retried() -> None:
    down = Receiver()  # never started: connection refused
    item = delivery()
    outcome = (await deliver(processor({"url": down.url, "secret": SECRET}), item))[item.id]
    assert (outcome.kind, outcome.error) == ("retry", "connection failed (ConnectError)")


async def test_errors_never_show_the_url_or_the_secret() -> None:
    down = Receiver()
    url = f"http://127.0.0.1:{down.port}/hooks/tok-3f9a2c"
    for item_outcome in (await deliver(processor({"url": url, "secret": SECRET}), delivery())).values():
        assert "tok-3f9a2c" not in str(item_outcome.error) and SECRET not in repr(item_outcome)


async def test_entity_refs_narrow_the_recipients_and_skip_sends_that_reach_none(receiver: Receiver) -> None:
    catalog = Catalog({"group:default/ops": ["user:default/olga", "user:default/oscar"]})
    proc = processor(
        {"url": receiver.url, "secret": SECRET, "entityRefs": ["group:default/ops", "user:default/jane"]},
        catalog=catalog,
    )
    mixed = delivery(recipients=("user:default/jane", "user:default/joe", "user:default/oscar"))
    nobody = delivery(recipients=("user:default/joe",))
    broadcast = delivery(recipients=())
    outcomes = await deliver(proc, mixed, nobody, broadcast)
    assert outcomes[mixed.id].kind == "sent"
    assert (outcomes[nobody.id].kind, outcomes[nobody.id].error) == ("skipped", "no recipient matches entityRefs")
    assert (outcomes[broadcast.id].kind, outcomes[broadcast.id].error) == (
        "skipped",
        "a broadcast does not match entityRefs",
    )
    [got] = receiver.requests
    assert json.loads(got.body)["data"]["recipients"] == ["user:default/jane", "user:default/oscar"]
    assert catalog.calls == 1  # resolved once for the batch (cached for entityRefsCacheTtl)


@pytest.mark.parametrize(
    ("filters", "payload", "origin", "accepted"),
    [
        ({}, {}, "plugin:ci", True),
        ({"origins": ["plugin:ci"]}, {}, "plugin:ci", True),
        ({"origins": ["plugin:catalog"]}, {}, "plugin:ci", False),
        ({"topics": ["deploys"]}, {"topic": "deploys"}, "plugin:ci", True),
        ({"topics": ["deploys"]}, {"topic": "builds"}, "plugin:ci", False),
        ({"topics": ["deploys"]}, {}, "plugin:ci", False),
        ({"minimumSeverity": "high"}, {"severity": "critical"}, "plugin:ci", True),
        ({"minimumSeverity": "HIGH"}, {"severity": "high"}, "plugin:ci", True),
        ({"minimumSeverity": "high"}, {"severity": "normal"}, "plugin:ci", False),
        ({"minimumSeverity": "high"}, {}, "plugin:ci", False),  # no severity is normal
        ({"minimumSeverity": "low"}, {"severity": "low"}, "plugin:ci", True),
        (
            {"origins": ["plugin:ci"], "topics": ["deploys"], "minimumSeverity": "high"},
            {"topic": "deploys", "severity": "normal"},
            "plugin:ci",
            False,
        ),
    ],
)
def test_send_time_filters(filters: dict[str, Any], payload: dict[str, Any], origin: str, accepted: bool) -> None:
    proc = processor({"url": "https://hooks.example.com/", "secret": SECRET, **filters})
    [channel] = proc.notifications_delivery_channels()
    note = notification(**payload).model_copy(update={"origin": origin})
    assert channel.accepts is not None and channel.accepts(note) is accepted
    assert RouteFilter(proc._config.endpoints[0]).accepts(note) is accepted


def test_each_endpoint_is_a_send_scope_channel() -> None:
    proc = processor(
        {"url": "https://a.example.com/", "secret": SECRET, "name": "ops"},
        {"url": "https://b.example.com/x?token=abc", "secret": new_secret()},
        batchSize=7,
    )
    ops, other = proc.notifications_delivery_channels()
    assert (ops.name, ops.scope, ops.batch_size) == ("webhook:ops", "send", 7)
    assert other.name.startswith("webhook:") and len(other.name) == len("webhook:") + 12
    assert "abc" not in other.name and "example" not in other.name  # the URL (and its token) stays hidden
    again = processor({"url": "https://b.example.com/x?token=abc", "secret": SECRET})
    assert again.notifications_delivery_channels()[0].name == other.name  # stable: derived from the URL only
