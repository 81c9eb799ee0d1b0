"""Signed webhooks for Greenroom notifications: install the package, configure ``notifications.processors.webhook``.

* :data:`webhook_module` - the backend module (``notifications`` / ``webhook``), found through
  the entry point ``notifications-webhook`` of group ``greenroom.backend_features``.
* :class:`WebhookProcessor` - the ``Webhook`` processor (one durable channel per endpoint).
* :class:`WebhookConfig`, :class:`WebhookEndpoint` - the config section as pydantic models.
"""

from greenroom_notifications_webhook.module import webhook_module
from greenroom_notifications_webhook.processor import PROCESSOR_NAME, WebhookProcessor
from greenroom_notifications_webhook.settings import WebhookConfig, WebhookEndpoint, read_webhook_config

__all__ = [
    "PROCESSOR_NAME",
    "WebhookConfig",
    "WebhookEndpoint",
    "WebhookProcessor",
    "read_webhook_config",
    "webhook_module",
]
