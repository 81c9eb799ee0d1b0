"""The Adaptive Card of a notification, and the message that carries it to a Teams webhook.

The card (Adaptive Cards 1.4, what Workflows and incoming webhooks render)::

    Container (style by severity: critical attention, high warning, normal accent, low default)
      TextBlock  title (bolder, medium)
      TextBlock  severity, origin and topic (coloured by severity, subtle)
    TextBlock(s) the description
    Action.OpenUrl "Open" -> the link (relative links resolve against app.baseUrl),
                   or "Open inbox" -> <app.baseUrl>/notifications without one

TextBlocks always interpret Teams' Markdown subset (bold, italic, bullet and
numbered lists, links), so plain text is escaped. A Markdown description
(:mod:`plugin_notifications.rich_text`) is converted to that subset:
headings become bold lines, code blocks monospace TextBlocks, tables one
line per row, and links are kept only for http, https and mailto URLs;
raw HTML is never interpreted (it stays text).

The message is the shape Microsoft documents for Workflows ("When a Teams
webhook request is received") and incoming webhooks::

    {"type": "message",
     "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive",
                      "contentUrl": null, "content": <the card>}]}
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin, urlsplit

from markdown_it.token import Token

from plugin_notifications.models import Notification
from plugin_notifications.rich_text import DescriptionFormat, description_format, parse

CARD_CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"
CARD_SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"
CARD_VERSION = "1.4"
#: severity -> (Container style, TextBlock colour)
SEVERITY_STYLES = {
    "critical": ("attention", "Attention"),
    "high": ("warning", "Warning"),
    "normal": ("accent", "Accent"),
    "low": ("default", "Default"),
}
_LINK_SCHEMES = ("http", "https", "mailto")
_SPECIAL = re.compile(r"([\\`*_\[\]()~<>#|])")
_BULLET = re.compile(r"^(\s*)([-+])(\s)", re.MULTILINE)
_ORDERED = re.compile(r"^(\s*)(\d+)([.)])(\s)", re.MULTILINE)


def escape(text: str) -> str:
    """``text`` as literal TextBlock text: Markdown punctuation and line-start list markers escaped."""
    escaped = _SPECIAL.sub(r"\\\1", text)
    return _ORDERED.sub(r"\1\2\\\3\4", _BULLET.sub(r"\1\\\2\3", escaped))


def absolute_link(link: str | None, base_url: str) -> str | None:
    """``link`` as an absolute http(s) URL (relative ones below ``base_url``), or ``None``."""
    if not link:
        return None
    if urlsplit(link).scheme:
        return link if urlsplit(link).scheme in ("http", "https") else None
    return urljoin(base_url.rstrip("/") + "/", link.lstrip("/"))


# -- Markdown -> TextBlock subset ---------------------------------------------------------


@dataclass
class _Blocks:
    """Converted description: text paragraphs and monospace (code) blocks, in order."""

    base_url: str
    items: list[tuple[str, str]] = field(default_factory=list)  # ("text" | "code", content)

    def text(self, content: str) -> None:
        if content.strip():
            self.items.append(("text", content))

    def code(self, content: str) -> None:
        if content.strip():
            self.items.append(("code", escape(content.rstrip("\n"))))

    def link(self, href: str) -> str | None:
        scheme = urlsplit(href).scheme.lower()
        if not scheme:
            return urljoin(self.base_url.rstrip("/") + "/", href.lstrip("/"))
        return href if scheme in _LINK_SCHEMES else None


def _inline(tokens: Sequence[Token], blocks: _Blocks) -> str:
    """Inline tokens as TextBlock Markdown."""
    out: list[str] = []
    links: list[str | None] = []
    for token in tokens:
        kind = token.type
        if kind in ("text", "html_inline", "code_inline"):  # inline code: Teams has no code span
            out.append(escape(token.content))
        elif kind in ("strong_open", "strong_close"):
            out.append("**")
        elif kind in ("em_open", "em_close"):
            out.append("_")
        elif kind == "softbreak":
            out.append(" ")
        elif kind == "hardbreak":
            out.append("\n")
        elif kind == "link_open":
            href = blocks.link(str(token.attrGet("href") or ""))
            links.append(href)
            if href is not None:
                out.append("[")
        elif kind == "link_close":
            href = links.pop() if links else None
            if href is not None:
                out.append(f"]({href.replace(')', '%29').replace(' ', '%20')})")
        elif kind == "image":
            out.append(escape(token.content or ""))
        # s_open / s_close (strikethrough) are not in Teams' subset: the text stays, unmarked
    return "".join(out)


class _Converter:
    """Walks markdown-it's block tokens, collecting lines until a block ends."""

    def __init__(self, base_url: str) -> None:
        self.blocks = _Blocks(base_url)
        self.lists: list[list[int]] = []  # per open list: [next number] (ordered) or [] (bullets)
        self.lines: list[str] = []
        self.row: list[str] = []
        self.header = False

    def flush(self, separator: str = "\n") -> None:
        if self.lines:
            self.blocks.text(separator.join(self.lines))
            self.lines.clear()

    def inline(self, tokens: list[Token], index: int) -> None:
        parent = tokens[index - 1].type if index else ""
        text = _inline(tokens[index].children or [], self.blocks)
        if parent in ("th_open", "td_open"):
            self.row.append(f"**{text}**" if self.header and text else text)
        elif parent == "heading_open":  # Teams has no headings: a bold line
            self.lines.append(f"**{text}**" if text else "")
        elif self.lists:
            indent = "  " * (len(self.lists) - 1)
            if index >= 2 and tokens[index - 2].type == "list_item_open":
                numbers = self.lists[-1]
                if numbers:
                    self.lines.append(f"{indent}{numbers[0]}. {text}")
                    numbers[0] += 1
                else:
                    self.lines.append(f"{indent}- {text}")
            else:  # a later paragraph of the same item
                self.lines.append(f"{indent}  {text}")
        else:
            self.lines.append(text)

    def block(self, token: Token) -> None:
        kind = token.type
        if kind in ("bullet_list_open", "ordered_list_open"):
            if not self.lists:
                self.flush()
            self.lists.append([int(token.attrGet("start") or 1)] if kind == "ordered_list_open" else [])
        elif kind in ("bullet_list_close", "ordered_list_close"):
            self.lists.pop()
            if not self.lists:
                self.flush("\r")  # Teams separates list items with \r
        elif kind in ("paragraph_close", "heading_close") and not self.lists:
            self.flush()
        elif kind in ("fence", "code_block"):
            self.flush()
            self.blocks.code(token.content)
        elif kind in ("thead_open", "thead_close"):
            self.header = kind == "thead_open"
        elif kind == "tr_open":
            self.row = []
        elif kind == "tr_close":  # Teams has no tables: one line per row
            self.lines.append(" · ".join(self.row))
        elif kind == "table_close":
            self.flush("\n\n")


def markdown_blocks(markdown: str, base_url: str) -> list[tuple[str, str]]:
    """``markdown`` as ``[("text" | "code", TextBlock text)]``."""
    converter = _Converter(base_url)
    tokens = parse(markdown)
    for index, token in enumerate(tokens):
        if token.type == "inline":
            converter.inline(tokens, index)
        else:
            converter.block(token)
    converter.flush()
    return converter.blocks.items


def description_blocks(
    notification: Notification, *, base_url: str, default_format: DescriptionFormat, max_length: int
) -> list[dict[str, Any]]:
    """The TextBlocks of a notification's description (``[]`` without one)."""
    payload = notification.payload
    description = payload.description or ""
    if not description.strip():
        return []
    if len(description) > max_length:
        description = description[: max_length - 1].rstrip() + "…"
    if description_format(payload.metadata, default_format) == "markdown":
        items = markdown_blocks(description, base_url)
    else:
        items = [("text", escape(description).replace("\n", "\n\n"))]
    merged: list[tuple[str, str]] = []
    for kind, text in items:  # adjacent prose is one TextBlock, paragraphs apart
        if merged and kind == "text" and merged[-1][0] == "text":
            merged[-1] = ("text", merged[-1][1] + "\n\n" + text)
        else:
            merged.append((kind, text))
    return [
        {"type": "TextBlock", "text": text, "wrap": True, **({"fontType": "Monospace"} if kind == "code" else {})}
        for kind, text in merged
    ]


# -- the card and the message -------------------------------------------------------------


def default_card(
    notification: Notification,
    *,
    base_url: str,
    default_format: DescriptionFormat = "plain",
    max_length: int = 4000,
) -> dict[str, Any]:
    """The Adaptive Card of ``notification`` (see the module docstring)."""
    payload = notification.payload
    severity = payload.severity if payload.severity in SEVERITY_STYLES else "normal"
    style, colour = SEVERITY_STYLES[severity]
    facts = [severity.capitalize(), notification.origin, *([payload.topic] if payload.topic else [])]
    body: list[dict[str, Any]] = [
        {
            "type": "Container",
            "style": style,
            "bleed": True,
            "items": [
                {
                    "type": "TextBlock",
                    "text": escape(payload.title),
                    "weight": "Bolder",
                    "size": "Medium",
                    "wrap": True,
                },
                {
                    "type": "TextBlock",
                    "text": escape(" · ".join(facts)),
                    "color": colour,
                    "isSubtle": True,
                    "spacing": "None",
                    "wrap": True,
                },
            ],
        },
        *description_blocks(notification, base_url=base_url, default_format=default_format, max_length=max_length),
    ]
    link = absolute_link(payload.link, base_url)
    action = (
        {"type": "Action.OpenUrl", "title": "Open", "url": link}
        if link
        else {"type": "Action.OpenUrl", "title": "Open inbox", "url": f"{base_url.rstrip('/')}/notifications"}
    )
    return {
        "$schema": CARD_SCHEMA,
        "type": "AdaptiveCard",
        "version": CARD_VERSION,
        "body": body,
        "actions": [action],
        "msteams": {"width": "Full"},
    }


#: At most this many notifications are listed in a digest card (then "and N more").
DIGEST_ITEMS = 40


def digest_card(notifications: Sequence[Notification], *, base_url: str) -> dict[str, Any]:
    """One Adaptive Card listing a user's held notifications (a digest or the end of quiet hours), oldest first.

    A bold summary line, then one TextBlock per notification (its title linking to
    it, its severity when not normal), "and N more" past :data:`DIGEST_ITEMS`, and
    an "Open inbox" action.
    """
    count = len(notifications)
    inbox = f"{base_url.rstrip('/')}/notifications"
    body: list[dict[str, Any]] = [
        {
            "type": "TextBlock",
            "text": f"{count} notification{'s' if count != 1 else ''} since your last digest",
            "weight": "Bolder",
            "size": "Medium",
            "wrap": True,
        }
    ]
    shown = notifications[:DIGEST_ITEMS] if count <= DIGEST_ITEMS else notifications[: DIGEST_ITEMS - 1]
    for notification in shown:
        payload = notification.payload
        link = (absolute_link(payload.link, base_url) or inbox).replace("(", "%28").replace(")", "%29")
        text = f"[{escape(payload.title)}]({link})"
        if payload.severity and payload.severity != "normal":
            text += f" ({escape(str(payload.severity))})"
        severity = payload.severity if payload.severity in SEVERITY_STYLES else "normal"
        block = {"type": "TextBlock", "text": text, "wrap": True, "separator": True}
        if severity in ("critical", "high"):
            block["color"] = SEVERITY_STYLES[severity][1]
        body.append(block)
    if len(shown) < count:
        body.append({"type": "TextBlock", "text": f"and {count - len(shown)} more", "isSubtle": True, "wrap": True})
    return {
        "$schema": CARD_SCHEMA,
        "type": "AdaptiveCard",
        "version": CARD_VERSION,
        "body": body,
        "actions": [{"type": "Action.OpenUrl", "title": "Open inbox", "url": inbox}],
        "msteams": {"width": "Full"},
    }


def message_body(card: dict[str, Any]) -> bytes:
    """The UTF-8 JSON message carrying ``card``, as Workflows and incoming webhooks take it."""
    message = {
        "type": "message",
        "attachments": [{"contentType": CARD_CONTENT_TYPE, "contentUrl": None, "content": card}],
    }
    return json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
