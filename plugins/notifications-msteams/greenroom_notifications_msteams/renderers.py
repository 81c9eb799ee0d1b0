"""The ``notifications.msteams.cards`` extension point: modules that replace the default card.

::

    from greenroom_notifications_msteams import msteams_cards_extension_point, msteams_hookimpl

    class Branded:
        @msteams_hookimpl
        def msteams_card(self, notification, card):
            card["body"].insert(0, {"type": "TextBlock", "text": "Portal", "isSubtle": True})
            return card

    def register(reg):
        reg.register_init(
            deps={"cards": msteams_cards_extension_point},
            init=lambda cards: cards.add_renderer(Branded()),
        )

    branded_cards = create_backend_module("notifications", "msteams-branding", register)
"""

from __future__ import annotations

import inspect
from typing import Any

from greenroom_notifications_msteams import hookspecs
from host import create_extension_point
from plugin_notifications import Notification
from plugin_notifications.renderers import RendererRegistry

#: Modules call ``add_renderer(obj)`` on what this point gives them.
msteams_cards_extension_point = create_extension_point("notifications.msteams.cards")


class CardRenderers(RendererRegistry):
    """The ``notifications.msteams.cards`` extension point: the card hook's plugin manager."""

    def __init__(self) -> None:
        super().__init__(hookspecs)

    async def card(self, notification: Notification, card: dict[str, Any], destination: str) -> dict[str, Any]:
        """The card for ``notification``: the first renderer's answer, else ``card``."""
        if not self.plugin_manager.get_plugins():
            return card
        result = self.plugin_manager.hook.msteams_card(notification=notification, card=card, destination=destination)
        chosen = await result if inspect.isawaitable(result) else result
        if chosen is None:
            return card
        if not isinstance(chosen, dict) or chosen.get("type") != "AdaptiveCard":
            raise TypeError("msteams_card must return an Adaptive Card (a dict with type AdaptiveCard) or None")
        return chosen
