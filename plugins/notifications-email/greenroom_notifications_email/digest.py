"""The digest email: one summary message for a user's held notifications (digests, quiet hours).

The notifications plugin releases a user's held deliveries together
(``notifications_deliver_digest``); the email module renders them as one
message: the subject counts them (or is the title when there is one), the
text and HTML bodies list each notification's title, severity, description
and link, oldest first.
"""

from __future__ import annotations

from collections.abc import Sequence

import jinja2

from greenroom_notifications_email.templates import EmailContent, notification_link
from plugin_notifications import Notification

_HTML = jinja2.Environment(autoescape=True).from_string(
    "<!DOCTYPE html>\n<html><body>\n"
    "<p>{{ count }} notification{{ 's' if count != 1 }} since your last digest:</p>\n<ul>\n"
    '{% for item in items %}<li><p><a href="{{ item.link }}">{{ item.title }}</a>'
    "{% if item.severity != 'normal' %} ({{ item.severity }}){% endif %}</p>\n"
    "{% if item.description %}<p>{{ item.description }}</p>\n{% endif %}</li>\n{% endfor %}"
    "</ul>\n</body></html>\n"
)
_TEXT = jinja2.Environment(autoescape=False, keep_trailing_newline=True).from_string(
    "{{ count }} notification{{ 's' if count != 1 }} since your last digest:\n"
    "{% for item in items %}\n- {{ item.title }}{% if item.severity != 'normal' %} ({{ item.severity }}){% endif %}\n"
    "{% if item.description %}  {{ item.description }}\n{% endif %}  {{ item.link }}\n{% endfor %}"
)


def digest_content(notifications: Sequence[Notification], base_url: str) -> EmailContent:
    """One email listing ``notifications`` (oldest first)."""
    items = [
        {
            "title": notification.payload.title,
            "severity": str(notification.payload.severity),
            "description": notification.payload.description,
            "link": notification_link(notification, base_url),
        }
        for notification in notifications
    ]
    count = len(items)
    subject = items[0]["title"] if count == 1 else f"{count} notifications"
    values = {"count": count, "items": items}
    return EmailContent(subject=str(subject), text=_TEXT.render(values), html=_HTML.render(values))
