"""The Slack digest DM: one message for a user's held notifications (digest modes, quiet hours).

Block Kit, within Slack's 50 blocks a message::

    header   "3 notifications since your last digest"
    section  *<link|title>* (severity when not normal), the description's first line
    ...      one section per notification, oldest first
    context  "and N more in your inbox" (only when they do not all fit)

A notification without a link links to the web inbox (``<app.baseUrl>/notifications``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from greenroom_notifications_slack.mrkdwn import escape
from greenroom_notifications_slack.render import SECTION_TEXT_LIMIT, TEXT_LIMIT, absolute_link
from plugin_notifications.models import Notification

#: Slack's limit on blocks in one message.
MAX_BLOCKS = 50
#: A header block's text limit (plain text).
HEADER_LIMIT = 150
#: How much of a description a digest line shows.
DESCRIPTION_LIMIT = 300


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def inbox_link(base_url: str) -> str:
    """The web inbox: where a notification without a link, and the rest of a long digest, are."""
    return base_url.rstrip("/") + "/notifications"


def _section(notification: Notification, base_url: str) -> dict[str, Any]:
    payload = notification.payload
    link = absolute_link(payload.link, base_url) or inbox_link(base_url)
    title = escape(payload.title).replace("|", "¦")  # ``|`` would end the link's URL part
    text = f"*<{link}|{_cut(title, 1000)}>*"
    if payload.severity and payload.severity != "normal":
        text += f" ({payload.severity})"
    if payload.description:
        first = payload.description.strip().splitlines()[0] if payload.description.strip() else ""
        if first:
            text += "\n" + escape(_cut(first, DESCRIPTION_LIMIT))
    return {"type": "section", "text": {"type": "mrkdwn", "text": _cut(text, SECTION_TEXT_LIMIT)}}


def digest_message(notifications: Sequence[Notification], base_url: str, username: str | None) -> dict[str, Any]:
    """The ``chat.postMessage`` arguments (other than ``channel``) of one digest DM listing ``notifications``."""
    count = len(notifications)
    summary = f"{count} notification{'s' if count != 1 else ''} since your last digest"
    header = {"type": "header", "text": {"type": "plain_text", "text": _cut(summary, HEADER_LIMIT), "emoji": True}}
    room = MAX_BLOCKS - 1  # below the header
    shown = list(notifications) if count <= room else list(notifications[: room - 1])  # one left for "and N more"
    blocks: list[dict[str, Any]] = [header, *(_section(notification, base_url) for notification in shown)]
    if len(shown) < count:
        more = f"and {count - len(shown)} more in <{inbox_link(base_url)}|your inbox>"
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": more}]})
    text = escape(notifications[0].payload.title) if count == 1 else summary
    args: dict[str, Any] = {"text": _cut(text, TEXT_LIMIT), "blocks": blocks}
    if username:
        args["username"] = username
    return args
