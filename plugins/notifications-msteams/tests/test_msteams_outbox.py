"""Teams cards through a real host's outbox, against a local receiver on 127.0.0.1.

The catalog is written per test, its ``microsoft.com/teams-webhook``
annotations pointing at the receiver (``/ops`` for group ops, ``/jane`` for
user jane); the annotation allow-list is opened to ``http://127.0.0.1`` for
that. What the host recorded is read from the delivery log, as a recipient
sees it.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.channel_delivery import send, settled
from tests.conftest import HostHandle, start_host
from tests.http_receiver import Receiver

JANE, JOE, OLGA, MALLORY = "user:default/jane", "user:default/joe", "user:default/olga", "user:default/mallory"
FAST = {
    "maxAttempts": 5,
    "backoff": {"initial": {"milliseconds": 20}, "max": {"milliseconds": 50}},
    "pollInterval": {"milliseconds": 50},
}
CATALOG = """\
apiVersion: backstage.io/v1alpha1
kind: Group
metadata:
  name: ops
  annotations:
    microsoft.com/teams-webhook: {base}/ops
spec: {{type: team, children: []}}
---
apiVersion: backstage.io/v1alpha1
kind: User
metadata:
  name: olga
spec: {{memberOf: [ops]}}
---
apiVersion: backstage.io/v1alpha1
kind: User
metadata:
  name: jane
  annotations:
    microsoft.com/teams-webhook: {base}/jane
spec: {{memberOf: []}}
---
apiVersion: backstage.io/v1alpha1
kind: User
metadata:
  name: joe
spec: {{memberOf: []}}
---
apiVersion: backstage.io/v1alpha1
kind: User
metadata:
  name: mallory
  annotations:
    microsoft.com/teams-webhook: https://collector.example.net/steal
spec: {{memberOf: []}}
"""


def teams_config(tmp_path: Path, receiver: Receiver, *routes: dict[str, Any], **delivery: Any) -> dict[str, Any]:
    """Host config: the test catalog, fast outbox retries, annotations allowed on the receiver, these routes."""
    catalog = tmp_path / "org.yaml"
    catalog.write_text(CATALOG.format(base=f"http://127.0.0.1:{receiver.port}"))
    return {
        "app": {"baseUrl": "https://portal.example.com"},
        "catalog": {"locations": [{"type": "file", "target": str(catalog)}]},
        "notifications": {
            "delivery": {**FAST, **delivery},
            "processors": {
                "msteams": {
                    "timeout": {"seconds": 5},
                    "annotations": {"allowedHosts": ["127.0.0.1"], "allowedSchemes": ["http"]},
                    "routes": list(routes),
                }
            },
        },
    }


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver().start() as served:
        yield served


@pytest.fixture
async def host(tmp_path: Path, receiver: Receiver) -> AsyncIterator[HostHandle]:
    """A host with the annotation channel and one route, ``msteams:alerts`` (high and critical only)."""
    route = {"url": f"http://127.0.0.1:{receiver.port}/alerts", "name": "alerts", "minimumSeverity": "high"}
    async with start_host("sqlite", config=teams_config(tmp_path, receiver, route)) as handle:
        yield handle


def card_of(body: bytes) -> dict[str, Any]:
    """The Adaptive Card of a Workflows message (checking the envelope)."""
    message = json.loads(body)
    assert message["type"] == "message"
    [attachment] = message["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    assert attachment["contentUrl"] is None
    card: dict[str, Any] = attachment["content"]
    assert card["type"] == "AdaptiveCard"
    return card


async def test_an_annotated_group_gets_a_card_in_its_channel(host: HostHandle, receiver: Receiver) -> None:
    [note] = await send(
        host,
        "group:default/ops",
        description="**db-1** at 97%",
        link="/catalog/db-1",
        metadata={"descriptionFormat": "markdown"},
    )
    entry = await settled(host, OLGA, note["id"], "MSTeams")
    assert entry["status"] == "sent"
    [got] = receiver.requests
    assert got.path == "/ops" and got.headers["content-type"] == "application/json"
    card = card_of(got.body)
    assert card["body"][0]["items"][0]["text"] == note["payload"]["title"]
    assert card["body"][1]["text"] == "**db-1** at 97%"
    assert card["actions"] == [
        {"type": "Action.OpenUrl", "title": "Open", "url": "https://portal.example.com/catalog/db-1"}
    ]


async def test_an_annotated_user_gets_a_card_and_others_are_skipped(host: HostHandle, receiver: Receiver) -> None:
    [for_jane] = await send(host, JANE)
    [for_joe] = await send(host, JOE)
    assert (await settled(host, JANE, for_jane["id"], "MSTeams"))["status"] == "sent"
    skipped = await settled(host, JOE, for_joe["id"], "MSTeams")
    assert skipped["status"] == "skipped"
    assert skipped["lastError"] == "no recipient entity has the microsoft.com/teams-webhook annotation"
    assert [(r.path, card_of(r.body)["body"][0]["items"][0]["text"]) for r in receiver.requests] == [
        ("/jane", for_jane["payload"]["title"])
    ]


async def test_an_annotation_outside_the_allowed_hosts_is_never_posted(host: HostHandle, receiver: Receiver) -> None:
    [note] = await send(host, MALLORY)
    entry = await settled(host, MALLORY, note["id"], "MSTeams")
    assert entry["status"] == "skipped"
    assert "refused (allowedHosts, allowedSchemes): user:default/mallory" in entry["lastError"]
    assert "collector" not in entry["lastError"]  # the URL is never shown
    assert receiver.requests == []


async def test_a_configured_route_gets_the_cards_its_filters_pass(host: HostHandle, receiver: Receiver) -> None:
    [urgent] = await send(host, JOE, severity="critical", topic="deploys")
    [calm] = await send(host, JOE, severity="normal")
    assert (await settled(host, JOE, urgent["id"], "msteams:alerts"))["status"] == "sent"
    [got] = [r for r in receiver.requests if r.path == "/alerts"]
    card = card_of(got.body)
    assert card["body"][0]["style"] == "attention"
    assert card["body"][0]["items"][1]["text"] == "Critical · test-service · deploys"
    await settled(host, JOE, calm["id"], "MSTeams")  # the send is done; the route never had a row for it
    response = await host.client.get(
        f"/api/notifications/{calm['id']}/deliveries", headers=await host.user_headers(JOE)
    )
    assert "msteams:alerts" not in [e["channel"] for e in response.json()["channels"]]


async def test_a_5xx_is_retried_and_the_same_card_arrives(host: HostHandle, receiver: Receiver) -> None:
    receiver.script(502, 503)
    [note] = await send(host, JOE, severity="high")
    entry = await settled(host, JOE, note["id"], "msteams:alerts")
    assert (entry["status"], entry["attempts"]) == ("sent", 3)
    assert [r.status for r in receiver.requests] == [502, 503, 204]
    assert len({r.body for r in receiver.requests}) == 1


async def test_another_4xx_is_dead_at_once(host: HostHandle, receiver: Receiver) -> None:
    receiver.script(400)
    [note] = await send(host, JOE, severity="high")
    entry = await settled(host, JOE, note["id"], "msteams:alerts")
    assert (entry["status"], entry["attempts"], entry["lastError"]) == ("dead", 1, "HTTP 400")
    assert len(receiver.requests) == 1


async def test_429_waits_for_retry_after(tmp_path: Path, receiver: Receiver) -> None:
    receiver.script((429, {"Retry-After": "1"}))
    slow = {"backoff": {"initial": {"hours": 1}, "max": {"hours": 1}}}  # only Retry-After can bring it back soon
    route = {"url": f"http://127.0.0.1:{receiver.port}/alerts", "name": "alerts"}
    async with start_host("sqlite", config=teams_config(tmp_path, receiver, route, **slow)) as host:
        [note] = await send(host, JOE)
        entry = await settled(host, JOE, note["id"], "msteams:alerts")
    assert (entry["status"], entry["attempts"]) == ("sent", 2)
    first, second = receiver.requests
    assert 0.95 <= second.at - first.at < 15, second.at - first.at
