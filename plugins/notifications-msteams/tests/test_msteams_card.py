"""The Adaptive Card of a notification: shape, severity colour, description (plain and Markdown), link button."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from greenroom_notifications_msteams import CardRenderers, default_card, message_body, msteams_hookimpl
from greenroom_notifications_msteams.card import escape, markdown_blocks

from plugin_notifications.models import Notification
from tests.notifications.conftest import notification

BASE = "https://portal.example.com"


def texts(card: dict[str, Any]) -> list[str]:
    """The description TextBlocks' texts (everything after the header container)."""
    return [block["text"] for block in card["body"][1:]]


def test_the_card_has_title_severity_description_and_a_link_button() -> None:
    card = default_card(
        notification(description="v1.2 is live", severity="critical", topic="deploys", link="/ci/42"), base_url=BASE
    )
    assert card["type"] == "AdaptiveCard" and card["version"] == "1.4"
    assert card["$schema"] == "http://adaptivecards.io/schemas/adaptive-card.json"
    header = card["body"][0]
    assert (header["type"], header["style"]) == ("Container", "attention")
    title, facts = header["items"]
    assert (title["text"], title["weight"], title["size"]) == ("Deploy finished", "Bolder", "Medium")
    assert (facts["text"], facts["color"]) == ("Critical · plugin:ci · deploys", "Attention")
    assert card["body"][1] == {"type": "TextBlock", "text": "v1.2 is live", "wrap": True}
    assert card["actions"] == [{"type": "Action.OpenUrl", "title": "Open", "url": "https://portal.example.com/ci/42"}]


@pytest.mark.parametrize(
    ("severity", "style", "colour"),
    [
        ("critical", "attention", "Attention"),
        ("high", "warning", "Warning"),
        ("normal", "accent", "Accent"),
        ("low", "default", "Default"),
    ],
)
def test_severity_colours(severity: str, style: str, colour: str) -> None:
    header = default_card(notification(severity=severity), base_url=BASE)["body"][0]
    assert header["style"] == style and header["items"][1]["color"] == colour


def test_without_a_link_the_button_opens_the_inbox_and_without_description_there_is_no_text() -> None:
    card = default_card(notification(), base_url=BASE + "/")
    assert card["actions"] == [{"type": "Action.OpenUrl", "title": "Open inbox", "url": f"{BASE}/notifications"}]
    assert len(card["body"]) == 1


def test_plain_text_is_escaped_not_interpreted() -> None:
    card = default_card(
        notification(title="**urgent** [x](https://evil.example)", description="- not a list\n_not italic_"),
        base_url=BASE,
    )
    assert card["body"][0]["items"][0]["text"] == "\\*\\*urgent\\*\\* \\[x\\]\\(https://evil.example\\)"
    assert texts(card) == ["\\- not a list\n\n\\_not italic\\_"]


def test_markdown_becomes_teams_text_subset() -> None:
    markdown = "\n\n".join(
        [
            "# Deploy",
            "**bold _nested_** and [docs](https://docs.example.com/a) and [inbox](/notifications)",
            "- one\n- two\n  - nested",
            "3. three\n4. four",
            "```\ncode *x*\n```",
            "| host | state |\n| --- | --- |\n| api-1 | **up** |",
            "~~gone~~ `a*b`",
        ]
    )
    card = default_card(notification(description=markdown, metadata={"descriptionFormat": "markdown"}), base_url=BASE)
    prose, code, rest = card["body"][1:]
    assert prose["text"] == "\n\n".join(
        [
            "**Deploy**",
            "**bold _nested_** and [docs](https://docs.example.com/a) and [inbox](https://portal.example.com/notifications)",
            "- one\r- two\r  - nested",
            "3. three\r4. four",
        ]
    )
    assert code == {"type": "TextBlock", "text": "code \\*x\\*", "wrap": True, "fontType": "Monospace"}
    assert rest["text"] == "**host** · **state**\n\n" + "api-1 · **up**" + "\n\n" + "gone a\\*b"


@pytest.mark.parametrize(
    "markdown",
    [
        "[run](javascript:alert(1))",
        "[run](JAVASCRIPT:alert(1))",
        "[data](data:text/html,<script>x</script>)",
        "<script>alert(1)</script>",
        '<a href="javascript:alert(1)">x</a>',
        "![img](https://tracker.example/pixel.png)",
    ],
)
def test_hostile_markdown_stays_text(markdown: str) -> None:
    [(kind, text)] = markdown_blocks(markdown, BASE)
    assert kind == "text"
    assert re.search(r"(?<!\\)[\[\]()<>]", text) is None, text  # every bracket escaped: no link, no tag


def test_the_config_default_makes_descriptions_markdown() -> None:
    note = notification(description="**bold**")
    assert texts(default_card(note, base_url=BASE, default_format="markdown")) == ["**bold**"]
    assert texts(default_card(note, base_url=BASE)) == ["\\*\\*bold\\*\\*"]


def test_long_descriptions_are_cut() -> None:
    [text] = texts(default_card(notification(description="x" * 5000), base_url=BASE, max_length=100))
    assert len(text) == 100 and text.endswith("…")


def test_escape_keeps_text_literal() -> None:
    assert escape("1. first\n+ plus *star* _u_ `c` ~s~ <b> #h |t|") == (
        "1\\. first\n\\+ plus \\*star\\* \\_u\\_ \\`c\\` \\~s\\~ \\<b\\> \\#h \\|t\\|"
    )


def test_the_message_is_the_workflows_shape() -> None:
    card = default_card(notification(), base_url=BASE)
    assert json.loads(message_body(card)) == {
        "type": "message",
        "attachments": [
            {"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None, "content": card}
        ],
    }


async def test_a_renderer_hook_replaces_the_card_and_none_falls_through() -> None:
    class Quiet:
        @msteams_hookimpl
        def msteams_card(self, notification: Notification) -> None:
            return None

    class Branded:
        @msteams_hookimpl
        async def msteams_card(
            self, notification: Notification, card: dict[str, Any], destination: str
        ) -> dict[str, Any]:
            return {**card, "body": [{"type": "TextBlock", "text": f"{destination}: {notification.payload.title}"}]}

    renderers = CardRenderers()
    note = notification()
    card = default_card(note, base_url=BASE)
    assert await renderers.card(note, card, "msteams:ops") is card  # no renderer: the default
    renderers.add_renderer(Quiet())
    assert await renderers.card(note, card, "msteams:ops") is card
    renderers.add_renderer(Branded())
    replaced = await renderers.card(note, card, "group:default/ops")
    assert replaced["body"] == [{"type": "TextBlock", "text": "group:default/ops: Deploy finished"}]


async def test_a_renderer_must_answer_an_adaptive_card() -> None:
    class Broken:
        @msteams_hookimpl
        def msteams_card(self) -> dict[str, Any]:
            return {"text": "not a card"}

    renderers = CardRenderers()
    renderers.add_renderer(Broken())
    with pytest.raises(TypeError, match="Adaptive Card"):
        await renderers.card(notification(), {}, "msteams:ops")
