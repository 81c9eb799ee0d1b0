"""Slack digests and quiet hours: held DMs come as one digest DM at the release time (a manual clock, no sleeps).

A host per test (each installs its own clock), on SQLite, against the local fake Slack Web API.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from greenroom_notifications_slack.digest import MAX_BLOCKS, digest_message
from slack_fake_api import FakeSlack
from test_slack_outbox import CHANNEL, JANE, JOE, OPS, send, settled, slack_config, to

from host.testing import HostHandle, eventually
from plugin_notifications import Notification
from plugin_notifications.clock import ManualClock
from tests.conftest import start_host
from tests.outbox.conftest import clock_module

PROCESSOR = "SlackNotificationProcessor"


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    with FakeSlack(users={"jane@example.com": "U0JANE", "olga@example.com": "U0OLGA"}).start() as served:
        yield served


async def prefer(host: HostHandle, who: str, **preference: Any) -> dict[str, Any]:
    """PUT ``who``'s Slack preference; return the answer."""
    body = {"channels": [{"channel": PROCESSOR, **preference}]}
    response = await host.client.put("/api/notifications/preferences", json=body, headers=await host.user_headers(who))
    assert response.status_code == 200, response.text
    return dict(response.json())


async def log_entry(host: HostHandle, who: str, notification_id: str) -> dict[str, Any]:
    response = await host.client.get(
        f"/api/notifications/{notification_id}/deliveries", headers=await host.user_headers(who)
    )
    return dict(next(e for e in response.json()["channels"] if e["channel"] == CHANNEL))


def posts_to(fake: FakeSlack, user_id: str) -> list[dict[str, Any]]:
    return [call.args for call in fake.of("chat.postMessage") if call.args["channel"] == user_id]


async def test_daily_digest_is_one_dm_at_the_chosen_time(fake: FakeSlack) -> None:
    """Jane (daily) gets one DM listing every held notification; Joe, on the same sends, gets his at once."""
    clock = ManualClock(datetime(2026, 3, 2, 10, 0, tzinfo=UTC))  # Monday, 11:00 in Berlin
    config = slack_config(fake, broadcastChannels=["C0ALL"], concurrencyLimit=1000)
    async with start_host("sqlite", config=config, features=[clock_module(clock)]) as host:
        answer = await prefer(host, JANE, mode="daily", at="09:00", timezone="Europe/Berlin")
        assert PROCESSOR in answer["available"]
        titles = ["build failed", "build fixed", "deploy done"]
        sent = []
        for title in titles:  # a minute apart: the digest lists them oldest first
            sent.append(await send(host, to(JANE, JOE), title=title, link=f"/builds/{len(sent)}"))
            clock.advance(timedelta(minutes=1))
        with_group = await send(host, to(OPS, JANE), title="ops page")  # the channel message is not held
        for items in [*sent, with_group]:
            joes_or_olgas = next(i for i in items if i["user"] != JANE)
            assert (await settled(host, joes_or_olgas["user"], joes_or_olgas["id"]))["status"] == "sent"
        assert sorted(args["text"] for args in posts_to(fake, "U0JOE")) == sorted(titles)
        assert len(posts_to(fake, "C0OPS")) == 1 and posts_to(fake, "U0JANE") == []
        assert posts_to(fake, "C0ALL") == []  # no broadcast fallback either
        janes = [next(i for i in items if i["user"] == JANE) for items in [*sent, with_group]]
        entry = await log_entry(host, JANE, janes[0]["id"])
        assert (entry["status"], entry["heldUntil"]) == ("pending", "2026-03-03T08:00:00.000Z")

        clock.set(datetime(2026, 3, 3, 8, 0, tzinfo=UTC))  # Tuesday, 09:00 in Berlin
        [dm] = await eventually(lambda: posts_to(fake, "U0JANE"))
        blocks = dm["blocks"]
        assert blocks[0]["type"] == "header"
        assert blocks[0]["text"]["text"] == "4 notifications since your last digest"
        lines = [block["text"]["text"] for block in blocks[1:]]
        assert lines == [
            *(f"*<https://portal.example.com/builds/{n}|{title}>*" for n, title in enumerate(titles)),
            "*<https://portal.example.com/notifications|ops page>*",
        ]
        assert dm["metadata"]["event_type"] == "greenroom_notification"
        for item in janes:
            assert (await settled(host, JANE, item["id"]))["status"] == "sent"
        assert len(posts_to(fake, "U0JANE")) == 1


async def test_quiet_hours_hold_then_release_and_critical_bypasses(fake: FakeSlack) -> None:
    """Within quiet hours Jane's DM waits for their end; a critical one goes at once; no broadcast fallback."""
    clock = ManualClock(datetime(2026, 3, 2, 23, 0, tzinfo=UTC))
    config = slack_config(fake, broadcastChannels=["C0ALL"], concurrencyLimit=1000)
    async with start_host("sqlite", config=config, features=[clock_module(clock)]) as host:
        await prefer(host, JANE, quietHours={"start": "22:00", "end": "07:00"})
        [night] = await send(host, to(JANE), title="night build")
        [urgent] = await send(host, to(JANE), title="prod down", severity="critical")
        assert (await settled(host, JANE, urgent["id"]))["status"] == "sent"
        assert [args["text"] for args in posts_to(fake, "U0JANE")] == ["prod down"]
        entry = await log_entry(host, JANE, night["id"])
        assert (entry["status"], entry["heldUntil"]) == ("pending", "2026-03-03T07:00:00.000Z")
        # the send's own delivery, with every user held, is no broadcast: nothing went to C0ALL
        assert posts_to(fake, "C0ALL") == []

        clock.set(datetime(2026, 3, 3, 7, 0, tzinfo=UTC))
        assert (await settled(host, JANE, night["id"]))["status"] == "sent"
        digest = posts_to(fake, "U0JANE")[1]
        assert digest["text"] == "night build"
        assert [block["text"]["text"] for block in digest["blocks"]] == [
            "1 notification since your last digest",
            "*<https://portal.example.com/notifications|night build>*",
        ]
        assert posts_to(fake, "C0ALL") == []


async def test_a_user_reached_through_a_group_gets_no_digest_dm(fake: FakeSlack) -> None:
    """Olga (daily) is reached through ops: the channel message goes at once, her held delivery is skipped."""
    clock = ManualClock(datetime(2026, 3, 2, 10, 0, tzinfo=UTC))
    config = slack_config(fake, concurrencyLimit=1000)
    async with start_host("sqlite", config=config, features=[clock_module(clock)]) as host:
        await prefer(host, "user:default/olga", mode="hourly", at="00:30")
        items = await send(host, to(OPS), title="ops page")
        olgas = next(i for i in items if i["user"] == "user:default/olga")
        await eventually(lambda: posts_to(fake, "C0OPS"))
        clock.set(datetime(2026, 3, 2, 10, 30, tzinfo=UTC))
        entry = await settled(host, "user:default/olga", olgas["id"])
        assert entry["status"] == "skipped" and "reached through a group" in entry["lastError"]
        assert posts_to(fake, "U0OLGA") == []


def test_a_long_digest_fits_in_fifty_blocks() -> None:
    notifications = [
        Notification.model_validate(
            {
                "id": str(n),
                "user": JANE,
                "created": "2026-03-02T10:00:00Z",
                "origin": "o",
                "payload": {"title": f"t{n}"},
            }
        )
        for n in range(60)
    ]
    blocks = digest_message(notifications, "https://portal.example.com", None)["blocks"]
    assert len(blocks) == MAX_BLOCKS
    assert blocks[-1]["elements"][0]["text"] == "and 12 more in <https://portal.example.com/notifications|your inbox>"
    assert len(digest_message(notifications[:49], "https://portal.example.com", None)["blocks"]) == MAX_BLOCKS
