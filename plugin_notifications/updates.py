"""Marking a user's notifications read/unread and saved/unsaved, shared by the route and the action."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from plugin_notifications.limits import NotificationLimits
from plugin_notifications.models import Notification
from plugin_notifications.sender import SIGNAL_CHANNEL
from plugin_notifications.store import NotificationsStore

#: Ids per ``notification_read``/``notification_unread`` signal (one bus message each).
SIGNAL_IDS = 500


async def update_states(
    store: NotificationsStore,
    signals: Any,
    limits: NotificationLimits,
    user: str,
    ids: Sequence[str],
    *,
    read: bool | None,
    saved: bool | None,
) -> list[Notification]:
    """Set ``read``/``saved`` on ``user``'s notifications ``ids``, signal read changes, answer the notifications."""
    limits.check_update_ids(ids)
    await store.update_state(user, list(ids), read=read, saved=saved)
    if read is not None:
        action = "notification_read" if read else "notification_unread"
        # Bounded bus messages: at most SIGNAL_IDS ids per signal.
        for start in range(0, len(ids), SIGNAL_IDS):
            await signals.publish(
                recipients={"type": "user", "entityRef": [user]},
                channel=SIGNAL_CHANNEL,
                message={"action": action, "notification_ids": list(ids[start : start + SIGNAL_IDS])},
            )
    return await store.get_notifications(user, list(ids))
