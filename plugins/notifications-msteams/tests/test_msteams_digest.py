"""Teams digests and quiet hours: a held user's cards come as one digest card to their own webhook.

A manual clock moves time (no sleeps); the webhooks are a local receiver on 127.0.0.1.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from test_msteams_outbox import CATALOG, JANE, JOE, teams_config

from host.testing import HostHandle, eventually
from plugin_notifications.clock import ManualClock
from tests.channel_delivery import channel_log, send, settled
from tests.conftest import start_host
from tests.http_receiver import Receiver
from tests.outbox.conftest import clock_module

KIM = "user:default/kim"
#: kim, like jane, has a personal webhook.
KIM_ENTITY = """\
---
apiVersion: backstage.io/v1alpha1
kind: User
metadata:
  name: kim
  annotations:
    microsoft.com/teams-webhook: {base}/kim
spec: {{memberOf: [ops]}}
"""


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver().start() as served:
        yield served


def config(tmp_path: Path, receiver: Receiver) -> dict[str, Any]:
    result = teams_config(tmp_path, receiver)
    base = f"http://127.0.0.1:{receiver.port}"
    (tmp_path / "org.yaml").write_text(CATALOG.format(base=base) + KIM_ENTITY.format(base=base))
    return result


async def prefer(host: HostHandle, who: str, **preference: Any) -> dict[str, Any]:
    body = {"channels": [{"channel": "MSTeams", **preference}]}
    response = await host.client.put("/api/notifications/preferences", json=body, headers=await host.user_headers(who))
    assert response.status_code == 200, response.text
    return dict(response.json())


def cards_to(receiver: Receiver, path: str) -> list[dict[str, Any]]:
    return [json.loads(r.body)["attachments"][0]["content"] for r in receiver.requests if r.path == path]


async def test_daily_digest_is_one_card_to_the_users_webhook(tmp_path: Path, receiver: Receiver) -> None:
    """Jane (daily) gets one card at 09:00; kim, on the same sends, and the ops channel get theirs at once."""
    clock = ManualClock(datetime(2026, 3, 2, 10, 0, tzinfo=UTC))
    async with start_host("sqlite", config=config(tmp_path, receiver), features=[clock_module(clock)]) as host:
        assert "MSTeams" in (await prefer(host, JANE, mode="daily", at="09:00"))["available"]
        await prefer(host, JOE, mode="daily", at="09:00")  # no webhook of his own
        titles = ["build failed", "build fixed"]
        sent = []
        for title in titles:
            sent.append(await send(host, [JANE, KIM, JOE], title=title, link="/builds"))
            clock.advance(timedelta(minutes=1))
        sent.append(await send(host, ["group:default/ops", JANE], title="ops page", severity="high"))
        for items in sent:
            kims = next(i for i in items if i["user"] == KIM)
            assert (await settled(host, KIM, kims["id"], "MSTeams"))["status"] == "sent"
        assert len(cards_to(receiver, "/kim")) == 3 and len(cards_to(receiver, "/ops")) == 1
        assert cards_to(receiver, "/jane") == []
        janes = [next(i for i in items if i["user"] == JANE) for items in sent]
        entry = await channel_log(host, JANE, janes[0]["id"], "MSTeams")
        assert entry is not None
        assert (entry["status"], entry["heldUntil"]) == ("pending", "2026-03-03T09:00:00.000Z")

        clock.set(datetime(2026, 3, 3, 9, 0, tzinfo=UTC))
        [card] = await eventually(lambda: cards_to(receiver, "/jane"))
        assert [block["text"] for block in card["body"]] == [
            "3 notifications since your last digest",
            "[build failed](https://portal.example.com/builds)",
            "[build fixed](https://portal.example.com/builds)",
            "[ops page](https://portal.example.com/notifications) (high)",
        ]
        assert card["actions"] == [
            {"type": "Action.OpenUrl", "title": "Open inbox", "url": "https://portal.example.com/notifications"}
        ]
        for item in janes:
            assert (await settled(host, JANE, item["id"], "MSTeams"))["status"] == "sent"
        joes = next(i for i in sent[0] if i["user"] == JOE)
        skipped = await settled(host, JOE, joes["id"], "MSTeams")
        assert skipped["status"] == "skipped" and "no microsoft.com/teams-webhook annotation" in skipped["lastError"]
        assert len(cards_to(receiver, "/jane")) == 1


async def test_quiet_hours_hold_then_release_and_critical_bypasses(tmp_path: Path, receiver: Receiver) -> None:
    """Quiet hours hold Jane's card until they end; a critical one and a group's card go at once."""
    clock = ManualClock(datetime(2026, 3, 2, 23, 0, tzinfo=UTC))
    async with start_host("sqlite", config=config(tmp_path, receiver), features=[clock_module(clock)]) as host:
        for who in (JANE, KIM, "user:default/olga"):
            await prefer(host, who, quietHours={"start": "22:00", "end": "07:00"})
        # ops' members are all held, yet the card to the group's own webhook is not per user: at once
        await send(host, "group:default/ops", title="ops at night")
        [ops_card] = await eventually(lambda: cards_to(receiver, "/ops"))
        assert ops_card["body"][0]["items"][0]["text"] == "ops at night"
        [night] = await send(host, JANE, title="night build")
        [urgent] = await send(host, JANE, title="prod down", severity="critical")
        assert (await settled(host, JANE, urgent["id"], "MSTeams"))["status"] == "sent"
        assert [card["body"][0]["items"][0]["text"] for card in cards_to(receiver, "/jane")] == ["prod down"]
        clock.set(datetime(2026, 3, 3, 7, 0, tzinfo=UTC))
        assert (await settled(host, JANE, night["id"], "MSTeams"))["status"] == "sent"
        digest = cards_to(receiver, "/jane")[1]
        assert digest["body"][1]["text"] == "[night build](https://portal.example.com/notifications)"
