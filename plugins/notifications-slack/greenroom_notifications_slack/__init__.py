"""Slack for Greenroom notifications: install the package, configure ``notifications.processors.slack``.

* :data:`slack_module` - the backend module (``notifications`` / ``slack``), found through the
  entry point ``notifications-slack`` of group ``greenroom.backend_features``.
* :class:`SlackProcessor` - the ``SlackNotificationProcessor`` processor (one durable channel per workspace).
* :class:`SlackConfig`, :class:`SlackWorkspace`, :class:`BroadcastRoute` - the config as pydantic models.
* :data:`slack_block_kit_extension_point`, :data:`slack_hookimpl` - replace the Block Kit blocks.
* :func:`markdown_to_mrkdwn` - Markdown descriptions as Slack ``mrkdwn``.
"""

from typing import TYPE_CHECKING, Any

from greenroom_notifications_slack.hookspecs import slack_hookimpl
from greenroom_notifications_slack.module import slack_module
from greenroom_notifications_slack.mrkdwn import markdown_to_mrkdwn
from greenroom_notifications_slack.render import SlackRenderers, slack_block_kit_extension_point
from greenroom_notifications_slack.settings import BroadcastRoute, SlackConfig, SlackWorkspace, read_slack_config

if TYPE_CHECKING:
    from greenroom_notifications_slack.processor import SlackProcessor

#: The processor's name and settings channel (Backstage's ``getName()``).
PROCESSOR_NAME = "SlackNotificationProcessor"


def __getattr__(name: str) -> Any:
    """``SlackProcessor`` is imported on first use: it brings slack_sdk and aiohttp."""
    if name == "SlackProcessor":
        from greenroom_notifications_slack.processor import SlackProcessor

        return SlackProcessor
    raise AttributeError(name)


__all__ = [
    "PROCESSOR_NAME",
    "BroadcastRoute",
    "SlackConfig",
    "SlackProcessor",
    "SlackRenderers",
    "SlackWorkspace",
    "markdown_to_mrkdwn",
    "read_slack_config",
    "slack_block_kit_extension_point",
    "slack_hookimpl",
    "slack_module",
]
