"""``notifications.processors.webhook``: the endpoints and how they are called (pydantic models).

::

    notifications:
      processors:
        webhook:
          timeout: {seconds: 10}            # per request, unless an endpoint sets its own
          concurrency: 8                    # requests in flight per dispatcher batch
          batchSize: 20                     # deliveries per dispatcher call
          maxRetryAfter: {hours: 1}         # a longer Retry-After is cut to this
          entityRefsCacheTtl: {minutes: 1}  # how long an endpoint's resolved entityRefs are kept
          endpoints:
            - url: https://hooks.example.com/greenroom      # required
              secret: ${WEBHOOK_SECRET}                     # required: whsec_<base64>
              name: ops                                     # channel webhook:ops (default: from the url)
              origins: [plugin:catalog]                     # only sends from these origins
              topics: [incident]                            # only these topics
              minimumSeverity: high                         # high and critical only
              entityRefs: [group:default/ops]               # only recipients these refs resolve to
              timeout: {seconds: 5}

Everything is validated when the module starts; an invalid value fails
startup naming the key. Secrets are kept as :class:`pydantic.SecretStr`, so
they never appear in a repr or a log line.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from datetime import timedelta
from typing import Annotated, Any

from pydantic import AfterValidator, Field, SecretStr, ValidationError, field_validator, model_validator

from host.config import Config, ConfigError
from host.config_schema import ConfigSection
from host.config_schema import Duration as AnyDuration
from plugin_notifications.models import Severity

CONFIG_KEY = "notifications.processors.webhook"
SECRET_PREFIX = "whsec_"
#: Channel names are ``webhook:<endpoint name>``.
CHANNEL_PREFIX = "webhook:"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def _positive(value: timedelta) -> timedelta:
    if value <= timedelta(0):
        raise ValueError("must be a positive duration")
    return value


#: A Backstage duration (``{seconds: 5}``, ``PT5S``, ``5s``, milliseconds), positive.
Duration = Annotated[AnyDuration, AfterValidator(_positive)]


def secret_key(secret: str) -> bytes:
    """The HMAC key of a ``whsec_<base64>`` secret; raises :class:`ValueError` if it is not one."""
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError(f"must start with {SECRET_PREFIX}")
    encoded = secret[len(SECRET_PREFIX) :]
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"must be {SECRET_PREFIX} followed by base64") from None
    if len(key) < 24:
        raise ValueError("must hold at least 24 random bytes (Standard Webhooks)")
    return key


class WebhookEndpoint(ConfigSection):
    """One receiver: where to POST, the signing secret and which notifications it wants (camelCase keys)."""

    url: str
    secret: SecretStr
    name: str | None = None
    origins: tuple[str, ...] | None = None
    topics: tuple[str, ...] | None = None
    minimum_severity: Severity | None = None
    entity_refs: tuple[str, ...] | None = None
    timeout: Duration | None = None

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        import httpx

        try:
            url = httpx.URL(value)
        except (httpx.InvalidURL, TypeError) as error:
            raise ValueError(f"must be an http(s) URL ({error})") from None
        if url.scheme not in ("http", "https") or not url.host:
            raise ValueError("must be an http(s) URL")
        return value

    @field_validator("secret")
    @classmethod
    def _whsec(cls, value: SecretStr) -> SecretStr:
        secret_key(value.get_secret_value())
        return value

    @field_validator("name")
    @classmethod
    def _valid_name(cls, value: str | None) -> str | None:
        if value is not None and not _NAME.match(value):
            raise ValueError("must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit")
        return value

    @field_validator("minimum_severity", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value

    @property
    def channel(self) -> str:
        """The outbox channel: ``webhook:<name>``, by default ``webhook:`` and 12 hex digits of the URL's SHA-256.

        Derived from the URL rather than the position, so reordering endpoints keeps
        their pending deliveries; the URL itself (which may hold a token) is never shown.
        """
        name = self.name or hashlib.sha256(self.url.encode()).hexdigest()[:12]
        return CHANNEL_PREFIX + name


class WebhookConfig(ConfigSection):
    """The whole ``notifications.processors.webhook`` section (camelCase keys)."""

    endpoints: tuple[WebhookEndpoint, ...] = ()
    timeout: Duration = timedelta(seconds=10)
    concurrency: int = Field(default=8, ge=1, le=256)
    batch_size: int = Field(default=20, ge=1, le=1000)
    max_retry_after: Duration = timedelta(hours=1)
    entity_refs_cache_ttl: Duration = timedelta(minutes=1)

    @model_validator(mode="after")
    def _unique_channels(self) -> WebhookConfig:
        seen: set[str] = set()
        for endpoint in self.endpoints:
            if endpoint.channel in seen:
                raise ValueError(f"two endpoints share the channel name {endpoint.channel}; give them distinct names")
            seen.add(endpoint.channel)
        return self

    def longest_batch_seconds(self) -> float:
        """How long one dispatcher call can take at worst: every request of a full batch timing out."""
        rounds = -(-self.batch_size // self.concurrency)
        return rounds * max(self.timeout_for(endpoint) for endpoint in self.endpoints) if self.endpoints else 0.0

    def timeout_for(self, endpoint: WebhookEndpoint) -> float:
        """The request timeout of ``endpoint`` in seconds."""
        return (endpoint.timeout or self.timeout).total_seconds()


def read_webhook_config(config: Config) -> WebhookConfig | None:
    """Validate :data:`CONFIG_KEY`; ``None`` when absent. Raises :class:`ConfigError` naming the key."""
    if not config.has(CONFIG_KEY):
        return None
    try:
        return WebhookConfig.model_validate(config.get(CONFIG_KEY))
    except ValidationError as error:
        raise ConfigError(describe(error)) from None


def describe(error: ValidationError) -> str:
    """One line per problem, each naming the full config key (never the rejected value: it may be a secret)."""
    lines = []
    for problem in error.errors(include_input=False, include_url=False):
        key = CONFIG_KEY + "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in problem["loc"])
        message = str(problem["msg"]).removeprefix("Value error, ")
        lines.append(f"Invalid config at '{key}': {message}")
    return "; ".join(lines)
