"""A notifications processor: signs the hello plugin's notifications and keeps a delivery log.

Found by the notifications plugin through the entry-point group
``greenroom.notifications.processors``; its name ``HelloStamp`` is also a
settings channel users can switch off.
"""

from __future__ import annotations

from plugin_notifications import Notification, hookimpl

#: ``(user, title)`` of every notification post-processed in this process (read by the tests).
DELIVERED: list[tuple[str | None, str]] = []


# -- start processor --
@hookimpl
def notifications_processor_name() -> str:
    """The processor's name, also its settings channel."""
    return "HelloStamp"


@hookimpl
def notifications_processor_filters() -> dict[str, list[str]]:
    """Leave security notifications alone."""
    return {"excludedTopics": ["security"]}


@hookimpl
def notifications_pre_process(notification: Notification) -> None:
    """Sign the hello plugin's notifications before they are stored."""
    if notification.origin == "plugin:hello":
        notification.payload.description = "Sent by the hello plugin"


@hookimpl
async def notifications_post_process(notification: Notification) -> None:
    """Log each stored notification (a real processor would deliver it elsewhere)."""
    DELIVERED.append((notification.user, notification.payload.title))


# -- end processor --
