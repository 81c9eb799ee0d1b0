"""Notifications: a Backstage-compatible inbox with broadcasts, settings and processors.

* :data:`notifications_plugin` - the backend plugin (``/api/notifications``).
* :data:`notification_service_ref` / :class:`NotificationService` - how other plugins send.
* :data:`notifications_processing_extension_point` - modules add processors or a recipient resolver.
* :data:`hookimpl` - marks processor hook implementations (see :mod:`plugin_notifications.hookspecs`).
"""

from plugin_notifications.hookspecs import ENTRY_POINT_GROUP, hookimpl
from plugin_notifications.models import Notification, NotificationPayload, NotificationSendOptions
from plugin_notifications.plugin import notifications_plugin, notifications_processing_extension_point
from plugin_notifications.processing import ProcessorFilters, ProcessorRegistry
from plugin_notifications.service import NotificationSendError, NotificationService, notification_service_ref

__all__ = [
    "ENTRY_POINT_GROUP",
    "Notification",
    "NotificationPayload",
    "NotificationSendError",
    "NotificationSendOptions",
    "NotificationService",
    "ProcessorFilters",
    "ProcessorRegistry",
    "hookimpl",
    "notification_service_ref",
    "notifications_plugin",
    "notifications_processing_extension_point",
]
