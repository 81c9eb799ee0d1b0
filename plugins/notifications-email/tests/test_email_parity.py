"""Email parity with Backstage's module: topics, domains, allow/deny precedence, invalid addresses,
Markdown bodies, SMTP connection reuse, and the SES and sendmail transports (all on 127.0.0.1)."""

from __future__ import annotations

import asyncio
import stat
from email.message import EmailMessage
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from email_servers import FAST_DELIVERY, FakeSes, SmtpServer, SmtpSink, send, smtp_server  # noqa: F401 - the smtp fixture
from greenroom_notifications_email import read_email_settings
from greenroom_notifications_email.config_schema import EmailConfig
from greenroom_notifications_email.processor import screen_addresses
from greenroom_notifications_email.settings import SmtpSettings, is_valid_address
from greenroom_notifications_email.templates import markdown_to_text
from greenroom_notifications_email.transport import SendmailError, SendmailTransport, SmtpTransport

from host.config import Config, ConfigError
from host.testing import eventually
from plugin_notifications import ProcessorFilters
from tests.conftest import HostHandle, free_port, start_host

FIXTURES = Path(__file__).parent / "fixtures"
ORG = FIXTURES / "email-org.yaml"
DOMAINS = FIXTURES / "email-domains.yaml"


def host_config(catalog: Path, email: dict[str, Any], **notifications: Any) -> dict[str, Any]:
    """The catalog file and ``notifications.processors.email`` (fast outbox retries)."""
    return {
        "catalog": {"locations": [{"type": "file", "target": str(catalog)}]},
        "notifications": {"processors": {"email": email}, "delivery": FAST_DELIVERY, **notifications},
    }


def smtp_email(port: int, **settings: Any) -> dict[str, Any]:
    return {
        "sender": "greenroom@example.com",
        "transportConfig": {"transport": "smtp", "hostname": "127.0.0.1", "port": port},
        "throttleInterval": {"milliseconds": 0},
        **settings,
    }


async def email_status(host: HostHandle, notification: dict[str, Any]) -> dict[str, Any] | None:
    """The ``Email`` channel's row in the notification's delivery log (as its user sees it)."""
    headers = await host.user_headers(notification["user"])
    response = await host.client.get(f"/api/notifications/{notification['id']}/deliveries", headers=headers)
    assert response.status_code == 200, response.text
    rows = [row for row in response.json()["channels"] if row["channel"] == "Email"]
    return rows[0] if rows else None


def group(name: str) -> dict[str, Any]:
    return {"type": "entity", "entityRef": f"group:default/{name}"}


# -- recipients and filters, as Backstage --------------------------------------------------


async def test_included_topics_and_allowed_domains_filter_as_backstage(smtp: SmtpServer) -> None:
    email = smtp_email(
        smtp.port,
        filter={"includedTopics": ["deploys"]},
        allowedEmailDomains=["EXAMPLE.com"],
        allowlistEmailAddresses=[" carl@other.org "],  # outside the domains, but allowlisted
        denylistEmailAddresses=["DORA@example.com"],  # in the domain, but denied: the denylist wins
        broadcastConfig={"receiver": "users"},
    )
    async with start_host(config=host_config(DOMAINS, email)) as host:
        other_topic = await send(host, group("mixed"), title="other", topic="builds")
        no_topic = await send(host, group("mixed"), title="no topic")
        passing = await send(host, group("mixed"), title="deploy", topic="deploys")
        await send(host, {"type": "broadcast"}, title="broadcast", topic="deploys")
        await eventually(lambda: len(smtp.sink.messages) == 4)
        by_subject: dict[str, list[str]] = {}
        for message in smtp.sink.messages:
            by_subject.setdefault(str(message["Subject"]), []).append(str(message["To"]))
        assert {subject: sorted(to) for subject, to in by_subject.items()} == {
            "deploy": ["Carl@OTHER.org", "ann@example.com"],
            "broadcast": ["Carl@OTHER.org", "ann@example.com"],
        }
        # topics outside includedTopics (and no topic at all) never reach the email outbox
        for notification in [*other_topic, *no_topic]:
            assert await email_status(host, notification) is None
        statuses = {n["user"]: await eventually(lambda n=n: _settled(host, n)) for n in passing}
        assert {user: status["status"] for user, status in statuses.items()} == {
            "user:default/ann": "sent",
            "user:default/carl": "sent",
            "user:default/bob": "skipped",  # outside allowedEmailDomains
            "user:default/dora": "skipped",  # denylisted
        }


async def _settled(host: HostHandle, notification: dict[str, Any]) -> dict[str, Any] | None:
    status = await email_status(host, notification)
    return status if status and status["status"] not in ("pending", "failed") else None  # failed: retry due


async def test_invalid_catalog_address_fails_at_once(smtp: SmtpServer) -> None:
    """An address that can never be sent to is dead on the first attempt, not retried until maxAttempts."""
    async with start_host(config=host_config(ORG, smtp_email(smtp.port))) as host:
        [broken] = await send(host, {"type": "entity", "entityRef": "user:default/broken"})
        status = await eventually(lambda: _settled(host, broken))
        assert status["status"] == "dead" and status["attempts"] == 1
        assert "invalid email address" in status["lastError"]
        assert "not an address" not in status["lastError"]  # the address itself stays out of the log
        assert smtp.sink.attempts == 0


def test_allow_and_deny_precedence() -> None:
    addresses = ["a@x.com", "B@Y.org", "c@y.org", "d@x.com"]
    # nothing configured: everyone
    assert screen_addresses(addresses, allowlist=None, allowed_domains=None) == addresses
    # an allowlist alone is closed: only its addresses (case-insensitive)
    assert screen_addresses(addresses, allowlist=["b@y.org"], allowed_domains=None) == ["B@Y.org"]
    assert screen_addresses(addresses, allowlist=[], allowed_domains=None) == []
    # domains, widened by the allowlist; the denylist beats both
    assert screen_addresses(addresses, allowlist=["c@y.org"], allowed_domains=["x.com"], denylist=["d@x.com"]) == [
        "a@x.com",
        "c@y.org",
    ]
    assert screen_addresses(addresses, allowlist=["c@y.org"], allowed_domains=None, denylist=["c@y.org"]) == []


def test_included_and_excluded_topics() -> None:
    filters = ProcessorFilters.model_validate({"includedTopics": ["a", "b"], "excludedTopics": ["b"]})
    assert filters.accepts("normal", "a")
    assert not filters.accepts("normal", "b")  # excluded wins
    assert not filters.accepts("normal", "c")
    assert not filters.accepts("normal", None)  # no topic never matches an include list
    assert ProcessorFilters().accepts("normal", None)


def test_address_validation() -> None:
    for good in ("jane@example.com", "j.o'neil+tag@mail.example.co.uk", "X_Y-z@EXAMPLE.ORG"):
        assert is_valid_address(good), good
    for bad in ("jane", "a@b", "a@b, c@d.com", "Jane <jane@example.com>", "a b@c.com", ".a@b.com", "a..b@c.com",
                "a.@b.com", '"q"@b.com', "a@-b.com", "", f"{'a' * 250}@b.com"):  # fmt: skip
        assert not is_valid_address(bad), bad


def read(email: dict[str, Any], **root: Any) -> Any:
    return read_email_settings(Config({"notifications": {"processors": {"email": email}, **root}}))


def test_new_keys_are_read_and_checked() -> None:
    settings = read(
        {
            "sender": "a@example.com",
            "transportConfig": {"transport": "ses", "region": "eu-west-1", "endpoint": "http://127.0.0.1:1"},
            "sesConfig": {"fromArn": "arn:from", "sourceArn": "arn:src", "configurationSetName": "set"},
            "allowedEmailDomains": [" Example.COM "],
            "allowlistEmailAddresses": ["A@Other.org"],
            "filter": {"includedTopics": ["t"]},
        },
        descriptionFormat="markdown",
    )
    assert settings.allowed_domains == ("example.com",) and settings.allowlist == ("a@other.org",)
    assert settings.transport.region == "eu-west-1" and settings.transport.options.from_arn == "arn:from"
    assert settings.filters == {"includedTopics": ["t"]} and settings.description_format == "markdown"
    with pytest.raises(ConfigError, match=r"Invalid email address 'ops' at '.*broadcastConfig.receiverEmails'"):
        read(
            {
                "sender": "a@example.com",
                "transportConfig": {"transport": "stream"},
                "broadcastConfig": {"receiver": "config", "receiverEmails": ["ops"]},
            }
        )
    # the config schema (greenroom config check) knows every transport's keys
    for transport in (
        {"transport": "ses", "region": "r", "endpoint": "e", "accountId": "1", "apiVersion": "v"},
        {"transport": "sendmail", "path": "/bin/x", "newline": "windows"},
        {"transport": "smtp", "hostname": "h", "port": 25, "maxMessages": 5, "idleTimeout": {"seconds": 1}},
    ):
        EmailConfig.model_validate({"sender": "a@b.co", "transportConfig": transport, "sesConfig": {"fromArn": "x"}})


# -- Markdown ---------------------------------------------------------------------------

HOSTILE = (
    "**Deployed** [notes](https://docs.example.com/notes)\n\n"
    "<script>alert(1)</script>\n\n"
    '[click](javascript:alert(2)) and <img src=x onerror=alert(3)> <a href="https://evil.example">raw</a>\n'
)


async def test_markdown_description_renders_harmlessly(smtp: SmtpServer) -> None:
    config = host_config(ORG, smtp_email(smtp.port), descriptionFormat="markdown")  # the config default
    async with start_host(config=config) as host:
        jane = {"type": "entity", "entityRef": "user:default/jane"}
        await send(host, jane, title="md", description=HOSTILE)
        await send(host, jane, title="plain", description="a <b>b</b>", metadata={"descriptionFormat": "plain"})
        await eventually(lambda: len(smtp.sink.messages) == 2)
    messages = {str(m["Subject"]): m for m in smtp.sink.messages}
    html = messages["md"].get_body(("html",)).get_content()
    assert "<strong>Deployed</strong>" in html
    assert '<a href="https://docs.example.com/notes" rel="noopener noreferrer">notes</a>' in html
    tags = html_tags(html)
    assert {name for name, _ in tags} <= {"html", "body", "div", "p", "a", "strong"}, tags
    hrefs = [value for _, attrs in tags for key, value in attrs if key == "href"]
    assert hrefs == ["https://docs.example.com/notes", f"{host.config['app']['baseUrl']}/notifications"]
    assert not [key for _, attrs in tags for key, _ in attrs if key.startswith("on")]
    assert "&lt;script&gt;" in html and "[click](javascript:alert(2))" in html  # inert text
    text = messages["md"].get_body(("plain",)).get_content()
    assert text.replace("\r\n", "\n").startswith("Deployed notes (https://docs.example.com/notes)\n\n<script>")
    plain_html = messages["plain"].get_body(("html",)).get_content()
    assert "<p>a &lt;b&gt;b&lt;/b&gt;</p>" in plain_html  # plain descriptions stay escaped text


def html_tags(html: str) -> list[tuple[str, list[tuple[str, str]]]]:
    """Every start tag in ``html`` with its attributes, as a browser's tokenizer reads them."""
    found: list[tuple[str, list[tuple[str, str]]]] = []

    class Collector(HTMLParser):
        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            found.append((tag, [(key, value or "") for key, value in attrs]))

    Collector().feed(html)
    return found


def test_markdown_to_text() -> None:
    text = markdown_to_text("# Up\n\n- one [a](https://a.example)\n- two\n\n3. x\n4. y\n\n```\ncode\n```\n\n> q")
    assert text == "Up\n\n- one a (https://a.example)\n- two\n\n3. x\n4. y\n\n    code\n\n> q"


# -- SMTP connections ---------------------------------------------------------------------


def message(to: str, subject: str = "s") -> EmailMessage:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "greenroom@example.com", to, subject
    msg.set_content("body")
    return msg


async def test_a_batch_goes_over_one_connection_per_slot(smtp: SmtpServer) -> None:
    receivers = [f"r{i}@example.com" for i in range(8)]
    for limit, most in ((1, 1), (3, 3)):
        smtp.sink.messages.clear()
        smtp.sink.peers.clear()
        email = smtp_email(
            smtp.port, concurrencyLimit=limit, broadcastConfig={"receiver": "config", "receiverEmails": receivers}
        )
        async with start_host(config=host_config(ORG, email)) as host:
            await send(host, {"type": "broadcast"})
            await eventually(lambda: len(smtp.sink.messages) == 8)
        assert smtp.sink.to() == receivers
        assert 1 <= smtp.sink.connections() <= most


async def test_reconnects_when_the_server_drops_a_pooled_connection() -> None:
    sink = SmtpSink()
    port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    transport = SmtpTransport(SmtpSettings("127.0.0.1", port, max_messages=3, idle_timeout=30), concurrency=1)
    try:
        for index in range(4):
            await transport.send(message(f"u{index}@example.com"))
        assert transport.connections_opened == 2  # maxMessages: 3, then a new connection
        await asyncio.to_thread(controller.stop)  # the server restarts and drops the pooled connection
        controller = Controller(sink, hostname="127.0.0.1", port=port)
        await asyncio.to_thread(controller.start)
        await transport.send(message("after@example.com"))
        assert transport.connections_opened == 3
        assert len(sink.messages) == 5 and sink.connections() == 3
    finally:
        await transport.close()
        controller.stop()


async def test_refused_message_keeps_the_connection(smtp: SmtpServer) -> None:
    transport = SmtpTransport(SmtpSettings("127.0.0.1", smtp.port, idle_timeout=30), concurrency=1)
    smtp.sink.replies = ["550 5.1.1 No such mailbox"]
    try:
        with pytest.raises(Exception, match="550") as refused:
            await transport.send(message("gone@example.com"))
        assert not transport.is_transient(refused.value)
        await transport.send(message("here@example.com"))
        assert transport.connections_opened == 1 and smtp.sink.to() == ["here@example.com"]
    finally:
        await transport.close()


# -- SES ----------------------------------------------------------------------------------


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Credentials for boto3's default chain (never used beyond 127.0.0.1)."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDLOCALTEST")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "local-secret")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


async def test_ses_transport_sends_raw_mime_with_ses_config(aws_env: None) -> None:
    with FakeSes() as ses:
        email = {
            "sender": "greenroom@example.com",
            "replyTo": "no-reply@example.com",
            "transportConfig": {"transport": "ses", "region": "eu-west-1", "endpoint": ses.url},
            "sesConfig": {"fromArn": "arn:aws:ses:eu-west-1:123456789012:identity/example.com",
                          "configurationSetName": "greenroom", "sourceArn": "arn:ignored"},
            "throttleInterval": {"milliseconds": 0},
        }  # fmt: skip
        async with start_host(config=host_config(ORG, email)) as host:
            jane = {"type": "entity", "entityRef": "user:default/jane"}
            [sent] = await send(host, jane, title="Via SES", description="hello")
            first_status = await eventually(lambda: _settled(host, sent))
            assert first_status["status"] == "sent" and first_status["attempts"] == 1
            ses.replies = [(429, "TooManyRequestsException")]
            [throttled] = await send(host, jane, title="Throttled once")
            status = await eventually(lambda: _settled(host, throttled))
            assert status["status"] == "sent" and status["attempts"] == 2
            ses.replies = [(400, "MessageRejected")]
            [rejected] = await send(host, jane, title="Rejected")
            status = await eventually(lambda: _settled(host, rejected))
            assert status["status"] == "dead" and status["attempts"] == 1 and "MessageRejected" in status["lastError"]
    first = ses.requests[0]
    assert first.path == "/v2/email/outbound-emails"
    assert first.headers["authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIDLOCALTEST/")
    assert "/eu-west-1/ses/aws4_request" in first.headers["authorization"]
    assert first.body["FromEmailAddress"] == "greenroom@example.com"
    assert first.body["Destination"] == {"ToAddresses": ["jane@example.com"]}
    assert first.body["FromEmailAddressIdentityArn"].endswith(":identity/example.com")
    assert first.body["ConfigurationSetName"] == "greenroom"
    raw = first.message()
    assert raw["Subject"] == "Via SES" and raw["Reply-To"] == "no-reply@example.com"
    assert raw["Message-ID"] == f"<{first_status['deliveryId']}.0@example.com>"
    assert "hello" in raw.get_body(("plain",)).get_content()
    assert [r.message()["Subject"] for r in ses.requests] == ["Via SES", "Throttled once"]


# -- sendmail -----------------------------------------------------------------------------


def fake_sendmail(directory: Path) -> Path:
    """A sendmail stand-in: records its arguments and input; exits with the status in ``exit`` (default 0)."""
    script = directory / "sendmail"
    script.write_text(
        "#!/bin/sh\n"
        'dir=$(dirname "$0")\n'
        'printf "%s\\n" "$@" > "$dir/args"\n'
        'cat > "$dir/input"\n'
        'exit $(cat "$dir/exit" 2>/dev/null || echo 0)\n'
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


async def test_sendmail_transport(tmp_path: Path) -> None:
    from greenroom_notifications_email.settings import SendmailSettings

    script = fake_sendmail(tmp_path)
    transport = SendmailTransport(SendmailSettings(path=str(script), newline="unix"))
    await transport.send(message("jane@example.com", "Hi"))
    assert (tmp_path / "args").read_text().split("\n")[:5] == ["-i", "-f", "greenroom@example.com", "--",
                                                              "jane@example.com"]  # fmt: skip
    data = (tmp_path / "input").read_bytes()
    assert b"Subject: Hi\n" in data and b"\r\n" not in data
    (tmp_path / "exit").write_text("75")
    with pytest.raises(SendmailError) as tempfail:
        await transport.send(message("jane@example.com"))
    assert transport.is_transient(tempfail.value)
    (tmp_path / "exit").write_text("67")
    with pytest.raises(SendmailError) as unknown_user:
        await transport.send(message("jane@example.com"))
    assert not transport.is_transient(unknown_user.value)
    missing = SendmailTransport(SendmailSettings(path=str(tmp_path / "nope")))
    with pytest.raises(OSError) as not_there:
        await missing.send(message("jane@example.com"))
    assert missing.is_transient(not_there.value)
