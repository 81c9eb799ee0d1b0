"""SIGKILL with an email waiting in the outbox: after a restart, the email arrives, once.

The SMTP server is down while the first ``greenroom start`` tries (and fails)
to deliver; the whole process group then gets SIGKILL. A second host on the
same database starts, the SMTP server (a real local aiosmtpd) comes up, and
the email must arrive exactly once: the outbox row was written in the send's
transaction, so the kill cannot lose it.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller

from tests.conftest import drop_pg_schemas, free_port
from tests.faults.conftest import database_options, host_config, serve, wait_for

pytestmark = pytest.mark.faults

ORG = Path(__file__).resolve().parents[2] / "plugins" / "notifications-email" / "tests" / "fixtures" / "email-org.yaml"
JANE = "user:default/jane"


class Sink:
    """Keeps every message aiosmtpd receives."""

    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
        return "250 OK"


def _email_status(url: str, headers: dict[str, str], notification_id: str) -> dict[str, Any] | None:
    log = httpx.get(f"{url}/api/notifications/{notification_id}/deliveries", headers=headers, timeout=10).json()
    found = [channel for channel in log["channels"] if channel["channel"] == "Email"]
    return found[0] if found else None


@pytest.mark.parametrize("db", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_sigkill_with_smtp_down_then_restart_delivers_the_email(db: str, tmp_path: Path) -> None:
    smtp_port = free_port()  # nothing listens here yet
    prefix = f"gr_{uuid.uuid4().hex[:8]}_"
    config = host_config(
        tmp_path,
        **database_options(db, prefix),
        catalog={"locations": [{"type": "file", "target": str(ORG)}]},
        notifications={
            "processors": {
                "email": {
                    "sender": "greenroom@example.com",
                    "throttleInterval": {"milliseconds": 1},
                    "transportConfig": {"transport": "smtp", "hostname": "127.0.0.1", "port": smtp_port},
                }
            },
            "delivery": {
                "maxAttempts": 1000,
                "backoff": {"initial": {"milliseconds": 100}, "max": {"milliseconds": 300}},
                "pollInterval": {"milliseconds": 200},
                "leaseSeconds": 2,
            },
        },
    )
    sink = Sink()
    controller: Controller | None = None
    try:
        with serve(config, tmp_path, name="first") as host:
            body = {"recipients": {"type": "entity", "entityRef": JANE}, "payload": {"title": "survives SIGKILL"}}
            response = httpx.post(f"{host.url}/api/notifications", json=body, headers=host.headers(), timeout=30)
            assert response.status_code == 200, response.text
            [created] = response.json()
            failing = wait_for(
                lambda: (s := _email_status(host.url, host.headers(), created["id"])) and s["attempts"] >= 2 and s,
                30,
                "two failed SMTP attempts",
            )
            assert failing["status"] == "failed" and failing["lastError"]
            host.kill_all()
        controller = Controller(sink, hostname="127.0.0.1", port=smtp_port)
        controller.start()
        with serve(config, tmp_path, name="second") as again:
            [message] = wait_for(lambda: sink.messages, 60, "the email after the restart")
            assert message["To"] == "jane@example.com" and message["Subject"] == "survives SIGKILL"
            status = wait_for(
                lambda: (s := _email_status(again.url, again.headers(), created["id"])) and s["status"] == "sent" and s,
                30,
                "the delivery log to say sent",
            )
            assert message["Message-ID"] == f"<{status['deliveryId']}.0@example.com>"
            time.sleep(0.5)  # a duplicate would come within a poll or two
            assert len(sink.messages) == 1
    finally:
        if controller is not None:
            controller.stop()
        if db == "postgres":
            asyncio.run(drop_pg_schemas(prefix))
