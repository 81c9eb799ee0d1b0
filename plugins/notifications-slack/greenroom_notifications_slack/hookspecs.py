"""The Slack renderer hook (pluggy project ``greenroom.notifications.slack``): a "pick exactly one" slot.

``slack_blocks`` is ``firstresult``: the first implementation that returns a
list of Block Kit blocks decides the blocks of a notification's message;
``None`` lets the next one (and finally the default renderer) decide.
``@slack_hookimpl(tryfirst=True)`` puts an implementation first; an
implementation may be ``async``.

Register an object with the hook through the extension point
``notifications.slack.blockkit`` (``renderers.add_renderer(obj)``), or set a
Backstage-style function ``(payload) -> blocks`` with
``renderers.set_block_kit_renderer(fn)``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from plugin_notifications import Notification

PROJECT_NAME = "greenroom.notifications.slack"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
slack_hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec(firstresult=True)
def slack_blocks(notification: Notification, description: str | None) -> list[dict[str, Any]] | None:
    """The Block Kit blocks of the Slack message for ``notification``.

    :param notification: the notification; ``payload.link`` is already absolute.
    :param description: the description as Slack ``mrkdwn`` (Markdown converted or plain text
        escaped, ``<@user:...>`` mentions turned into Slack mentions), ``None`` without one.
    :return: the blocks (they go in the message's attachment, whose colour shows the
        severity), or ``None`` to let the next renderer decide.

    Use in renderers: optional. Stops at the first non-``None`` result.
    """
