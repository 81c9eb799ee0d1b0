"""A SIGKILLed ``greenroom start`` loses no webhook: after a restart the outbox delivers it.

* Receiver down: the send is accepted, the dispatcher fails to connect (the
  delivery log says ``failed``), the whole process group gets SIGKILL (likely
  holding the row's lease, as it retries every few hundred ms), the receiver
  comes up, the host starts again on the same database and, once the lease
  (2 s here) has expired, the message arrives, signed.
* Receiver holding the request: the host is killed while the POST is in
  flight (the row is claimed); after the restart the lease expires, the row
  is claimed again and the receiver gets the same message with the same
  ``webhook-id`` (at least once; receivers deduplicate on it).

Runs on SQLite and PostgreSQL (own schemas on the shared server).
"""

from __future__ import annotations

import asyncio
import base64
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from standardwebhooks import Webhook

from tests.conftest import drop_pg_schemas, pg_connection_config
from tests.faults.conftest import Served, host_config, serve, wait_for
from tests.http_receiver import Receiver

pytestmark = pytest.mark.faults

ORG = Path(__file__).parent / "fixtures" / "webhook-org.yaml"
SECRET = "whsec_" + base64.b64encode(os.urandom(32)).decode()
JANE = "user:default/jane"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest) -> Iterator[dict[str, Any] | None]:
    """``backend.database`` for the test (``None``: SQLite under the test's directory)."""
    if request.param == "sqlite":
        yield None
        return
    prefix = f"gr_{uuid.uuid4().hex[:8]}_"
    try:
        yield {"client": "pg", "connection": pg_connection_config(), "pluginDivisionMode": "schema", "prefix": prefix}
    finally:
        asyncio.run(drop_pg_schemas(prefix))


def config(tmp_path: Path, database: dict[str, Any] | None, receiver: Receiver, **delivery: Any) -> dict[str, Any]:
    events = {"postgres": {"channel": f"{database['prefix']}events"}} if database else {}
    return host_config(
        tmp_path,
        database=database,
        events=events,
        catalog={"locations": [{"type": "file", "target": str(ORG)}]},
        notifications={
            "delivery": {
                "maxAttempts": 100,
                "backoff": {"initial": {"milliseconds": 100}, "max": {"milliseconds": 300}},
                "pollInterval": {"milliseconds": 100},
                "leaseSeconds": 2,
                **delivery,
            },
            "processors": {
                "webhook": {
                    "endpoints": [{"url": receiver.url, "secret": SECRET, "name": "main"}],
                    "timeout": {"seconds": 30},
                }
            },
        },
    )


def send(host: Served, title: str) -> str:
    """Send one notification to jane; return its id."""
    response = httpx.post(
        f"{host.url}/api/notifications",
        headers=host.headers(),
        timeout=30,
        json={"recipients": {"type": "entity", "entityRef": JANE}, "payload": {"title": title}},
    )
    assert response.status_code == 200, response.text
    return str(response.json()[0]["id"])


def webhook_status(host: Served, notification_id: str) -> dict[str, Any] | None:
    """The ``webhook:main`` entry of the notification's delivery log (read with the service token)."""
    response = httpx.get(
        f"{host.url}/api/notifications/{notification_id}/deliveries", headers=host.headers(), timeout=10
    )
    assert response.status_code == 200, response.text
    return next((c for c in response.json()["channels"] if c["channel"] == "webhook:main"), None)


def test_a_webhook_survives_sigkill_while_the_receiver_is_down(tmp_path: Path, database: dict[str, Any] | None) -> None:
    receiver = Receiver()  # not listening yet: connection refused
    settings = config(tmp_path, database, receiver)
    try:
        with serve(settings, tmp_path, name="first") as host:
            notification_id = send(host, title := f"kill {uuid.uuid4().hex[:6]}")
            wait_for(
                lambda: (webhook_status(host, notification_id) or {}).get("status") == "failed",
                30,
                "a failed attempt against the receiver that is down",
            )
            host.kill_all()
        receiver.start()
        with serve(settings, tmp_path, name="second") as again:
            wait_for(receiver.accepted, 30, "the webhook after the restart")
            wait_for(
                lambda: (webhook_status(again, notification_id) or {}).get("status") == "sent",
                30,
                "the delivery log to say sent",
            )
        [accepted] = receiver.accepted()
        body = Webhook(SECRET).verify(accepted.body, accepted.headers)
        assert body["data"]["notification"]["payload"]["title"] == title
        assert body["data"]["recipients"] == [JANE]
    finally:
        receiver.stop()


def test_a_webhook_in_flight_at_sigkill_is_delivered_again_with_the_same_id(
    tmp_path: Path, database: dict[str, Any] | None
) -> None:
    receiver = Receiver(hang=True).start()
    settings = config(tmp_path, database, receiver)
    try:
        with serve(settings, tmp_path, name="first") as host:
            send(host, "in flight")
            wait_for(lambda: receiver.held, 30, "the POST to reach the receiver")
            host.kill_all()
        receiver.release()
        with serve(settings, tmp_path, name="second"):
            wait_for(receiver.accepted, 30, "the webhook again after the lease expired")
        [in_flight] = receiver.held
        [accepted] = receiver.accepted()
        assert accepted.headers["webhook-id"] == in_flight.headers["webhook-id"]
        assert accepted.body == in_flight.body
        Webhook(SECRET).verify(accepted.body, accepted.headers)
    finally:
        receiver.stop()
