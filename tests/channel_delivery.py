"""Helpers of the channel modules' end-to-end tests (webhooks, Teams): send through the REST API, read delivery logs."""

from __future__ import annotations

import uuid
from typing import Any

from host.testing import HostHandle, eventually


async def send(host: HostHandle, entity_ref: str | list[str], **payload: Any) -> list[dict[str, Any]]:
    """Send to ``entity_ref`` as the test service (a random title unless given); return the created items."""
    payload.setdefault("title", f"note {uuid.uuid4().hex[:6]}")
    response = await host.client.post(
        "/api/notifications",
        headers=host.service_headers,
        json={"recipients": {"type": "entity", "entityRef": entity_ref}, "payload": payload},
    )
    assert response.status_code == 200, response.text
    return list(response.json())


async def channel_log(host: HostHandle, user: str, notification_id: str, channel: str) -> dict[str, Any] | None:
    """The delivery log entry of ``channel`` for ``user``'s notification (``None`` when the channel has none)."""
    response = await host.client.get(
        f"/api/notifications/{notification_id}/deliveries", headers=await host.user_headers(user)
    )
    assert response.status_code == 200, response.text
    return next((entry for entry in response.json()["channels"] if entry["channel"] == channel), None)


async def settled(host: HostHandle, user: str, notification_id: str, channel: str) -> dict[str, Any]:
    """Wait until ``channel``'s delivery is final (sent, skipped or dead); return its log entry."""

    async def final() -> dict[str, Any] | None:
        entry = await channel_log(host, user, notification_id, channel)
        return entry if entry and entry["status"] in ("sent", "skipped", "dead") else None

    return dict(await eventually(final, timeout=20))
