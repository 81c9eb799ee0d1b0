"""The Slack message of a notification: ``text`` (the title), an attachment coloured by severity, Block Kit blocks.

The default blocks (:func:`default_blocks`) are a section with the
description in ``mrkdwn`` and a "View More" button to the notification's
link, then a context line with the severity and the topic. Another module
replaces them through the extension point ``notifications.slack.blockkit``::

    from greenroom_notifications_slack import slack_block_kit_extension_point

    def blocks(payload):
        return [{"type": "section", "text": {"type": "mrkdwn", "text": f"*{payload.title}*"}}]

    def register(reg):
        reg.register_init(
            deps={"renderers": slack_block_kit_extension_point},
            init=lambda renderers: renderers.set_block_kit_renderer(blocks),
        )

    custom_slack = create_backend_module("notifications", "slack-blocks", register)

or with an object implementing the ``firstresult`` hook ``slack_blocks`` of
:mod:`greenroom_notifications_slack.hookspecs` (``renderers.add_renderer(obj)``).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urljoin, urlsplit

from greenroom_notifications_slack import hookspecs
from greenroom_notifications_slack.mrkdwn import escape
from host import await_me_maybe, create_extension_point
from plugin_notifications import Notification
from plugin_notifications.renderers import RendererRegistry

#: Modules call ``set_block_kit_renderer(fn)`` or ``add_renderer(obj)`` on what this point gives them.
slack_block_kit_extension_point = create_extension_point("notifications.slack.blockkit")

#: Attachment colours by severity.
SEVERITY_COLOURS = {"critical": "#E01E5A", "high": "#ECB22E", "normal": "#1D9BD1", "low": "#9CA3AF"}
#: Slack's limits: a section's text, a button's URL, a message's text.
SECTION_TEXT_LIMIT = 3000
BUTTON_URL_LIMIT = 3000
TEXT_LIMIT = 4000


def absolute_link(link: str | None, base_url: str) -> str | None:
    """``link`` made absolute below ``base_url`` (relative links), or ``None`` without one."""
    if not link:
        return None
    if urlsplit(link).scheme:
        return link
    return urljoin(base_url.rstrip("/") + "/", link.lstrip("/"))


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def default_blocks(notification: Notification, description: str | None) -> list[dict[str, Any]]:
    """Description (or "No description provided") with a "View More" link button, then severity and topic."""
    payload = notification.payload
    section: dict[str, Any] = {
        "type": "section",
        "text": {"type": "mrkdwn", "text": _cut(description or "No description provided", SECTION_TEXT_LIMIT)},
    }
    if payload.link and len(payload.link) <= BUTTON_URL_LIMIT:
        section["accessory"] = {
            "type": "button",
            "text": {"type": "plain_text", "text": "View More"},
            "url": payload.link,
            "action_id": "greenroom-view-more",
        }
    context = {
        "type": "context",
        "elements": [
            {"type": "plain_text", "text": f"Severity: {payload.severity or 'normal'}", "emoji": True},
            {"type": "plain_text", "text": f"Topic: {payload.topic or 'N/A'}", "emoji": True},
        ],
    }
    return [section, context]


def message(notification: Notification, blocks: list[dict[str, Any]], username: str | None) -> dict[str, Any]:
    """The ``chat.postMessage`` / ``chat.update`` arguments other than ``channel`` (and ``ts``)."""
    payload = notification.payload
    title = _cut(escape(payload.title), TEXT_LIMIT)
    args: dict[str, Any] = {
        "text": title,
        "attachments": [
            {"color": SEVERITY_COLOURS.get(payload.severity or "normal", SEVERITY_COLOURS["normal"]),
             "blocks": blocks, "fallback": title}
        ],
    }  # fmt: skip
    if username:
        args["username"] = username
    return args


class _FunctionRenderer:
    """Adapts a Backstage-style ``(payload) -> blocks`` function (sync or async) to the hook."""

    def __init__(self, function: Any) -> None:
        self.function = function

    @hookspecs.slack_hookimpl
    def slack_blocks(self, notification: Notification) -> Any:
        return self.function(notification.payload)


class SlackRenderers(RendererRegistry):
    """The ``notifications.slack.blockkit`` extension point: the renderer hook's plugin manager."""

    def __init__(self) -> None:
        super().__init__(hookspecs)
        self._function_set = False

    def set_block_kit_renderer(self, function: Any) -> None:
        """Use ``function(payload) -> blocks`` (sync or async) for every message; only one may be set."""
        if self._function_set:
            raise RuntimeError("Slack block kit renderer was already set")
        self._function_set = True
        self.add_renderer(_FunctionRenderer(function))

    async def blocks(self, notification: Notification, description: str | None) -> list[dict[str, Any]]:
        """The blocks for ``notification``: the first renderer's answer, else :func:`default_blocks`."""
        if self.plugin_manager.get_plugins():
            result = await await_me_maybe(
                self.plugin_manager.hook.slack_blocks(notification=notification, description=description)
            )
            if result is not None:
                if not isinstance(result, list) or not all(isinstance(block, dict) for block in result):
                    raise TypeError("A Slack renderer must return a list of Block Kit blocks (dicts)")
                return result
        return default_blocks(notification, description)
