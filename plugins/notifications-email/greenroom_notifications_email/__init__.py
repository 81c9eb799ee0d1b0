"""Email for Greenroom notifications: install the package, configure ``notifications.processors.email``.

* :data:`email_module` - the backend module (``notifications`` / ``email``), found through
  the entry point ``notifications-email`` of group ``greenroom.backend_features``.
* :data:`email_templates_extension_point` - other modules set a template renderer
  (``firstresult`` hooks marked with :data:`email_hookimpl`, see :mod:`.hookspecs`).
* :class:`EmailProcessor` - the ``Email`` processor itself (for tests and custom wiring).
* :class:`Transport` and :func:`register_transport` - where messages go (``smtp``, ``ses``,
  ``sendmail``, ``stream`` are built in, see :mod:`.transport`).
"""

from greenroom_notifications_email.hookspecs import email_hookimpl
from greenroom_notifications_email.module import email_module
from greenroom_notifications_email.processor import PROCESSOR_NAME, EmailProcessor, screen_addresses
from greenroom_notifications_email.settings import EmailSettings, read_email_settings
from greenroom_notifications_email.templates import (
    EmailContent,
    EmailTemplates,
    default_content,
    email_templates_extension_point,
)
from greenroom_notifications_email.transport import Transport, create_transport, register_transport

__all__ = [
    "PROCESSOR_NAME",
    "EmailContent",
    "EmailProcessor",
    "EmailSettings",
    "EmailTemplates",
    "Transport",
    "create_transport",
    "default_content",
    "email_hookimpl",
    "email_module",
    "email_templates_extension_point",
    "read_email_settings",
    "register_transport",
    "screen_addresses",
]
