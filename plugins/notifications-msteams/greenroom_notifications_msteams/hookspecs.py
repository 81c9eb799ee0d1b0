"""The card renderer hook (pluggy project ``greenroom.notifications.msteams``): a "pick exactly one" slot.

``msteams_card`` is ``firstresult``: the first implementation that returns a
card decides; returning ``None`` lets the next one (and finally the default)
decide. ``@msteams_hookimpl(tryfirst=True)`` puts an implementation first.
Implementations may be ``async``.

Register an object with the hook through the extension point
``notifications.msteams.cards`` (``cards.add_renderer(obj)``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from plugin_notifications import Notification

PROJECT_NAME = "greenroom.notifications.msteams"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
msteams_hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec(firstresult=True)
def msteams_card(notification: Notification, card: dict[str, Any], destination: str) -> dict[str, Any] | None:
    """The Adaptive Card to post for ``notification`` (the ``content`` of the message's attachment).

    :param notification: the notification (``user`` is ``None``: one card serves every recipient).
    :param card: the default card, to return changed or to ignore.
    :param destination: where it goes: the route's channel (``msteams:ops``) or the annotated
        entity's ref (``group:default/ops``).
    :return: a card (a JSON object with ``type: AdaptiveCard``), or ``None`` for the default.

    Use in renderers: optional. Stops at the first non-``None`` result.
    """
