"""The webhook message: its JSON body and its Standard Webhooks signature headers.

The body follows the Standard Webhooks payload shape::

    {"type": "notification.created",
     "timestamp": "2026-12-01T20:30:00.000Z",          # when the notification was created
     "data": {"notification": {"id", "origin", "created", "payload": {...}, "user"?},
              "recipients": ["user:default/jane", ...],  # the users this endpoint is told about
              "broadcast": false}}

``notification.id`` is the broadcast's id for a broadcast and the send's id
for a send to users (the outbox's ``send`` scope). The body is the same on
every attempt of a delivery; the headers are
``webhook-id`` (the outbox delivery id, stable across retries: receivers
deduplicate on it), ``webhook-timestamp`` (Unix seconds of this attempt) and
``webhook-signature`` (``v1,<base64 HMAC-SHA256 of "id.timestamp.body">``),
computed with the ``standardwebhooks`` package.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from math import floor
from typing import Any

from standardwebhooks import Webhook

from plugin_notifications.models import Notification, format_timestamp

EVENT_TYPE = "notification.created"


def message_body(notification: Notification, recipients: tuple[str, ...], *, broadcast: bool) -> bytes:
    """The UTF-8 JSON body for ``notification`` sent to ``recipients`` (``[]`` for a ``broadcast``)."""
    wire: dict[str, Any] = notification.model_dump(mode="json", exclude_unset=True)
    if wire.get("user") is None:
        wire.pop("user", None)  # a broadcast, or one message for many users: see "recipients"
    body = {
        "type": EVENT_TYPE,
        "timestamp": format_timestamp(notification.created),
        "data": {"notification": wire, "recipients": list(recipients), "broadcast": broadcast},
    }
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


class Signer:
    """Signs messages with one endpoint's ``whsec_`` secret."""

    def __init__(self, secret: str) -> None:
        self._webhook = Webhook(secret)

    def headers(self, message_id: str, body: bytes, now: datetime | None = None) -> dict[str, str]:
        """The three Standard Webhooks headers for ``body`` sent now as message ``message_id``."""
        timestamp = (now or datetime.now(UTC)).astimezone(UTC)
        signature = self._webhook.sign(message_id, timestamp, body.decode("utf-8"))
        return {
            "webhook-id": message_id,
            "webhook-timestamp": str(floor(timestamp.timestamp())),
            "webhook-signature": signature,
        }
