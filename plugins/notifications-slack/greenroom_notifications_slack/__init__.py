"""Slack for Greenroom notifications: install the package, configure ``notifications.processors.slack``.

* :data:`slack_module` - the backend module (``notifications`` / ``slack``), found through the
  entry point ``notifications-slack`` of group ``greenroom.backend_features``.
* :class:`SlackProcessor` - the ``SlackNotificationProcessor`` processor (one durable channel per workspace).
* :class:`SlackConfig`, :class:`SlackWorkspace`, :class:`BroadcastRoute` - the config as pydantic models.
* :data:`slack_block_kit_extension_point`, :data:`slack_hookimpl` - replace the Block Kit blocks.
* :func:`markdown_to_mrkdwn` - Markdown descriptions as Slack ``mrkdwn``.
"""

from greenroom_notifications_slack.hookspecs import slack_hookimpl
from greenroom_notifications_slack.module import slack_module
from greenroom_notifications_slack.mrkdwn import markdown_to_mrkdwn
from greenroom_notifications_slack.processor import PROCESSOR_NAME, SlackProcessor
from greenroom_notifications_slack.render import SlackRenderers, slack_block_kit_extension_point
from greenroom_notifications_slack.settings import BroadcastRoute, SlackConfig, SlackWorkspace, read_slack_config

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
