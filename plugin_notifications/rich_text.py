"""Rich notification bodies: Markdown in ``payload.description``, opt-in.

Plain text stays the default, and Backstage's clients always receive the
description exactly as it was sent. A description is Markdown when

- ``payload.metadata.descriptionFormat`` is ``"markdown"``, or
- that key is absent and the config default ``notifications.descriptionFormat``
  is ``markdown`` (``plain`` when unset).

Channels render it for their medium: :func:`to_html` (web inbox, email) is
CommonMark rendered by markdown-it-py with raw HTML disabled, then sanitized
by nh3 (an allow-list of tags and attributes, ``http``/``https``/``mailto``
links only). Chat channels convert the Markdown themselves (Slack ``mrkdwn``,
Adaptive Card text), starting from :func:`parse`.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Literal

import nh3

if TYPE_CHECKING:
    from markdown_it import MarkdownIt
    from markdown_it.token import Token

DescriptionFormat = Literal["plain", "markdown"]

#: ``payload.metadata`` key that chooses the format of one notification.
FORMAT_METADATA_KEY = "descriptionFormat"

_ALLOWED_TAGS = {
    "a", "p", "br", "hr", "strong", "em", "del", "s", "code", "pre", "blockquote",
    "ul", "ol", "li", "h1", "h2", "h3", "h4", "h5", "h6",
    "table", "thead", "tbody", "tr", "th", "td",
}  # fmt: skip
_ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "ol": {"start"}, "th": {"align"}, "td": {"align"}}
_ALLOWED_URL_SCHEMES = {"http", "https", "mailto"}


def description_format(metadata: Mapping[str, Any] | None, default: DescriptionFormat = "plain") -> DescriptionFormat:
    """Which format a notification's description is in.

    :param metadata: the notification's ``payload.metadata`` (may be ``None``).
    :param default: the configured default (``notifications.descriptionFormat``).
    :return: ``"markdown"`` or ``"plain"``; an unknown value in metadata counts as plain.
    """
    chosen = (metadata or {}).get(FORMAT_METADATA_KEY)
    if chosen is None:
        return default
    return "markdown" if chosen == "markdown" else "plain"


def configured_default(value: object) -> DescriptionFormat:
    """The config default from the raw value of ``notifications.descriptionFormat`` (``plain`` when unset)."""
    return "markdown" if value == "markdown" else "plain"


@lru_cache(maxsize=1)
def _markdown() -> MarkdownIt:
    # Imported on first use: a host whose notifications are all plain text never loads it.
    from markdown_it import MarkdownIt

    # CommonMark with tables and strikethrough; raw HTML is not passed through.
    return MarkdownIt("commonmark", {"html": False, "linkify": False}).enable(["table", "strikethrough"])


def parse(markdown: str) -> list[Token]:
    """The markdown-it token stream of ``markdown`` (for channels that convert it themselves)."""
    return _markdown().parse(markdown)


def sanitize_html(html: str) -> str:
    """Strip everything outside the allow-list from ``html`` (nh3, links get ``rel="noopener noreferrer"``)."""
    return nh3.clean(
        html,
        tags=_ALLOWED_TAGS,
        attributes=_ALLOWED_ATTRIBUTES,
        url_schemes=_ALLOWED_URL_SCHEMES,
        link_rel="noopener noreferrer",
    )


def to_html(markdown: str) -> str:
    """Render ``markdown`` to safe HTML: no scripts, no raw HTML, no ``javascript:`` links."""
    return sanitize_html(_markdown().render(markdown))


def plain_to_html(text: str) -> str:
    """A plain-text description as HTML: escaped, line breaks kept."""
    escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
    return escaped.replace("\n", "<br>")
