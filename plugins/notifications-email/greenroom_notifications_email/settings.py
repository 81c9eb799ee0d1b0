"""Reading ``notifications.processors.email`` into :class:`EmailSettings`.

The keys follow Backstage's ``notifications-backend-module-email``::

    notifications:
      processors:
        email:
          sender: backstage@example.com          # required
          replyTo: no-reply@example.com
          transportConfig:                       # required
            transport: smtp                      # smtp | stream (debug: logged, not sent)
            hostname: smtp.example.com
            port: 587
            secure: false                        # TLS from the first byte (port 465)
            requireTls: false                    # refuse to send without STARTTLS
            username: ${SMTP_USER}
            password: ${SMTP_PASSWORD}
          allowlistEmailAddresses: [...]         # keep only these
          denylistEmailAddresses: [...]          # then drop these
          broadcastConfig:
            receiver: users                      # none | users | config
            receiverEmails: [...]                # with receiver: config
          filter: {minSeverity: high, maxSeverity: critical, excludedTopics: [...]}
          concurrencyLimit: 2
          throttleInterval: {milliseconds: 100}
          cache: {ttl: {hours: 1}}

Everything is checked when the module starts, so a typo fails startup with
the key named, rather than the first email.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal

from host.config import Config, ConfigError

CONFIG_KEY = "notifications.processors.email"
TRANSPORTS = ("smtp", "stream")
BROADCAST_RECEIVERS = ("none", "users", "config")

BroadcastReceiver = Literal["none", "users", "config"]


@dataclass(frozen=True)
class SmtpSettings:
    """``transportConfig`` with ``transport: smtp``."""

    hostname: str
    port: int
    secure: bool = False
    require_tls: bool = False
    username: str | None = None
    password: str | None = None
    timeout: float = 60.0


@dataclass(frozen=True)
class StreamSettings:
    """``transportConfig`` with ``transport: stream``: messages are logged, never sent."""


@dataclass(frozen=True)
class EmailSettings:
    """The validated email processor configuration."""

    sender: str
    transport: SmtpSettings | StreamSettings
    reply_to: str | None = None
    allowlist: tuple[str, ...] | None = None
    denylist: tuple[str, ...] = ()
    broadcast_receiver: BroadcastReceiver | None = None
    broadcast_emails: tuple[str, ...] = ()
    filters: dict[str, Any] = field(default_factory=dict)
    concurrency_limit: int = 2
    throttle_interval: timedelta = timedelta(milliseconds=100)
    cache_ttl: timedelta = timedelta(hours=1)


def read_email_settings(config: Config) -> EmailSettings | None:
    """Read :data:`CONFIG_KEY`; ``None`` when it is absent (the module then stays idle).

    Raises :class:`host.config.ConfigError` naming the key for anything invalid.
    """
    if not config.has(CONFIG_KEY):
        return None
    email = config.get_config(CONFIG_KEY)
    broadcast = email.get_config("broadcastConfig") if email.has("broadcastConfig") else None
    receiver = broadcast.get_string("receiver") if broadcast is not None else None
    if receiver is not None and receiver not in BROADCAST_RECEIVERS:
        raise ConfigError(
            f"Invalid broadcast receiver '{receiver}' at '{CONFIG_KEY}.broadcastConfig.receiver', "
            f"expected one of {', '.join(BROADCAST_RECEIVERS)}"
        )
    allowlist = email.get_optional_string_list("allowlistEmailAddresses")
    return EmailSettings(
        sender=email.get_string("sender"),
        reply_to=email.get_optional_string("replyTo"),
        transport=_transport(email.get_config("transportConfig")),
        allowlist=tuple(allowlist) if allowlist is not None else None,
        denylist=tuple(email.get_optional_string_list("denylistEmailAddresses") or ()),
        broadcast_receiver=receiver,  # type: ignore[arg-type]
        broadcast_emails=tuple(
            (broadcast.get_optional_string_list("receiverEmails") if broadcast is not None else None) or ()
        ),
        filters=_filters(email),
        concurrency_limit=_positive_int(email, "concurrencyLimit", 2),
        throttle_interval=email.get_optional_duration("throttleInterval") or timedelta(milliseconds=100),
        cache_ttl=email.get_optional_duration("cache.ttl") or timedelta(hours=1),
    )


def _transport(transport: Config) -> SmtpSettings | StreamSettings:
    kind = transport.get_string("transport")
    if kind == "stream":
        return StreamSettings()
    if kind != "smtp":
        raise ConfigError(
            f"Unsupported transport '{kind}' at '{CONFIG_KEY}.transportConfig.transport'; "
            f"Greenroom supports {', '.join(TRANSPORTS)}"
        )
    return SmtpSettings(
        hostname=transport.get_string("hostname"),
        port=int(transport.get_number("port")),
        secure=bool(transport.get_optional_boolean("secure")),
        require_tls=bool(transport.get_optional_boolean("requireTls")),
        username=transport.get_optional_string("username"),
        password=transport.get_optional_string("password"),
    )


def _filters(email: Config) -> dict[str, Any]:
    filters: dict[str, Any] = {}
    for key in ("minSeverity", "maxSeverity"):
        value = email.get_optional_string(f"filter.{key}")
        if value is not None:
            filters[key] = value
    topics = email.get_optional_string_list("filter.excludedTopics")
    if topics:
        filters["excludedTopics"] = topics
    return filters


def _positive_int(config: Config, key: str, default: int) -> int:
    value = config.get_optional_number(key)
    if value is None:
        return default
    if value < 1 or int(value) != value:
        raise ConfigError(f"Invalid value at '{CONFIG_KEY}.{key}', expected a positive integer")
    return int(value)
