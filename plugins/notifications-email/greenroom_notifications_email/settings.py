"""Reading ``notifications.processors.email`` into :class:`EmailSettings`.

The keys follow Backstage's ``notifications-backend-module-email``::

    notifications:
      processors:
        email:
          sender: backstage@example.com          # required
          replyTo: no-reply@example.com
          transportConfig:                       # required
            transport: smtp                      # smtp | ses | sendmail | stream (debug: logged, not sent)
            hostname: smtp.example.com
            port: 587
            secure: false                        # TLS from the first byte (port 465)
            requireTls: false                    # refuse to send without STARTTLS
            username: ${SMTP_USER}
            password: ${SMTP_PASSWORD}
            maxMessages: 100                     # messages per reused connection
            idleTimeout: {seconds: 10}           # close a connection idle this long
          sesConfig: {fromArn: ..., configurationSetName: ...}   # with transport: ses
          allowedEmailDomains: [example.com]     # only addresses in these domains...
          allowlistEmailAddresses: [...]         # ...or on this list (only these, without domains)
          denylistEmailAddresses: [...]          # never these (wins over both)
          broadcastConfig:
            receiver: users                      # none | users | config
            receiverEmails: [...]                # with receiver: config
          filter: {minSeverity: high, maxSeverity: critical, excludedTopics: [...], includedTopics: [...]}
          concurrencyLimit: 2
          throttleInterval: {milliseconds: 100}
          cache: {ttl: {hours: 1}}

Everything is checked when the module starts, so a typo fails startup with
the key named, rather than the first email.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal

from host import Config, ConfigError
from plugin_notifications.rich_text import DescriptionFormat, configured_default

CONFIG_KEY = "notifications.processors.email"
TRANSPORTS = ("smtp", "ses", "sendmail", "stream")
BROADCAST_RECEIVERS = ("none", "users", "config")

BroadcastReceiver = Literal["none", "users", "config"]

# One plain address, the shape Zod's ``email()`` accepts (what Backstage checks): a dot-atom local
# part without leading, trailing or doubled dots, and a domain of labels ending in a 2+ letter TLD.
_ADDRESS = re.compile(
    r"^(?!\.)(?!.*\.\.)[A-Z0-9_'+\-.]*[A-Z0-9_+\-]@(?:[A-Z0-9][A-Z0-9\-]*\.)+[A-Z]{2,}$", re.IGNORECASE
)
#: RFC 5321's limit on a forward path.
MAX_ADDRESS_LENGTH = 254


def is_valid_address(value: str) -> bool:
    """Whether ``value`` is one well-formed address such as ``jane@example.com`` (no name, no list)."""
    return len(value) <= MAX_ADDRESS_LENGTH and bool(_ADDRESS.match(value))


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
    #: messages sent over one connection before it is closed and a new one opened
    max_messages: int = 100
    #: seconds a pooled connection may stay idle before it is closed
    idle_timeout: float = 10.0


@dataclass(frozen=True)
class SesOptions:
    """``sesConfig``: per-message SES options (Backstage's names)."""

    from_arn: str | None = None
    source_arn: str | None = None
    configuration_set_name: str | None = None


@dataclass(frozen=True)
class SesSettings:
    """``transportConfig`` with ``transport: ses`` (credentials from the default AWS chain)."""

    region: str | None = None
    endpoint: str | None = None
    account_id: str | None = None
    api_version: str | None = None
    timeout: float = 30.0
    options: SesOptions = field(default_factory=SesOptions)


@dataclass(frozen=True)
class SendmailSettings:
    """``transportConfig`` with ``transport: sendmail``."""

    path: str = "/usr/sbin/sendmail"
    newline: Literal["unix", "windows"] = "unix"
    timeout: float = 60.0


@dataclass(frozen=True)
class StreamSettings:
    """``transportConfig`` with ``transport: stream``: messages are logged, never sent."""


TransportSettings = SmtpSettings | SesSettings | SendmailSettings | StreamSettings


@dataclass(frozen=True)
class EmailSettings:
    """The validated email processor configuration."""

    sender: str
    transport: TransportSettings
    reply_to: str | None = None
    #: lower-cased addresses; ``None``: no allowlist
    allowlist: tuple[str, ...] | None = None
    #: lower-cased addresses
    denylist: tuple[str, ...] = ()
    #: lower-cased domains; ``None``: any domain
    allowed_domains: tuple[str, ...] | None = None
    broadcast_receiver: BroadcastReceiver | None = None
    broadcast_emails: tuple[str, ...] = ()
    filters: dict[str, Any] = field(default_factory=dict)
    concurrency_limit: int = 2
    throttle_interval: timedelta = timedelta(milliseconds=100)
    cache_ttl: timedelta = timedelta(hours=1)
    #: ``notifications.descriptionFormat``: how a description without ``metadata.descriptionFormat`` is read
    description_format: DescriptionFormat = "plain"
    #: ``sesConfig`` given with a transport other than ``ses`` (ignored, warned about at startup)
    ses_config_unused: bool = False


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
    receiver_emails = (broadcast.get_optional_string_list("receiverEmails") if broadcast is not None else None) or []
    _check_addresses(receiver_emails, "broadcastConfig.receiverEmails")
    allowlist = email.get_optional_string_list("allowlistEmailAddresses")
    domains = email.get_optional_string_list("allowedEmailDomains")
    ses_options = _ses_options(email)
    transport = _transport(email.get_config("transportConfig"), ses_options)
    return EmailSettings(
        sender=email.get_string("sender"),
        reply_to=email.get_optional_string("replyTo"),
        transport=transport,
        allowlist=_lowered(allowlist) if allowlist is not None else None,
        denylist=_lowered(email.get_optional_string_list("denylistEmailAddresses") or []),
        allowed_domains=_lowered(domains) if domains is not None else None,
        broadcast_receiver=receiver,  # type: ignore[arg-type]
        broadcast_emails=tuple(dict.fromkeys(address.strip() for address in receiver_emails)),
        filters=_filters(email),
        concurrency_limit=_positive_int(email, "concurrencyLimit", 2),
        throttle_interval=email.get_optional_duration("throttleInterval") or timedelta(milliseconds=100),
        cache_ttl=email.get_optional_duration("cache.ttl") or timedelta(hours=1),
        description_format=configured_default(config.get_optional("notifications.descriptionFormat")),
        ses_config_unused=email.has("sesConfig") and not isinstance(transport, SesSettings),
    )


def _lowered(values: list[str]) -> tuple[str, ...]:
    """Trimmed, lower-cased, without repeats (Backstage compares addresses and domains this way)."""
    return tuple(dict.fromkeys(value.strip().lower() for value in values))


def _check_addresses(addresses: list[str], key: str) -> None:
    for address in addresses:
        if not is_valid_address(address.strip()):
            raise ConfigError(f"Invalid email address {address!r} at '{CONFIG_KEY}.{key}'")


def _ses_options(email: Config) -> SesOptions:
    if not email.has("sesConfig"):
        return SesOptions()
    ses = email.get_config("sesConfig")
    return SesOptions(
        from_arn=ses.get_optional_string("fromArn"),
        source_arn=ses.get_optional_string("sourceArn"),
        configuration_set_name=ses.get_optional_string("configurationSetName"),
    )


def _transport(transport: Config, ses_options: SesOptions) -> TransportSettings:
    kind = transport.get_string("transport")
    if kind == "stream":
        return StreamSettings()
    if kind == "ses":
        return SesSettings(
            region=transport.get_optional_string("region"),
            endpoint=transport.get_optional_string("endpoint"),
            account_id=transport.get_optional_string("accountId"),
            api_version=transport.get_optional_string("apiVersion"),
            options=ses_options,
        )
    if kind == "sendmail":
        newline = transport.get_optional_string("newline") or "unix"
        if newline not in ("unix", "windows"):
            raise ConfigError(
                f"Invalid newline '{newline}' at '{CONFIG_KEY}.transportConfig.newline', expected unix or windows"
            )
        return SendmailSettings(path=transport.get_optional_string("path") or "/usr/sbin/sendmail", newline=newline)  # type: ignore[arg-type]
    if kind != "smtp":
        raise ConfigError(
            f"Unsupported transport '{kind}' at '{CONFIG_KEY}.transportConfig.transport'; "
            f"Greenroom supports {', '.join(TRANSPORTS)}"
        )
    idle = transport.get_optional_duration("idleTimeout")
    return SmtpSettings(
        hostname=transport.get_string("hostname"),
        port=int(transport.get_number("port")),
        secure=bool(transport.get_optional_boolean("secure")),
        require_tls=bool(transport.get_optional_boolean("requireTls")),
        username=transport.get_optional_string("username"),
        password=transport.get_optional_string("password"),
        max_messages=_positive_int(transport, "maxMessages", 100, prefix="transportConfig."),
        idle_timeout=idle.total_seconds() if idle is not None else 10.0,
    )


def _filters(email: Config) -> dict[str, Any]:
    filters: dict[str, Any] = {}
    for key in ("minSeverity", "maxSeverity"):
        value = email.get_optional_string(f"filter.{key}")
        if value is not None:
            filters[key] = value
    for key in ("excludedTopics", "includedTopics"):
        topics = email.get_optional_string_list(f"filter.{key}")
        if topics is not None:
            filters[key] = topics
    return filters


def _positive_int(config: Config, key: str, default: int, prefix: str = "") -> int:
    value = config.get_optional_number(key)
    if value is None:
        return default
    if value < 1 or int(value) != value:
        raise ConfigError(f"Invalid value at '{CONFIG_KEY}.{prefix}{key}', expected a positive integer")
    return int(value)
