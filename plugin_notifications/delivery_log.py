"""The delivery log of one notification for one recipient: "why am I seeing this?".

Built from what the send recorded at the time: the ``notification_send`` row
(how the resolution reached each user, and which setting decided the web
inbox) and the send's outbox rows (each durable channel's status, attempts,
last error and the setting that allowed or muted it). A large send's deliveries are
planned by a dispatcher shortly after it; until then its channels show as ``pending``
with the setting ``planning``.
"""

from __future__ import annotations

from typing import Any

from plugin_notifications.models import WEB_CHANNEL, format_timestamp
from plugin_notifications.outbox import MUTED, PENDING, SENT, delivery_id
from plugin_notifications.outbox_store import OutboxStore
from plugin_notifications.recipients import resolution_path, via_for


async def delivery_log(
    outbox: OutboxStore, notification_id: str, user: str | None, send: dict[str, Any] | None
) -> dict[str, Any]:
    """``{resolution, channels}`` of ``notification_id`` for ``user`` (``None``: a broadcast).

    ``send`` is the notification's ``notification_send`` row (``None`` for
    notifications stored before delivery logs existed: only the web inbox is known).
    """
    resolution_data = (send or {}).get("resolution") or {}
    created = format_timestamp(send["created"]) if send else None
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
            "updated": created,
            "setting": web_why,
        }
    ]
    if send is not None:
        for channel in await outbox.planning_channels(str(send["id"])) or ():
            # a large send whose deliveries a dispatcher has yet to plan: settings are read then
            channels.append(
                {
                    "channel": channel,
                    "status": PENDING,
                    "attempts": 0,
                    "lastError": None,
                    "updated": created,
                    "setting": "planning",
                }
            )
        for row in await outbox.rows_of_send(str(send["id"])):
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
                            "updated": created,
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
                        "updated": items["updated"][index] or created,
                        "setting": items["why"][index],
                        "deliveryId": delivery_id(row.row_id, index),
                    }
                )
                held = items.get("held")
                if held and items["status"][index] == PENDING:  # waiting for a digest or the end of quiet hours
                    channels[-1]["heldUntil"] = held[index]
    return {"notificationId": notification_id, "user": user, "resolution": resolution, "channels": channels}
