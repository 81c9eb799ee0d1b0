"""Webhooks through a real host's outbox, on SQLite and PostgreSQL, against a real local receiver.

The outbox retries quickly here (``notifications.delivery``) unless a test
makes the backoff long to show that only ``Retry-After`` brought a retry.
What the host recorded is read from the delivery log
(``GET /api/notifications/{id}/deliveries``), as a recipient sees it.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from standardwebhooks import Webhook

from tests.channel_delivery import channel_log, send, settled
from tests.conftest import SERVICE_SUBJECT, HostHandle, start_host
from tests.http_receiver import Receiver

ORG = Path(__file__).parent / "fixtures" / "webhook-org.yaml"
SECRET = "whsec_" + base64.b64encode(os.urandom(32)).decode()
FAST = {
    "maxAttempts": 5,
    "backoff": {"initial": {"milliseconds": 20}, "max": {"milliseconds": 50}},
    "pollInterval": {"milliseconds": 50},
}
JANE, JOE, OLGA = "user:default/jane", "user:default/joe", "user:default/olga"


def webhook_config(*endpoints: dict[str, Any], **delivery: Any) -> dict[str, Any]:
    """Host config: the test catalog, fast outbox retries and these endpoints."""
    return {
        "catalog": {"locations": [{"type": "file", "target": str(ORG)}]},
        "notifications": {
            "delivery": {**FAST, **delivery},
            "processors": {"webhook": {"endpoints": list(endpoints), "timeout": {"seconds": 5}}},
        },
    }


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_kind(request: pytest.FixtureRequest) -> str:
    """Each test once on SQLite and once on PostgreSQL (tests/conftest.py's fixture does not reach plugins/)."""
    return str(request.param)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver().start() as served:
        yield served


@pytest.fixture
async def host(db_kind: str, receiver: Receiver) -> AsyncIterator[HostHandle]:
    """A host with one endpoint, ``webhook:main``, posting to ``receiver``."""
    config = webhook_config({"url": receiver.url, "secret": SECRET, "name": "main"})
    async with start_host(db_kind, config=config) as handle:
        yield handle


async def test_a_receiver_failing_twice_gets_one_accepted_signed_delivery(host: HostHandle, receiver: Receiver) -> None:
    receiver.script(500, 503)
    [note] = await send(host, JANE, severity="high")
    entry = await settled(host, JANE, note["id"], "webhook:main")
    assert (entry["status"], entry["attempts"]) == ("sent", 3)
    assert [r.status for r in receiver.requests] == [500, 503, 204]
    [accepted] = receiver.accepted()
    body = Webhook(SECRET).verify(accepted.body, accepted.headers)
    assert body["data"]["notification"]["payload"]["title"] == note["payload"]["title"]
    assert body["data"]["recipients"] == [JANE]
    assert {r.headers["webhook-id"] for r in receiver.requests} == {accepted.headers["webhook-id"]}  # one id
    assert all(r.body == accepted.body for r in receiver.requests)  # the same message every time


async def test_a_4xx_is_not_retried_and_is_dead(host: HostHandle, receiver: Receiver) -> None:
    receiver.script(422)
    [note] = await send(host, JANE)
    entry = await settled(host, JANE, note["id"], "webhook:main")
    assert (entry["status"], entry["attempts"], entry["lastError"]) == ("dead", 1, "HTTP 422")
    assert len(receiver.requests) == 1


@pytest.mark.parametrize("status", [408, 429])
async def test_408_and_429_honour_retry_after(db_kind: str, receiver: Receiver, status: int) -> None:
    receiver.script((status, {"Retry-After": "1"}))
    slow = {"backoff": {"initial": {"hours": 1}, "max": {"hours": 1}}}  # only Retry-After can bring it back soon
    config = webhook_config({"url": receiver.url, "secret": SECRET, "name": "main"}, **slow)
    async with start_host(db_kind, config=config) as host:
        [note] = await send(host, JANE)
        entry = await settled(host, JANE, note["id"], "webhook:main")
    assert (entry["status"], entry["attempts"]) == ("sent", 2)
    first, second = receiver.requests
    assert 0.95 <= second.at - first.at < 15, second.at - first.at


async def test_filters_select_the_endpoints(db_kind: str) -> None:
    receivers = {name: Receiver().start() for name in ("all", "incidents", "urgent", "ops", "catalog")}
    endpoints = [
        {"url": receivers["all"].url, "secret": SECRET, "name": "all"},
        {"url": receivers["incidents"].url, "secret": SECRET, "name": "incidents", "topics": ["incident"]},
        {"url": receivers["urgent"].url, "secret": SECRET, "name": "urgent", "minimumSeverity": "high"},
        {"url": receivers["ops"].url, "secret": SECRET, "name": "ops", "entityRefs": ["group:default/ops"]},
        {"url": receivers["catalog"].url, "secret": SECRET, "name": "catalog", "origins": ["plugin:catalog"]},
    ]
    try:
        async with start_host(db_kind, config=webhook_config(*endpoints)) as host:
            incident = await send(host, "group:default/org", topic="incident", severity="normal")
            critical = await send(host, [JANE, JOE], topic="deploys", severity="critical")
            by_user = {n["user"]: n["id"] for n in incident}
            logs = {
                name: await settled(host, OLGA, by_user[OLGA], f"webhook:{name}")
                for name in ("all", "incidents", "ops")
            }
            assert {name: entry["status"] for name, entry in logs.items()} == {
                "all": "sent",
                "incidents": "sent",
                "ops": "sent",
            }
            # filtered out at send time: nothing was written for these endpoints
            assert await channel_log(host, OLGA, by_user[OLGA], "webhook:urgent") is None
            assert await channel_log(host, OLGA, by_user[OLGA], "webhook:catalog") is None
            jane_critical = next(n["id"] for n in critical if n["user"] == JANE)
            assert (await settled(host, JANE, jane_critical, "webhook:urgent"))["status"] == "sent"
            assert (await settled(host, JANE, jane_critical, "webhook:all"))["status"] == "sent"
            skipped = await settled(host, JANE, jane_critical, "webhook:ops")  # no ops member among jane, joe
            assert (skipped["status"], skipped["lastError"]) == ("skipped", "no recipient matches entityRefs")

        def recipient_lists(name: str) -> list[list[str]]:
            return sorted(sorted(json.loads(r.body)["data"]["recipients"]) for r in receivers[name].requests)

        assert recipient_lists("all") == sorted([sorted(by_user), [JANE, JOE]])
        assert recipient_lists("incidents") == [sorted(by_user)]
        assert recipient_lists("urgent") == [[JANE, JOE]]
        assert recipient_lists("ops") == [[OLGA, "user:default/oscar"]]  # narrowed to the group's members
        assert receivers["catalog"].requests == []
        for served in receivers.values():
            for request in served.requests:
                Webhook(SECRET).verify(request.body, request.headers)
    finally:
        for served in receivers.values():
            served.stop()


async def test_a_user_who_switched_webhooks_off_is_left_out(host: HostHandle, receiver: Receiver) -> None:
    settings = {"channels": [{"id": "Webhook", "origins": [{"id": SERVICE_SUBJECT, "enabled": False}]}]}
    response = await host.client.post(
        "/api/notifications/settings", json=settings, headers=await host.user_headers(JANE)
    )
    assert response.status_code == 200, response.text
    sent = await send(host, [JANE, JOE])
    by_user = {n["user"]: n["id"] for n in sent}
    assert (await settled(host, JOE, by_user[JOE], "webhook:main"))["status"] == "sent"
    [got] = receiver.requests
    assert json.loads(got.body)["data"]["recipients"] == [JOE]
    await send(host, JANE)  # nobody left: the send's delivery is muted when written, never posted
    [after] = await send(host, JOE)
    await settled(host, JOE, after["id"], "webhook:main")
    assert [json.loads(r.body)["data"]["recipients"] for r in receiver.requests] == [[JOE], [JOE]]
