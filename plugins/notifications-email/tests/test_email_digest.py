"""Digests by email: a user in daily mode gets one summary email with every held notification at the chosen time.

Time is a manual clock installed through ``notifications.processing`` (no sleeps); the SMTP server is real.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from email_servers import SmtpServer, send, smtp_server  # noqa: F401 - the smtp fixture
from test_email_processor import email_config, user

from host.testing import eventually
from plugin_notifications.clock import ManualClock
from tests.conftest import start_host
from tests.notifications.conftest import Api
from tests.outbox.conftest import clock_module


async def test_daily_digest_is_one_email_at_the_chosen_time(smtp: SmtpServer) -> None:
    clock = ManualClock(datetime(2026, 3, 2, 10, 0, tzinfo=UTC))  # Monday, 11:00 in Berlin
    async with start_host(config=email_config(smtp.port), features=[clock_module(clock)]) as host:
        api = Api(host)
        daily = {"channels": [{"channel": "Email", "mode": "daily", "at": "09:00", "timezone": "Europe/Berlin"}]}
        response = await host.client.put(
            "/api/notifications/preferences", json=daily, headers=await api.headers("user:default/jane")
        )
        assert response.status_code == 200, response.text
        titles = ["build failed", "build fixed", "deploy done"]
        sent = []
        for title in titles:  # a minute apart: the digest lists them oldest first
            sent += await send(host, user("jane"), title=title, description=f"about {title}")
            clock.advance(timedelta(minutes=1))
        await send(host, user("john"), title="for john")  # John has no preferences: at once
        [johns] = await eventually(lambda: smtp.sink.messages)
        assert johns["To"] == "john@example.com"
        log = (await api.get("user:default/jane", f"/{sent[0]['id']}/deliveries")).json()
        assert log["channels"][1] == {
            **log["channels"][1],
            "status": "pending",
            "heldUntil": "2026-03-03T08:00:00.000Z",
        }
        clock.set(datetime(2026, 3, 3, 8, 0, tzinfo=UTC))  # Tuesday, 09:00 in Berlin
        await eventually(lambda: len(smtp.sink.messages) == 2)
        digest = smtp.sink.messages[1]
        assert digest["To"] == "jane@example.com" and digest["Subject"] == "3 notifications"
        text = digest.get_body(("plain",)).get_content()
        assert [line[2:] for line in text.splitlines() if line.startswith("- ")] == titles
        assert "about deploy done" in digest.get_body(("html",)).get_content()
        for item in sent:
            log = (await api.get("user:default/jane", f"/{item['id']}/deliveries")).json()
            assert log["channels"][1]["status"] == "sent"
        assert len(smtp.sink.messages) == 2  # one email for the three
