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
from collections.abc import Sequence
from typing import ClassVar

from pydantic import SecretStr, field_validator

from host import Config
from plugin_notifications.http_channels import HttpChannelSettings, HttpRoute, read_section

CONFIG_KEY = "notifications.processors.webhook"
SECRET_PREFIX = "whsec_"
#: Channel names are ``webhook:<endpoint name>``.
CHANNEL_PREFIX = "webhook:"


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


class WebhookEndpoint(HttpRoute):
    """One receiver: where to POST, the signing secret and which notifications it wants (camelCase keys).

    The URL, name, filters and timeout are :class:`~plugin_notifications.http_channels.HttpRoute`'s;
    the channel is ``webhook:<name>`` (by default ``webhook:`` and 12 hex digits of the URL's SHA-256).
    """

    channel_prefix: ClassVar[str] = CHANNEL_PREFIX

    secret: SecretStr

    @field_validator("secret")
    @classmethod
    def _whsec(cls, value: SecretStr) -> SecretStr:
        secret_key(value.get_secret_value())
        return value


class WebhookConfig(HttpChannelSettings):
    """The whole ``notifications.processors.webhook`` section (camelCase keys)."""

    endpoints: tuple[WebhookEndpoint, ...] = ()

    def http_routes(self) -> Sequence[WebhookEndpoint]:
        """The endpoints."""
        return self.endpoints


def read_webhook_config(config: Config) -> WebhookConfig | None:
    """Validate :data:`CONFIG_KEY`; ``None`` when absent. Raises :class:`ConfigError` naming the key."""
    return read_section(config, CONFIG_KEY, WebhookConfig)
