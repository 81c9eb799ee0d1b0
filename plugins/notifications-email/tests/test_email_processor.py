"""The Email processor on a real host, delivering to a real SMTP server (aiosmtpd) started by each test."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from email_servers import FAST_DELIVERY, SmtpServer, send, smtp_server  # noqa: F401 - the smtp fixture
from greenroom_notifications_email import (
    EmailContent,
    EmailTemplates,
    email_hookimpl,
    email_templates_extension_point,
    read_email_settings,
)
from greenroom_notifications_email.processor import EmailProcessor, TtlCache, is_single_address
from greenroom_notifications_email.transport import StreamTransport, create_transport, is_transient

from host import create_backend_module
from host.config import Config, ConfigError
from host.testing import eventually as eventually_async
from plugin_notifications.delivery import Delivery
from tests.conftest import HostHandle, free_port, start_host

ORG = Path(__file__).parent / "fixtures" / "email-org.yaml"


def email_config(port: int, **email_settings: Any) -> dict[str, Any]:
    """Host config: the test catalog and ``notifications.processors.email`` over SMTP on ``port``."""
    settings: dict[str, Any] = {
        "sender": "greenroom@example.com",
        "transportConfig": {"transport": "smtp", "hostname": "127.0.0.1", "port": port},
        "throttleInterval": {"milliseconds": 1},
    }
    settings.update(email_settings)
    return {
        "catalog": {"locations": [{"type": "file", "target": str(ORG)}]},
        "notifications": {"processors": {"email": settings}, "delivery": FAST_DELIVERY},
    }


async def eventually(check: Callable[[], Any], timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (result := check()):
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)
    return result


async def settle(seconds: float = 0.3) -> None:
    """Give background post-processing time to do something it should not do."""
    await asyncio.sleep(seconds)


def user(name: str) -> dict[str, Any]:
    return {"type": "entity", "entityRef": f"user:default/{name}"}


BROADCAST = {"type": "broadcast"}


# -- delivery over SMTP ----------------------------------------------------------


async def test_user_notification_is_emailed_with_html_and_text(smtp: SmtpServer) -> None:
    config = email_config(smtp.port, replyTo="no-reply@example.com")
    async with start_host(config=config) as host:
        await send(
            host,
            user("jane"),
            title="Deploy <done>",
            description="Service <b>api</b> is live",
            link="/catalog/default/component/api",
        )
        [message] = await eventually(lambda: smtp.sink.messages)
        assert message["To"] == "jane@example.com"
        assert message["From"] == "greenroom@example.com"
        assert message["Reply-To"] == "no-reply@example.com"
        assert message["Subject"] == "Deploy <done>"
        link = f"{host.config['app']['baseUrl']}/catalog/default/component/api"
        text = message.get_body(("plain",)).get_content().replace("\r\n", "\n")
        assert text == f"Service <b>api</b> is live\n\n{link}\n"
        html = message.get_body(("html",)).get_content().replace("\r\n", "\n")
        assert "<p>Service &lt;b&gt;api&lt;/b&gt; is live</p>" in html
        assert f'<a href="{link}">{link}</a>' in html
        assert smtp.sink.envelopes[0].rcpt_tos == ["jane@example.com"]


async def test_missing_link_points_to_the_inbox_and_users_without_email_are_skipped(smtp: SmtpServer) -> None:
    async with start_host(config=email_config(smtp.port)) as host:
        created = await send(host, {"type": "entity", "entityRef": "group:default/team"}, title="Team news")
        assert len(created) == 3  # jane, john and nomail all get the in-app notification
        await eventually(lambda: len(smtp.sink.messages) == 2)
        await settle()
        assert smtp.sink.to() == ["jane@example.com", "john@example.com"]
        text = smtp.sink.messages[0].get_body(("plain",)).get_content().replace("\r\n", "\n")
        assert text == f"{host.config['app']['baseUrl']}/notifications\n"


async def test_broadcasts_follow_broadcast_config(smtp: SmtpServer) -> None:
    async with start_host(config=email_config(smtp.port)) as host:  # no broadcastConfig: not emailed
        await send(host, BROADCAST, title="Nobody by email")
        await settle()
        assert smtp.sink.messages == []
    config = email_config(smtp.port, broadcastConfig={"receiver": "users"})
    async with start_host(config=config) as host:
        await send(host, BROADCAST, title="Everyone")
        await eventually(lambda: len(smtp.sink.messages) == 2)
        await settle()
        assert smtp.sink.to() == ["jane@example.com", "john@example.com"]  # "broken" is not an address
    smtp.sink.messages.clear()
    config = email_config(
        smtp.port, broadcastConfig={"receiver": "config", "receiverEmails": ["ops@example.com", "ops@example.com"]}
    )
    async with start_host(config=config) as host:
        await send(host, BROADCAST, title="Ops")
        await eventually(lambda: smtp.sink.messages)
        await settle()
        assert smtp.sink.to() == ["ops@example.com"]


async def test_allowlist_then_denylist(smtp: SmtpServer) -> None:
    config = email_config(
        smtp.port,
        broadcastConfig={"receiver": "config", "receiverEmails": ["a@example.com", "b@example.com", "c@example.com"]},
        allowlistEmailAddresses=["a@example.com", "b@example.com"],
        denylistEmailAddresses=["B@example.com"],
    )
    async with start_host(config=config) as host:
        await send(host, BROADCAST)
        await eventually(lambda: smtp.sink.messages)
        await settle()
        assert smtp.sink.to() == ["a@example.com"]


async def test_filters_skip_notifications(smtp: SmtpServer) -> None:
    config = email_config(smtp.port, filter={"minSeverity": "high", "excludedTopics": ["noise"]})
    async with start_host(config=config) as host:
        await send(host, user("jane"), title="normal")
        await send(host, user("jane"), title="critical noise", severity="critical", topic="noise")
        await send(host, user("jane"), title="high", severity="high")
        await eventually(lambda: smtp.sink.messages)
        await settle()
        assert [str(m["Subject"]) for m in smtp.sink.messages] == ["high"]


async def test_smtp_login(smtp: SmtpServer) -> None:
    transport = {
        "transport": "smtp",
        "hostname": "127.0.0.1",
        "port": smtp.port,
        "username": "mailer",
        "password": "secret",
    }
    async with start_host(config=email_config(smtp.port, transportConfig=transport)) as host:
        await send(host, user("jane"))
        await eventually(lambda: smtp.sink.messages)
        assert smtp.logins == [(b"mailer", b"secret")]


# -- failures ----------------------------------------------------------------------


@pytest.mark.parametrize("db_kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def test_fails_twice_then_exactly_one_email(smtp: SmtpServer, db_kind: str) -> None:
    """Two transient SMTP failures, then success: one message, the same Message-ID on every attempt."""
    smtp.sink.replies = ["451 4.3.0 Try again later", "421 4.3.2 Busy"]
    async with start_host(db_kind, config=email_config(smtp.port)) as host:
        [created] = await send(host, user("jane"))
        [message] = await eventually(lambda: smtp.sink.messages)
        assert smtp.sink.attempts == 3
        headers = await host.user_headers("user:default/jane")

        async def sent() -> Any:
            log = (await host.client.get(f"/api/notifications/{created['id']}/deliveries", headers=headers)).json()
            email_status = [c for c in log["channels"] if c["channel"] == "Email"]
            return email_status and email_status[0]["status"] == "sent" and email_status[0]

        status = await eventually_async(sent)
        assert status["attempts"] == 3 and message["Message-ID"] == f"<{status['deliveryId']}.0@example.com>"
        await settle()
        assert len(smtp.sink.messages) == 1


async def test_permanent_failures_are_not_retried(smtp: SmtpServer) -> None:
    smtp.sink.replies = ["550 5.1.1 No such mailbox"]
    async with start_host(config=email_config(smtp.port)) as host:
        [created] = await send(host, user("jane"))
        await eventually(lambda: smtp.sink.attempts == 1)
        await settle()
        assert smtp.sink.attempts == 1 and smtp.sink.messages == []
        log = (
            await host.client.get(
                f"/api/notifications/{created['id']}/deliveries", headers=await host.user_headers("user:default/jane")
            )
        ).json()
        [email_status] = [c for c in log["channels"] if c["channel"] == "Email"]
        assert email_status["status"] == "dead" and "550" in email_status["lastError"]


async def test_smtp_down_never_loses_or_delays_the_in_app_notification() -> None:
    dead_port = free_port()  # nothing listens here
    config = email_config(dead_port)
    async with start_host(config=config) as host:
        started = time.monotonic()
        [created] = await send(host, user("jane"), title="Still delivered")
        assert time.monotonic() - started < 0.5  # the response does not wait for the retries
        inbox = await host.client.get(
            "/api/notifications/notifications", headers=await host.user_headers("user:default/jane")
        )
        assert [n["id"] for n in inbox.json()["notifications"]] == [created["id"]]


def test_transient_errors() -> None:
    import aiosmtplib

    assert is_transient(ConnectionRefusedError())
    assert is_transient(aiosmtplib.SMTPConnectError("down"))
    assert is_transient(aiosmtplib.SMTPDataError(451, "later"))
    assert not is_transient(aiosmtplib.SMTPDataError(554, "rejected"))
    assert not is_transient(ValueError("bug"))


# -- module wiring -----------------------------------------------------------------


async def settings_channels(host: HostHandle) -> list[str]:
    response = await host.client.get(
        "/api/notifications/settings", headers=await host.user_headers("user:default/jane")
    )
    assert response.status_code == 200, response.text
    return [channel["id"] for channel in response.json()["channels"]]


async def test_email_channel_exists_only_when_configured(smtp: SmtpServer) -> None:
    async with start_host(config=email_config(smtp.port)) as host:
        assert "Email" in await settings_channels(host)
    async with start_host(config={"catalog": {"locations": [{"type": "file", "target": str(ORG)}]}}) as host:
        assert "Email" not in await settings_channels(host)  # installed, but idle without config


async def test_excluding_the_entry_point_removes_the_processor(smtp: SmtpServer) -> None:
    config = email_config(smtp.port)
    config["backend"] = {"features": {"exclude": ["notifications-email"]}}
    async with start_host(config=config) as host:
        assert "Email" not in await settings_channels(host)
        await send(host, user("jane"))
        await settle()
        assert smtp.sink.messages == []


class Branded:
    async def get_subject(self, notification: Any) -> str:
        return f"[Portal] {notification.payload.title}"

    def get_text(self, notification: Any) -> str:
        return f"plain: {notification.payload.title}\n"


def renderer_module(module_id: str, renderer: Any) -> Any:
    def register(reg: Any) -> None:
        reg.register_init(
            deps={"templates": email_templates_extension_point},
            init=lambda templates: templates.set_template_renderer(renderer),
        )

    return create_backend_module("notifications", module_id, register)


async def test_template_renderer_from_another_module(smtp: SmtpServer) -> None:
    async with start_host(config=email_config(smtp.port), features=[renderer_module("branding", Branded())]) as host:
        await send(host, user("jane"), title="Hi", description="there")
        [message] = await eventually(lambda: smtp.sink.messages)
        assert message["Subject"] == "[Portal] Hi"
        assert message.get_body(("plain",)).get_content().replace("\r\n", "\n") == "plain: Hi\n"
        assert "<p>there</p>" in message.get_body(("html",)).get_content().replace("\r\n", "\n")  # default HTML kept


class Urgent:
    """A hook renderer that asks to go first and only decides the subject of critical notifications."""

    @email_hookimpl(tryfirst=True)
    def email_subject(self, notification: Any) -> str | None:
        return f"URGENT: {notification.payload.title}" if notification.payload.severity == "critical" else None


def hooks_module() -> Any:
    def register(reg: Any) -> None:
        def init(templates: EmailTemplates) -> None:
            templates.set_template_renderer(Branded())
            templates.add_renderer(Urgent())

        reg.register_init(deps={"templates": email_templates_extension_point}, init=init)

    return create_backend_module("notifications", "email-hooks", register)


async def test_template_parts_are_firstresult_hooks(smtp: SmtpServer) -> None:
    """The first answer wins (tryfirst first); None falls through to the next renderer, then the default."""
    async with start_host(config=email_config(smtp.port), features=[hooks_module()]) as host:
        await send(host, user("jane"), title="Fire", severity="critical")
        [urgent] = await eventually(lambda: smtp.sink.messages)
        assert urgent["Subject"] == "URGENT: Fire"
        await send(host, user("jane"), title="Calm")
        await eventually(lambda: len(smtp.sink.messages) == 2)
        assert smtp.sink.messages[1]["Subject"] == "[Portal] Calm"


def test_renderer_hook_without_a_spec_is_refused() -> None:
    class Typo:
        @email_hookimpl
        def email_subjet(self, notification: Any) -> str:
            return "never"

    with pytest.raises(Exception, match="email_subjet"):
        EmailTemplates().add_renderer(Typo())


def test_only_one_template_renderer() -> None:
    templates = EmailTemplates()
    templates.set_template_renderer(Branded())
    with pytest.raises(RuntimeError, match="Email template renderer already set"):
        templates.set_template_renderer(Branded())


# -- settings and helpers ----------------------------------------------------------


def read(email_settings: dict[str, Any]) -> Any:
    return read_email_settings(Config({"notifications": {"processors": {"email": email_settings}}}))


SMTP = {"transport": "smtp", "hostname": "mail", "port": 25}


def test_settings_defaults_and_errors() -> None:
    assert read_email_settings(Config({})) is None
    settings = read({"sender": "a@example.com", "transportConfig": SMTP})
    assert settings.concurrency_limit == 2
    assert settings.throttle_interval.total_seconds() == 0.1
    assert settings.cache_ttl.total_seconds() == 3600
    assert settings.broadcast_receiver is None and settings.allowlist is None
    assert settings.transport.secure is False and settings.transport.require_tls is False
    with pytest.raises(ConfigError, match="Unsupported transport 'azure'"):
        read({"sender": "a@example.com", "transportConfig": {"transport": "azure", "endpoint": "x"}})
    with pytest.raises(ConfigError, match="notifications.processors.email.sender"):
        read({"transportConfig": SMTP})
    with pytest.raises(ConfigError, match="Invalid broadcast receiver 'all'"):
        read({"sender": "a@example.com", "transportConfig": SMTP, "broadcastConfig": {"receiver": "all"}})
    with pytest.raises(ConfigError, match="concurrencyLimit"):
        read({"sender": "a@example.com", "transportConfig": SMTP, "concurrencyLimit": 0})


def test_invalid_filter_fails_at_startup() -> None:
    settings = read({"sender": "a@example.com", "transportConfig": SMTP, "filter": {"minSeverity": "urgent"}})
    with pytest.raises(ValueError, match="Invalid minSeverity"):
        EmailProcessor(settings, catalog=None, logger=None, base_url="http://x")


def test_addresses() -> None:
    assert is_single_address("jane@example.com")
    for bad in ("jane", "a@b, c@d", "Jane <jane@example.com>", "a b@c", ""):
        assert not is_single_address(bad)


async def test_ttl_cache_expires() -> None:
    now = [0.0]
    cache = TtlCache(10, clock=lambda: now[0])
    loads: list[int] = []

    async def load() -> int:
        loads.append(1)
        return len(loads)

    assert await cache.get_or_load("k", load) == 1
    now[0] = 9.9
    assert await cache.get_or_load("k", load) == 1
    now[0] = 10.1
    assert await cache.get_or_load("k", load) == 2


async def test_concurrency_limit_and_throttle() -> None:
    """At most ``concurrencyLimit`` messages in flight; each slot waits ``throttleInterval`` after its send."""
    settings = read(
        {
            "sender": "a@example.com",
            "transportConfig": {"transport": "stream"},
            "broadcastConfig": {"receiver": "config", "receiverEmails": [f"u{i}@example.com" for i in range(6)]},
            "concurrencyLimit": 2,
            "throttleInterval": {"milliseconds": 50},
        }
    )
    in_flight, peak, sent = [0], [0], []

    class Slow:
        async def send(self, message: EmailMessage) -> None:
            in_flight[0] += 1
            peak[0] = max(peak[0], in_flight[0])
            await asyncio.sleep(0.01)
            sent.append(message["To"])
            in_flight[0] -= 1

    processor = EmailProcessor(
        settings, catalog=None, logger=None, base_url="http://x", transport_factory=lambda *_: Slow()
    )
    from plugin_notifications import Notification

    notification = Notification.model_validate(
        {"id": "n1", "user": None, "created": "2026-01-01T00:00:00Z", "origin": "test", "payload": {"title": "t"}}
    )
    started = time.monotonic()
    await processor.notifications_deliver([Delivery("d1", "Email", notification)])
    assert len(sent) == 6 and peak[0] == 2
    assert time.monotonic() - started >= 3 * 0.05


async def test_stream_transport_keeps_and_logs_messages() -> None:
    logged: list[str] = []

    class Logger:
        def info(self, message: str, *args: Any, **_: Any) -> None:
            logged.append(message % args)

    settings = read({"sender": "a@example.com", "transportConfig": {"transport": "stream"}})
    transport = create_transport(settings.transport, Logger())
    processor = EmailProcessor(settings, catalog=None, logger=Logger(), base_url="http://x")
    await transport.send(processor.build_message("jane@example.com", EmailContent("Line\nbreak", "t", "<p>h</p>")))
    assert isinstance(transport, StreamTransport) and len(transport.sent) == 1
    assert transport.sent[0]["Subject"] == "Line break"  # no header injection through the title
    assert logged == ["Email (stream transport, not sent) to jane@example.com: Line break"]
