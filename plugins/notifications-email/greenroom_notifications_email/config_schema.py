"""The email module's config section (``notifications.processors.email``), for ``greenroom config check``.

:func:`greenroom_notifications_email.settings.read_email_settings` reads the
same keys at startup.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from host.config_schema import ConfigSection, Duration
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


class EmailCache(ConfigSection):
    """``cache``."""

    ttl: Duration | None = None


class EmailConfig(ConfigSection):
    """``notifications.processors.email``."""

    sender: str
    reply_to: str | None = None
    transport_config: SmtpTransport | StreamTransport = Field(discriminator="transport")
    allowlist_email_addresses: list[str] | None = None
    denylist_email_addresses: list[str] | None = None
    broadcast_config: BroadcastConfig | None = None
    filter: EmailFilter | None = None
    concurrency_limit: int | None = Field(default=None, ge=1)
    throttle_interval: Duration | None = None
    cache: EmailCache | None = None
