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

from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

import jinja2
import markupsafe

from greenroom_notifications_email import hookspecs
from host import await_me_maybe, create_extension_point
from plugin_notifications import Notification, rich_text
from plugin_notifications.renderers import RendererRegistry
from plugin_notifications.rich_text import DescriptionFormat

#: The parts of an email: hook name -> Backstage-style renderer method.
_PARTS = {"email_subject": "get_subject", "email_text": "get_text", "email_html": "get_html"}

#: Modules call ``set_template_renderer(renderer)`` on what this point gives them.
email_templates_extension_point = create_extension_point("notifications.email.templates")

_HTML = jinja2.Environment(autoescape=True).from_string(
    "<!DOCTYPE html>\n<html><body>\n"
    "{% if description_html %}<div>{{ description_html }}</div>\n"
    "{% elif description %}<p>{{ description }}</p>\n{% endif %}"
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


def markdown_to_text(markdown: str) -> str:
    """A readable plain-text rendering of ``markdown``: no markup, links as ``text (url)``, list markers kept."""
    writer = _TextWriter()
    for token in rich_text.parse(markdown):
        writer.feed(token)
    lines = writer.lines
    while lines and not lines[-1]:
        lines.pop()
    return "\n".join(lines)


class _TextWriter:
    """Turns markdown-it block tokens into lines of plain text."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.lists: list[str] = []  # per open list: "-" or the next number
        self.cells: list[str] | None = None  # the table row being read
        self.quote = 0
        self.item_starts = False

    def feed(self, token: Any) -> None:
        kind = token.type
        if kind in ("bullet_list_open", "ordered_list_open"):
            self.lists.append("-" if kind == "bullet_list_open" else str(token.attrs.get("start") or 1))
        elif kind in ("bullet_list_close", "ordered_list_close"):
            self.lists.pop()
            if not self.lists:
                self.blank()
        elif kind == "list_item_open":
            self.item_starts = True
        elif kind in ("blockquote_open", "blockquote_close"):
            self.quote += 1 if kind == "blockquote_open" else -1
        elif kind in ("paragraph_close", "heading_close", "table_close") and not self.lists:
            self.blank()
        elif kind == "hr":
            self.lines += ["----", ""]
        elif kind in ("fence", "code_block"):
            self.lines += [f"    {line}" for line in token.content.rstrip("\n").split("\n")]
            self.blank()
        elif kind == "tr_open":
            self.cells = []
        elif kind == "tr_close" and self.cells is not None:
            self.lines.append(" | ".join(self.cells))
            self.cells = None
        elif kind == "inline":
            self.inline(_inline_text(token))

    def inline(self, text: str) -> None:
        if self.cells is not None:
            self.cells.append(text)
            return
        lists = self.lists
        indent = "  " * max(0, len(lists) - 1)
        if self.item_starts and lists:
            marker = lists[-1]
            if marker != "-":
                lists[-1] = str(int(marker) + 1)
                marker += "."
            text = f"{indent}{marker} {text}"
            self.item_starts = False
        elif lists:
            text = f"{indent}  {text}"
        self.lines.append(("> " * self.quote) + text)

    def blank(self) -> None:
        if self.lines and self.lines[-1]:
            self.lines.append("")


def _inline_text(token: Any) -> str:
    parts: list[str] = []
    links: list[str] = []
    for child in token.children or []:
        if child.type in ("text", "code_inline"):
            parts.append(child.content)
        elif child.type in ("softbreak", "hardbreak"):
            parts.append("\n")
        elif child.type == "link_open":
            links.append(str(child.attrs.get("href") or ""))
            parts.append("\x00")
        elif child.type == "link_close" and links:
            href = links.pop()
            start = len(parts) - 1 - parts[::-1].index("\x00")
            label = "".join(parts[start + 1 :])
            del parts[start:]
            parts.append(label if href in (label, f"mailto:{label}") or not href else f"{label} ({href})")
        elif child.type == "image":
            parts.append(child.content)
    return "".join(parts)


def default_content(
    notification: Notification, base_url: str, description_format: DescriptionFormat = "plain"
) -> EmailContent:
    """Subject = title; HTML = description and an anchor to the link; text = description, blank line, link.

    A Markdown description (``metadata.descriptionFormat``, else ``description_format``) is rendered
    to sanitized HTML (:func:`plugin_notifications.rich_text.to_html`) and to readable text; a plain one
    is escaped into a paragraph and kept as it is in the text part.
    """
    description = notification.payload.description
    link = notification_link(notification, base_url)
    fmt = rich_text.description_format(notification.payload.metadata, description_format)
    if description and fmt == "markdown":
        html = _HTML.render(description_html=markupsafe.Markup(rich_text.to_html(description)), link=link)
        text = _TEXT.render(description=markdown_to_text(description), link=link)
        return EmailContent(subject=notification.payload.title, text=text, html=html)
    values = {"description": description, "link": link}
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


class EmailTemplates(RendererRegistry):
    """The ``notifications.email.templates`` extension point: the email hooks' plugin manager."""

    def __init__(self) -> None:
        super().__init__(hookspecs)
        self._renderer_set = False

    def set_template_renderer(self, renderer: Any) -> None:
        """Use ``renderer`` (``get_subject``/``get_text``/``get_html``, each optional, sync or async)."""
        if self._renderer_set:
            raise RuntimeError("Email template renderer already set")
        self._renderer_set = True
        self.add_renderer(_RendererPlugin(renderer))

    async def render(
        self, notification: Notification, base_url: str, description_format: DescriptionFormat = "plain"
    ) -> EmailContent:
        """The content for ``notification``: what the hooks answer, defaults for the rest.

        ``description_format`` is the configured default (``notifications.descriptionFormat``).
        """
        default = default_content(notification, base_url, description_format)
        if not self.plugin_manager.get_plugins():
            return default
        return EmailContent(
            subject=await self._part("email_subject", notification) or default.subject,
            text=await self._part("email_text", notification) or default.text,
            html=await self._part("email_html", notification) or default.html,
        )

    async def _part(self, hook: str, notification: Notification) -> str | None:
        """Call ``hook`` through pluggy (the first answer wins)."""
        text: str | None = await await_me_maybe(getattr(self.plugin_manager.hook, hook)(notification=notification))
        return text
