"""Slack ``mrkdwn`` from a notification description: Markdown converted, plain text escaped.

Slack's message format is not Markdown: bold is ``*b*``, italic ``_i_``,
strike ``~s~``, links ``<url|text>``, and ``&``, ``<`` and ``>`` must be sent
as ``&amp;``, ``&lt;`` and ``&gt;`` (otherwise ``<!channel>`` or ``<@U123>``
in a description would ping people). A Markdown description (see
:func:`plugin_notifications.rich_text.description_format`) is parsed with
markdown-it (:func:`plugin_notifications.rich_text.parse`) and rewritten:

* ``**b**`` -> ``*b*``, ``*i*`` -> ``_i_``, ``~~s~~`` -> ``~s~``, code spans
  and fenced code stay code;
* ``[text](url)`` -> ``<url|text>`` for ``http``, ``https`` and ``mailto``
  URLs only; any other link (``javascript:``, relative) keeps its text alone;
  an image becomes a link to it;
* headings become bold lines, lists ``•`` / ``1.`` lines (nested lists
  indented), block quotes ``>`` lines, tables ``a | b`` rows, rules ``───``.

Raw HTML is not passed through by the parser, so it arrives as escaped text.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from markdown_it.tree import SyntaxTreeNode

from plugin_notifications.rich_text import parse

_SAFE_SCHEMES = frozenset({"http", "https", "mailto"})
_MARKS = {"strong": "*", "em": "_", "s": "~"}


def escape(text: str) -> str:
    """``text`` with Slack's three control characters escaped (``&``, ``<``, ``>``)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def plain_to_mrkdwn(text: str) -> str:
    """A plain-text description for a ``mrkdwn`` field: escaped, nothing else changed."""
    return escape(text)


def markdown_to_mrkdwn(markdown: str) -> str:
    """Convert Markdown to Slack ``mrkdwn`` (see the module docstring)."""
    tree = SyntaxTreeNode(parse(markdown))
    return _blocks(tree.children, indent="").strip("\n")


def _safe_url(url: str) -> str | None:
    try:
        scheme = urlsplit(url).scheme.lower()
    except ValueError:
        return None
    return url if scheme in _SAFE_SCHEMES else None


def _blocks(nodes: list[SyntaxTreeNode], indent: str) -> str:
    parts = [_block(node, indent) for node in nodes]
    return "\n\n".join(part for part in parts if part)


def _block(node: SyntaxTreeNode, indent: str) -> str:
    kind = node.type
    if kind == "paragraph":
        return _prefix_lines(_inline_of(node), indent)
    if kind == "heading":
        text = _inline_of(node, in_bold=True)
        return _prefix_lines(f"*{text}*" if text.strip() else "", indent)
    if kind in ("bullet_list", "ordered_list"):
        return _list(node, indent)
    if kind == "blockquote":
        inner = _blocks(node.children, "")
        return "\n".join(f"{indent}> {line}" if line else f"{indent}>" for line in inner.split("\n"))
    if kind in ("fence", "code_block"):
        code = escape(node.content.rstrip("\n"))
        return _prefix_lines(f"```\n{code}\n```", indent)
    if kind == "hr":
        return indent + "───"
    if kind == "table":
        rows = [row for section in node.children for row in section.children]
        lines = [" | ".join(_inline_of(cell) for cell in row.children) for row in rows]
        return "\n".join(indent + line for line in lines)
    return _blocks(node.children, indent) if node.children else ""


def _list(node: SyntaxTreeNode, indent: str) -> str:
    ordered = node.type == "ordered_list"
    start = int(node.attrs.get("start", 1)) if ordered else 1
    lines = []
    for number, item in enumerate(node.children, start=start):
        bullet = f"{number}. " if ordered else "• "
        body = _blocks(item.children, "").replace("\n\n", "\n")
        nested_indent = indent + " " * len(bullet)
        first, *rest = body.split("\n") if body else [""]
        lines.append(f"{indent}{bullet}{first}")
        lines.extend(f"{nested_indent}{line}" if line else "" for line in rest)
    return "\n".join(lines)


def _prefix_lines(text: str, indent: str) -> str:
    return "\n".join(indent + line if line else line for line in text.split("\n")) if indent else text


def _inline_of(node: SyntaxTreeNode, in_bold: bool = False) -> str:
    return "".join(_inline(child, in_bold) for child in node.children)


def _inline(node: SyntaxTreeNode, in_bold: bool = False) -> str:
    kind = node.type
    if kind == "inline":
        return _inline_of(node, in_bold)
    if kind == "text":
        return escape(node.content)
    if kind in _MARKS:
        bold = kind == "strong"
        inner = _inline_of(node, in_bold or bold)
        if (bold and in_bold) or not inner.strip():
            return inner  # Slack does not nest bold: the heading (or outer bold) already is
        mark = _MARKS[kind]
        return f"{mark}{inner}{mark}"
    if kind == "code_inline":
        return f"`{escape(node.content)}`"
    if kind in ("softbreak", "hardbreak"):
        return "\n"
    if kind == "link":
        text = _inline_of(node, in_bold)
        url = _safe_url(str(node.attrs.get("href", "")))
        if url is None:
            return text
        return f"<{escape(url).replace('|', '%7C')}|{text}>" if text else f"<{escape(url).replace('|', '%7C')}>"
    if kind == "image":
        alt = escape(node.content) or "image"
        url = _safe_url(str(node.attrs.get("src", "")))
        return f"<{escape(url).replace('|', '%7C')}|{alt}>" if url else alt
    if node.children:
        return _inline_of(node, in_bold)
    return escape(node.content)
