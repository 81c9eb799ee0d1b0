"""The delivery log of one notification for one recipient: "why am I seeing this?".

Built from what the send recorded at the time: the ``notification_send`` row
(how the resolution reached each user, and which setting decided the web
inbox) and the send's outbox rows (each durable channel's status, attempts,
last error and the setting that allowed or muted it). A large send's deliveries are
planned by a dispatcher shortly after it; until then its channels show as ``pending``
with the setting ``planning``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from plugin_notifications.models import WEB_CHANNEL, format_timestamp
from plugin_notifications.outbox import MUTED, PENDING, SENT, delivery_id
from plugin_notifications.outbox_store import OutboxStore
from plugin_notifications.recipients import resolution_path, via_for


async def delivery_log(
    outbox: OutboxStore,
    notification_id: str,
    user: str | None,
    send: dict[str, Any] | None,
    *,
    created: datetime | None = None,
) -> dict[str, Any]:
    """``{resolution, channels}`` of ``notification_id`` for ``user`` (``None``: a broadcast).

    ``send`` is the notification's ``notification_send`` row: ``None`` when the send recorded
    none (users asked for directly, nothing but the web inbox) and for notifications stored
    before delivery logs existed; only the web inbox is known then. ``created`` is the
    notification's own creation time, the web inbox's delivery time without a send row.
    """
    resolution_data = (send or {}).get("resolution") or {}
    sent_at = send["created"] if send else created
    created_text = format_timestamp(sent_at) if sent_at is not None else None
    if user is None:
        resolution: list[dict[str, Any]] = [{"entityRef": None, "relation": "broadcast"}]
        web_enabled, web_why = True, "broadcast"
    else:
        resolution = (
            resolution_path(via_for(resolution_data, user), user) if send else [{"entityRef": user, "relation": None}]
        )
        web_enabled, web_why = (resolution_data.get("web") or {}).get(user, [True, "default"])
    channels = [
        {
            "channel": WEB_CHANNEL,
            "status": SENT if web_enabled else MUTED,
            "attempts": 1 if web_enabled else 0,
            "lastError": None,
            "updated": created_text,
            "setting": web_why,
        }
    ]
    if send is not None:
        # Read before the rows: a plan swapped for its rows in between shows the rows, not both.
        planning = await outbox.planning_channels(str(send["id"])) or []
        rows = await outbox.rows_of_send(str(send["id"]))
        planned = {row.channel for row in rows}
        for channel in planning:
            if channel in planned:
                continue
            # a large send whose deliveries a dispatcher has yet to plan: settings are read then
            channels.append(
                {
                    "channel": channel,
                    "status": PENDING,
                    "attempts": 0,
                    "lastError": None,
                    "updated": created_text,
                    "setting": "planning",
                }
            )
        for row in rows:
            items = row.items
            for index, item_user in enumerate(items["user"]):
                recipients = items.get("recipients")
                muted = (items.get("muted") or [{}] * len(items["user"]))[index]
                if item_user is None and user is not None and user in muted:  # send scope, switched off
                    channels.append(
                        {
                            "channel": row.channel,
                            "status": MUTED,
                            "attempts": 0,
                            "lastError": None,
                            "updated": created_text,
                            "setting": muted[user],
                        }
                    )
                    continue
                mine = (
                    item_user == user
                    or (item_user is None and (user is None or (recipients and user in recipients[index])))
                    or items["nid"][index] == notification_id
                )
                if not mine:
                    continue
                channels.append(
                    {
                        "channel": row.channel,
                        "status": items["status"][index],
                        "attempts": items["attempts"][index],
                        "lastError": items["error"][index],
                        "updated": items["updated"][index] or created_text,
                        "setting": items["why"][index],
                        "deliveryId": delivery_id(row.row_id, index),
                    }
                )
                held = items.get("held")
                if held and items["status"][index] == PENDING:  # waiting for a digest or the end of quiet hours
                    channels[-1]["heldUntil"] = held[index]
    return {"notificationId": notification_id, "user": user, "resolution": resolution, "channels": channels}
