"""Email content: the default subject, HTML and text, and the template extension point.

Another module of plugin ``notifications`` may replace parts of the content::

    from greenroom_notifications_email import email_templates_extension_point

    class Branded:
        async def get_subject(self, notification):
            return f"[Portal] {notification.payload.title}"

        def get_html(self, notification):   # sync or async; any method may be left out
            return render_my_html(notification)

    def register(reg):
        reg.register_init(
            deps={"templates": email_templates_extension_point},
            init=lambda templates: templates.set_template_renderer(Branded()),
        )

    branded_email = create_backend_module("notifications", "email-branding", register)

Parts a renderer leaves out (or returns ``None`` for) use the defaults
below. Only one renderer may be set this way; it becomes an implementation
of the ``firstresult`` hooks in :mod:`greenroom_notifications_email.hookspecs`,
which the content is asked through (so hook renderers added with
``add_renderer`` and ordered with ``tryfirst``/``trylast`` work too).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

import jinja2
import pluggy

from greenroom_notifications_email import hookspecs
from host.features import create_extension_point
from plugin_notifications import Notification

#: The parts of an email: hook name -> Backstage-style renderer method.
_PARTS = {"email_subject": "get_subject", "email_text": "get_text", "email_html": "get_html"}

#: Modules call ``set_template_renderer(renderer)`` on what this point gives them.
email_templates_extension_point = create_extension_point("notifications.email.templates")

_HTML = jinja2.Environment(autoescape=True).from_string(
    "<!DOCTYPE html>\n<html><body>\n"
    "{% if description %}<p>{{ description }}</p>\n{% endif %}"
    '<p><a href="{{ link }}">{{ link }}</a></p>\n'
    "</body></html>\n"
)
_TEXT = jinja2.Environment(autoescape=False, keep_trailing_newline=True).from_string(
    "{% if description %}{{ description }}\n\n{% endif %}{{ link }}\n"
)


@dataclass(frozen=True)
class EmailContent:
    """What one notification's emails say."""

    subject: str
    text: str
    html: str


def notification_link(notification: Notification, base_url: str) -> str:
    """The absolute link of a notification; ``{base_url}/notifications`` when it has none.

    Relative links resolve below ``base_url`` (keeping its path), as the
    notifications plugin validates them.
    """
    base = base_url.rstrip("/")
    link = notification.payload.link
    if not link:
        return f"{base}/notifications"
    if urlsplit(link).scheme:
        return link
    return urljoin(f"{base}/", link.lstrip("/"))


def default_content(notification: Notification, base_url: str) -> EmailContent:
    """Subject = title; HTML = description paragraph and anchor; text = description, blank line, link."""
    values = {"description": notification.payload.description, "link": notification_link(notification, base_url)}
    return EmailContent(subject=notification.payload.title, text=_TEXT.render(values), html=_HTML.render(values))


class _RendererPlugin:
    """Adapts a Backstage-style renderer object to the email hooks (only the methods it has)."""

    def __init__(self, renderer: Any) -> None:
        self.renderer = renderer
        for hook, method in _PARTS.items():
            func = getattr(renderer, method, None)
            if func is not None:
                setattr(self, hook, hookspecs.email_hookimpl(specname=hook)(_call_with(func)))


def _call_with(func: Any) -> Any:
    def part(notification: Notification) -> Any:
        return func(notification)

    return part


class EmailTemplates:
    """The ``notifications.email.templates`` extension point: the email hooks' plugin manager."""

    def __init__(self) -> None:
        self.plugin_manager = pluggy.PluginManager(hookspecs.PROJECT_NAME)
        self.plugin_manager.add_hookspecs(hookspecs)
        self._renderer_set = False

    def add_renderer(self, renderer: object) -> None:
        """Register an object (or module) implementing email hooks with ``@email_hookimpl``."""
        self.plugin_manager.register(renderer)
        try:
            self.plugin_manager.check_pending()
        except pluggy.PluginValidationError:
            self.plugin_manager.unregister(renderer)
            raise

    def set_template_renderer(self, renderer: Any) -> None:
        """Use ``renderer`` (``get_subject``/``get_text``/``get_html``, each optional, sync or async)."""
        if self._renderer_set:
            raise RuntimeError("Email template renderer already set")
        self._renderer_set = True
        self.add_renderer(_RendererPlugin(renderer))

    async def render(self, notification: Notification, base_url: str) -> EmailContent:
        """The content for ``notification``: what the hooks answer, defaults for the rest."""
        default = default_content(notification, base_url)
        if not self.plugin_manager.get_plugins():
            return default
        return EmailContent(
            subject=await self._part("email_subject", notification) or default.subject,
            text=await self._part("email_text", notification) or default.text,
            html=await self._part("email_html", notification) or default.html,
        )

    async def _part(self, hook: str, notification: Notification) -> str | None:
        """Call ``hook`` through pluggy (the first answer wins)."""
        result = getattr(self.plugin_manager.hook, hook)(notification=notification)
        text: str | None = await result if inspect.isawaitable(result) else result
        return text
