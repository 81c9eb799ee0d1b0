"""Changing a user's notifications (read/unread, saved/unsaved, archived, deleted), shared by the routes and actions.

Every change that alters what the caller's inbox shows is signalled to the caller's other
pages on the ``notifications`` channel, at most :data:`SIGNAL_IDS` ids per message.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from plugin_notifications.limits import NotificationLimits
from plugin_notifications.models import Notification
from plugin_notifications.sender import SIGNAL_CHANNEL
from plugin_notifications.store import NotificationsStore

#: Ids per ``notification_read``/``notification_unread`` (and archive, delete) signal (one bus message each).
SIGNAL_IDS = 500


async def _signal(signals: Any, user: str, action: str, ids: Sequence[str]) -> None:
    """Publish ``{"action": action, "notification_ids": [...]}`` to ``user``, in bounded messages."""
    for start in range(0, len(ids), SIGNAL_IDS):
        await signals.publish(
            recipients={"type": "user", "entityRef": [user]},
            channel=SIGNAL_CHANNEL,
            message={"action": action, "notification_ids": list(ids[start : start + SIGNAL_IDS])},
        )


async def update_states(
    store: NotificationsStore,
    signals: Any,
    limits: NotificationLimits,
    user: str,
    ids: Sequence[str],
    *,
    read: bool | None,
    saved: bool | None,
    archived: bool | None = None,
) -> list[Notification]:
    """Set ``read``/``saved``/``archived`` on ``user``'s notifications ``ids``, signal, answer the notifications.

    Read changes are signalled as Backstage does (``notification_read``/``notification_unread``);
    archive changes as ``notification_archived``/``notification_unarchived`` (Greenroom only).
    """
    limits.check_update_ids(ids)
    await store.update_state(user, list(ids), read=read, saved=saved, archived=archived)
    if read is not None:
        await _signal(signals, user, "notification_read" if read else "notification_unread", ids)
    if archived is not None:
        await _signal(signals, user, "notification_archived" if archived else "notification_unarchived", ids)
    return await store.get_notifications(user, list(ids))


async def delete_notifications(
    store: NotificationsStore, signals: Any, limits: NotificationLimits, user: str, ids: Sequence[str]
) -> list[str]:
    """Delete ``user``'s notifications ``ids`` (broadcasts for this user only); signal and answer the deleted ids."""
    limits.check_update_ids(ids)
    deleted = await store.delete_notifications(user, list(ids))
    if deleted:
        await _signal(signals, user, "notification_deleted", deleted)
    return deleted
