"""The opt-in Markdown contract and its safe HTML (:mod:`plugin_notifications.rich_text`).

``to_html`` is what the web inbox and email show of a Markdown description, so
everything a sender can write must come out inert: no script, no event
handler attribute, no raw HTML, no link that runs code.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest

from plugin_notifications.rich_text import (
    configured_default,
    description_format,
    parse,
    plain_to_html,
    sanitize_html,
    to_html,
)

#: The markup the sanitizer lets through (plugin_notifications.rich_text's allow-list).
ALLOWED_TAGS = {
    "a", "p", "br", "hr", "strong", "em", "del", "s", "code", "pre", "blockquote",
    "ul", "ol", "li", "h1", "h2", "h3", "h4", "h5", "h6",
    "table", "thead", "tbody", "tr", "th", "td",
}  # fmt: skip
ALLOWED_ATTRIBUTES = {"href", "title", "rel", "start", "align"}


class Markup(HTMLParser):
    """The elements and attributes of an HTML fragment, as a browser's parser would see them."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.attributes: list[tuple[str, str | None]] = []
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attributes.extend(attrs)


def assert_inert(html: str) -> None:
    """Only allowed elements and attributes, and links only to http(s), mailto or relative (no scheme at all)."""
    markup = Markup(html)
    assert set(markup.tags) <= ALLOWED_TAGS, html
    assert {name for name, _ in markup.attributes} <= ALLOWED_ATTRIBUTES, html
    for name, value in markup.attributes:
        if name == "href":
            scheme = re.match(r"\s*([a-zA-Z][a-zA-Z0-9+.-]*):", value or "")  # as a browser's URL parser reads it
            assert scheme is None or scheme.group(1).lower() in ("http", "https", "mailto"), html


# -- which descriptions are Markdown -----------------------------------------------------


@pytest.mark.parametrize(
    ("metadata", "default", "expected"),
    [
        (None, "plain", "plain"),
        ({}, "plain", "plain"),
        (None, "markdown", "markdown"),
        ({"descriptionFormat": "markdown"}, "plain", "markdown"),
        ({"descriptionFormat": "plain"}, "markdown", "plain"),  # per notification beats the config default
        ({"descriptionFormat": "html"}, "markdown", "plain"),  # unknown values are plain, never HTML
        ({"descriptionFormat": "MARKDOWN"}, "plain", "plain"),  # exact value only
        ({"descriptionFormat": None}, "markdown", "markdown"),  # null counts as absent
        ({"other": 1}, "markdown", "markdown"),
    ],
)
def test_description_format(metadata: dict[str, object] | None, default: str, expected: str) -> None:
    assert description_format(metadata, default) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("raw", "expected"), [(None, "plain"), ("plain", "plain"), ("markdown", "markdown"), (1, "plain")]
)
def test_configured_default(raw: object, expected: str) -> None:
    assert configured_default(raw) == expected


# -- what cannot get through -------------------------------------------------------------


@pytest.mark.parametrize(
    "markdown",
    [
        "<script>alert(1)</script>",
        "before <script>alert(1)</script> after",
        "<img src=x onerror=alert(1)>",
        '<a href="https://example.com" onclick="alert(1)">x</a>',
        "<iframe src=https://example.com></iframe>",
        "<svg onload=alert(1)></svg>",
        "<style>body{display:none}</style>",
        "[click](javascript:alert(1))",
        "[click](JaVaScRiPt:alert(1))",
        "[click](java&#09;script:alert(1))",
        "[click](  javascript:alert(1))",
        "[click](vbscript:msgbox(1))",
        "[click](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
        "![x](data:image/svg+xml,<svg onload=alert(1)>)",
        "![x](https://example.com/x.png)",  # images are not in the allow-list (no tracking pixels)
        "<javascript:alert(1)>",
        "[ref]\n\n[ref]: javascript:alert(1)",
        "**<img src=x onerror=alert(1)>**",
        "`<script>` is fine as code, <script>alert(1)</script> is not",
        "<div onmouseover=alert(1)>hover</div>",
    ],
)
def test_nothing_active_survives(markdown: str) -> None:
    html = to_html(markdown)
    assert_inert(html)
    assert not re.search(r"<(script|img|iframe|svg|style|div)\b", html, re.I), html


def test_raw_html_is_shown_as_text_not_markup() -> None:
    html = to_html('Hello <b onclick="x()">bold</b> and <script>alert(1)</script>')
    assert "<b" not in html and "<script" not in html
    assert "&lt;b onclick=" in html  # escaped: the reader sees what was sent, inert
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_code_keeps_angle_brackets_escaped() -> None:
    assert to_html("`<script>`") == "<p><code>&lt;script&gt;</code></p>\n"


def test_safe_links_are_kept_with_rel() -> None:
    html = to_html("[docs](https://example.com/a?b=1&c=2) and <mailto:ops@example.com>")
    assert '<a href="https://example.com/a?b=1&amp;c=2" rel="noopener noreferrer">docs</a>' in html
    assert '<a href="mailto:ops@example.com" rel="noopener noreferrer">mailto:ops@example.com</a>' in html


def test_link_titles_are_kept_and_escaped() -> None:
    html = to_html('[x](https://example.com "a \\"quoted\\" <title>")')
    assert 'title="a &quot;quoted&quot; &lt;title&gt;"' in html


# -- what formatting gets through --------------------------------------------------------


def test_nested_emphasis() -> None:
    assert to_html("***both*** and **bold _italic inside_**") == (
        "<p><em><strong>both</strong></em> and <strong>bold <em>italic inside</em></strong></p>\n"
    )


def test_strikethrough_lists_quotes_headings_and_code_blocks() -> None:
    html = to_html("# Title\n\n~~gone~~\n\n- one\n- two\n\n3. three\n4. four\n\n> quoted\n\n```\nx < y\n```\n")
    assert "<h1>Title</h1>" in html
    assert "<s>gone</s>" in html
    assert "<ul>\n<li>one</li>\n<li>two</li>\n</ul>" in html
    assert '<ol start="3">' in html
    assert "<blockquote>\n<p>quoted</p>\n</blockquote>" in html
    assert "<pre><code>x &lt; y\n</code></pre>" in html


def test_tables_with_alignment() -> None:
    html = to_html("| host | load |\n| :--- | ---: |\n| db-1 | **97%** |\n")
    assert "<table>" in html and "<thead>" in html and "<tbody>" in html
    assert re.search(r"<th[^>]*>host</th>", html)
    assert re.search(r"<td[^>]*><strong>97%</strong></td>", html)
    assert "style=" not in html  # markdown-it's style="text-align" is stripped: no CSS from senders


def test_sanitize_html_drops_unknown_tags_but_keeps_their_text() -> None:
    assert sanitize_html("<p>a <span class=x>b</span> <u>c</u></p>") == "<p>a b c</p>"
    assert sanitize_html("<script>alert(1)</script><p>ok</p>") == "<p>ok</p>"


def test_parse_gives_tokens_for_chat_channels() -> None:
    tokens = parse("**bold** [x](https://example.com)")
    assert [token.type for token in tokens] == ["paragraph_open", "inline", "paragraph_close"]
    kinds = [child.type for child in tokens[1].children or [] if child.type != "text" or child.content]
    assert kinds[:3] == ["strong_open", "text", "strong_close"]
    assert "link_open" in kinds


def test_plain_to_html_escapes_everything() -> None:
    assert (
        plain_to_html('<script>a & "b"</script>\nnext') == "&lt;script&gt;a &amp; &quot;b&quot;&lt;/script&gt;<br>next"
    )
