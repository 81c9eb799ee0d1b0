"""Microsoft Teams for Greenroom notifications: install the package, configure ``notifications.processors.msteams``.

* :data:`msteams_module` - the backend module (``notifications`` / ``msteams``), found through
  the entry point ``notifications-msteams`` of group ``greenroom.backend_features``.
* :class:`MSTeamsProcessor` - the ``MSTeams`` processor (a durable channel per route, and ``MSTeams``
  for entities annotated ``microsoft.com/teams-webhook``).
* :func:`default_card`, :func:`message_body` - the Adaptive Card and the Workflows message shape.
* :data:`msteams_cards_extension_point`, :data:`msteams_hookimpl` - replace the card
  (the ``firstresult`` hook ``msteams_card``, see :mod:`.hookspecs`).
* :class:`MSTeamsConfig`, :class:`TeamsRoute` - the config section as pydantic models.
"""

from greenroom_notifications_msteams.card import default_card, message_body
from greenroom_notifications_msteams.hookspecs import msteams_hookimpl
from greenroom_notifications_msteams.module import msteams_module
from greenroom_notifications_msteams.processor import ANNOTATION_CHANNEL, PROCESSOR_NAME, MSTeamsProcessor
from greenroom_notifications_msteams.renderers import CardRenderers, msteams_cards_extension_point
from greenroom_notifications_msteams.settings import ANNOTATION, MSTeamsConfig, TeamsRoute, read_msteams_config

__all__ = [
    "ANNOTATION",
    "ANNOTATION_CHANNEL",
    "PROCESSOR_NAME",
    "CardRenderers",
    "MSTeamsConfig",
    "MSTeamsProcessor",
    "TeamsRoute",
    "default_card",
    "message_body",
    "msteams_cards_extension_point",
    "msteams_hookimpl",
    "msteams_module",
    "read_msteams_config",
]
