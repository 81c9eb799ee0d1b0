"""The email module's config section (``notifications.processors.email``), for ``greenroom config check``.

:func:`greenroom_notifications_email.settings.read_email_settings` reads the
same keys at startup.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from host import ConfigSection, Duration
from plugin_notifications.models import Severity


class SmtpTransport(ConfigSection):
    """``transportConfig`` with ``transport: smtp``."""

    transport: Literal["smtp"]
    hostname: str
    port: int = Field(ge=1, le=65535)
    secure: bool | None = None
    require_tls: bool | None = None
    username: str | None = None
    password: str | None = None
    #: Greenroom: messages per reused connection (default 100)
    max_messages: int | None = Field(default=None, ge=1)
    #: Greenroom: close a pooled connection idle this long (default 10 s)
    idle_timeout: Duration | None = None


class SesTransport(ConfigSection):
    """``transportConfig`` with ``transport: ses`` (Amazon SES v2; credentials from the default AWS chain)."""

    transport: Literal["ses"]
    region: str | None = None
    #: another SES-compatible endpoint (for example a local one in tests)
    endpoint: str | None = None
    #: accepted for Backstage configs; credentials come from the default AWS chain
    account_id: str | None = None
    #: accepted for Backstage configs; Greenroom always speaks SES v2
    api_version: str | None = None


class SendmailTransport(ConfigSection):
    """``transportConfig`` with ``transport: sendmail``."""

    transport: Literal["sendmail"]
    path: str | None = None
    newline: Literal["unix", "windows"] | None = None


class SesOptionsConfig(ConfigSection):
    """``sesConfig``: per-message options of the ``ses`` transport."""

    from_arn: str | None = None
    #: SES v1 only: ignored with a warning (as Backstage does on SES v2)
    source_arn: str | None = None
    configuration_set_name: str | None = None


class StreamTransport(ConfigSection):
    """``transportConfig`` with ``transport: stream`` (messages are logged, not sent)."""

    transport: Literal["stream"]


class BroadcastConfig(ConfigSection):
    """``broadcastConfig``: who receives broadcasts by email."""

    receiver: Literal["none", "users", "config"]
    receiver_emails: list[str] | None = None


class EmailFilter(ConfigSection):
    """``filter``."""

    min_severity: Severity | None = None
    max_severity: Severity | None = None
    excluded_topics: list[str] | None = None
    included_topics: list[str] | None = None


class EmailCache(ConfigSection):
    """``cache``."""

    ttl: Duration | None = None


class EmailConfig(ConfigSection):
    """``notifications.processors.email``."""

    sender: str
    reply_to: str | None = None
    transport_config: SmtpTransport | SesTransport | SendmailTransport | StreamTransport = Field(
        discriminator="transport"
    )
    ses_config: SesOptionsConfig | None = None
    allowed_email_domains: list[str] | None = None
    allowlist_email_addresses: list[str] | None = None
    denylist_email_addresses: list[str] | None = None
    broadcast_config: BroadcastConfig | None = None
    filter: EmailFilter | None = None
    concurrency_limit: int | None = Field(default=None, ge=1)
    throttle_interval: Duration | None = None
    cache: EmailCache | None = None
