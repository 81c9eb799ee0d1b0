"""The Slack module's parts without a host: mrkdwn, routes, config, throttle, outcomes and the renderer hook."""

from __future__ import annotations

from typing import Any

import pytest
from greenroom_notifications_slack import SlackConfig, SlackRenderers, markdown_to_mrkdwn, slack_hookimpl
from greenroom_notifications_slack.client import Throttle, classify
from greenroom_notifications_slack.mrkdwn import plain_to_mrkdwn
from greenroom_notifications_slack.render import default_blocks
from greenroom_notifications_slack.settings import read_slack_config
from greenroom_notifications_slack.targets import broadcast_channels
from slack_sdk.errors import SlackApiError

from host.config import Config, ConfigError
from host.config_schema import check_sections
from plugin_notifications.models import Notification, NotificationPayload
from tests.notifications.conftest import notification

TOKEN = "xoxb-" + "1" * 20


@pytest.mark.parametrize(
    ("markdown", "mrkdwn"),
    [
        ("**bold** *it* ~~gone~~ `a<b`", "*bold* _it_ ~gone~ `a&lt;b`"),
        ("[docs](https://x.example/a?b=1&c=2)", "<https://x.example/a?b=1&amp;c=2|docs>"),
        ("[mail](mailto:ops@example.com)", "<mailto:ops@example.com|mail>"),
        ("[here](/relative/path)", "here"),  # not http(s) or mailto: the text alone
        ("[x](javascript:alert(1))", "[x](javascript:alert(1))"),  # not even a link to the parser: inert text
        ("<script>alert(1)</script> & <!channel>", "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &lt;!channel&gt;"),
        ("# Title **now**", "*Title now*"),
        ("- a\n- b\n  - c", "• a\n• b\n  • c"),
        ("3. three\n4. four", "3. three\n4. four"),
        ("> quoted\n> twice", "> quoted\n> twice"),
        ("```\nx < y\n```", "```\nx &lt; y\n```"),
        ("| a | b |\n|---|---|\n| 1 | 2 |", "a | b\n1 | 2"),
        ("one\ntwo\n\nthree", "one\ntwo\n\nthree"),
        ("![logo](https://x.example/l.png)", "<https://x.example/l.png|logo>"),
    ],
)
def test_markdown_becomes_mrkdwn(markdown: str, mrkdwn: str) -> None:
    assert markdown_to_mrkdwn(markdown) == mrkdwn


def test_plain_text_is_only_escaped() -> None:
    assert plain_to_mrkdwn("**not bold** <@U1> & co") == "**not bold** &lt;@U1&gt; &amp; co"


def workspace(**settings: Any) -> Any:
    return SlackConfig.model_validate([{"token": TOKEN, **settings}]).root[0]


@pytest.mark.parametrize(
    ("origin", "topic", "channels"),
    [
        ("plugin:catalog", "entity-updated", ("C_BOTH",)),  # origin and topic beat everything
        ("plugin:catalog", "other", ("C_ORIGIN",)),
        ("plugin:ci", "alerts", ("C_TOPIC1",)),  # the first topic-only route
        ("plugin:ci", None, ("C_DEFAULT",)),
        ("plugin:catalog", None, ("C_ORIGIN",)),
    ],
)
def test_broadcast_routes_pick_the_most_specific(origin: str, topic: str | None, channels: tuple[str, ...]) -> None:
    routes = [
        {"topic": "alerts", "channel": "C_TOPIC1"},
        {"origin": "plugin:catalog", "channel": "C_ORIGIN"},
        {"topic": "alerts", "channel": "C_TOPIC2"},
        {"origin": "plugin:catalog", "topic": "entity-updated", "channel": ["C_BOTH"]},
        {"origin": "plugin:catalog", "topic": "alerts", "channel": "C_OTHER"},
    ]
    ws = workspace(broadcastRoutes=routes, broadcastChannels=["C_DEFAULT"])
    payload = {"topic": topic} if topic else {}
    assert broadcast_channels(notification(origin, **payload), ws) == channels


def test_without_routes_or_channels_a_broadcast_goes_nowhere() -> None:
    assert broadcast_channels(notification(), workspace()) == ()


def test_config_defaults_and_channel_names() -> None:
    config = SlackConfig.model_validate([{"token": TOKEN}, {"token": TOKEN, "name": "eu", "apiUrl": "http://x:1/api"}])
    first, second = config.root
    assert (first.concurrency_limit, first.throttle_interval.total_seconds(), first.api_url) == (
        10,
        60.0,
        "https://slack.com/api/",
    )
    assert second.api_url == "http://x:1/api/"
    assert config.channels() == ["slack:0", "slack:eu"]
    assert TOKEN not in repr(config)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ([{}], "'notifications.processors.slack[0].token': Field required"),
        ([{"token": " "}], "'notifications.processors.slack[0].token': must not be empty"),
        ([{"token": TOKEN, "apiUrl": "ftp://x"}], "'notifications.processors.slack[0].apiUrl': must be an http(s) URL"),
        ([{"token": TOKEN, "concurrencyLimit": 0}], "concurrencyLimit': Input should be greater than or equal to 1"),
        ([{"token": TOKEN, "throttleInterval": "0s"}], "throttleInterval': must be a positive duration"),
        ([{"token": TOKEN, "broadcastRoutes": [{"topic": "a"}]}], "broadcastRoutes[0].channel': Field required"),
        ([{"token": TOKEN, "broadcastRoutes": [{"channel": []}]}], "must name at least one Slack channel"),
        ([{"token": TOKEN, "name": "a"}, {"token": TOKEN, "name": "a"}], "two workspaces share the channel name"),
    ],
)
def test_invalid_config_fails_naming_the_key(raw: Any, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        read_slack_config(Config({"notifications": {"processors": {"slack": raw}}}))
    assert message in str(caught.value)
    assert TOKEN not in str(caught.value)


def test_config_check_suggests_the_spelling_inside_the_list() -> None:
    data = {"notifications": {"processors": {"slack": [{"token": TOKEN, "broadcastChanels": ["C1"]}]}}}
    findings = [str(f) for f in check_sections(data, {"notifications.processors.slack": SlackConfig})]
    assert findings == [
        "Unknown config key 'notifications.processors.slack[0].broadcastChanels', did you mean 'broadcastChannels'?"
    ]


class Response:
    def __init__(self, status: int, data: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        self.status_code, self.data, self.headers = status, data, headers or {}


@pytest.mark.parametrize(
    ("status", "data", "headers", "kind", "after"),
    [
        (429, {"ok": False, "error": "ratelimited"}, {"retry-after": "30"}, "retry", 30.0),
        (429, {"ok": False, "error": "ratelimited"}, {"retry-after": "99999"}, "retry", 3600.0),
        (200, {"ok": False, "error": "ratelimited"}, {}, "retry", None),
        (503, {}, {}, "retry", None),
        (200, {"ok": False, "error": "service_unavailable"}, {}, "retry", None),
        (200, {"ok": False, "error": "channel_not_found"}, {}, "failed", None),
        (200, {"ok": False, "error": "invalid_auth"}, {}, "failed", None),
        (404, {}, {}, "failed", None),
    ],
)
def test_slack_errors_are_classified(
    status: int, data: dict[str, Any], headers: dict[str, str], kind: str, after: float | None
) -> None:
    outcome = classify(
        SlackApiError("x", Response(status, data, headers)), "chat.postMessage to C1", max_retry_after=3600
    )
    assert (outcome.kind, outcome.retry_after) == (kind, after)
    assert outcome.error is not None and outcome.error.startswith("chat.postMessage to C1: ")


def test_network_errors_are_retried() -> None:
    import aiohttp

    assert classify(TimeoutError(), "m", max_retry_after=1).kind == "retry"
    assert classify(aiohttp.ClientConnectionError(), "m", max_retry_after=1).error == (
        "m: connection failed (ClientConnectionError)"
    )


async def test_the_throttle_lets_limit_calls_through_per_interval() -> None:
    now = [100.0]
    throttle = Throttle(2, 60.0, clock=lambda: now[0])
    assert await throttle.acquire(deadline=100.0) is None
    assert await throttle.acquire(deadline=100.0) is None
    assert await throttle.acquire(deadline=130.0) == 60.0  # the third would wait past the deadline
    now[0] = 160.5
    assert await throttle.acquire(deadline=160.5) is None  # the window moved on


async def test_the_throttle_waits_when_the_deadline_allows() -> None:
    throttle = Throttle(1, 0.05)
    import time

    assert await throttle.acquire(deadline=time.monotonic()) is None
    started = time.monotonic()
    assert await throttle.acquire(deadline=time.monotonic() + 5) is None
    assert time.monotonic() - started >= 0.04


def test_default_blocks() -> None:
    note = notification(link="https://portal.example.com/x", severity="high", topic="deploys")
    section, context = default_blocks(note, "*hi*")
    assert section["text"] == {"type": "mrkdwn", "text": "*hi*"}
    assert section["accessory"]["url"] == "https://portal.example.com/x"
    assert [e["text"] for e in context["elements"]] == ["Severity: high", "Topic: deploys"]
    bare, _ = default_blocks(notification(), None)
    assert bare["text"]["text"] == "No description provided" and "accessory" not in bare


async def test_renderers_first_result_wins_then_the_default() -> None:
    renderers = SlackRenderers()
    note = notification(description="d")
    assert (await renderers.blocks(note, "d"))[0]["type"] == "section"  # the default

    class Declines:
        @slack_hookimpl(tryfirst=True)
        def slack_blocks(self, notification: Notification) -> None:
            return None

    async def backstage_style(payload: NotificationPayload) -> list[dict[str, Any]]:
        return [{"type": "header", "text": {"type": "plain_text", "text": payload.title}}]

    renderers.add_renderer(Declines())
    renderers.set_block_kit_renderer(backstage_style)
    assert await renderers.blocks(note, "d") == [
        {"type": "header", "text": {"type": "plain_text", "text": "Deploy finished"}}
    ]
    with pytest.raises(RuntimeError, match="already set"):
        renderers.set_block_kit_renderer(backstage_style)

    class Broken:
        @slack_hookimpl(tryfirst=True)
        def slack_blocks(self) -> str:
            return "not blocks"

    renderers.add_renderer(Broken())
    with pytest.raises(TypeError, match="list of Block Kit blocks"):
        await renderers.blocks(note, "d")
