"""``notifications.processors.slack``: one entry per Slack workspace, as in Backstage (pydantic models).

::

    notifications:
      processors:
        slack:
          - token: ${SLACK_BOT_TOKEN}          # required: the bot token (xoxb-...)
            broadcastChannels: [C0123456789]  # broadcasts no route matches (deprecated in Backstage)
            broadcastRoutes:                   # broadcasts by origin and/or topic
              - origin: plugin:catalog
                topic: entity-updated
                channel: [C0AAAAAAAAA, C0BBBBBBBBB]
              - topic: alerts
                channel: C0CCCCCCCCC
            username: Backstage                # the sender name shown in Slack
            concurrencyLimit: 10               # at most this many Slack calls ...
            throttleInterval: {minutes: 1}     # ... per this interval, per worker
            # Greenroom's own keys:
            name: main                         # outbox channel slack:main (default: slack:<position>)
            apiUrl: https://slack.com/api/     # the Web API base URL
            timeout: {seconds: 10}             # per Slack call
            batchSize: 20                      # deliveries per dispatcher call
            maxRetryAfter: {hours: 1}          # a longer Retry-After is cut to this
            lookupCacheTtl: {minutes: 10}      # catalog entities and e-mail lookups are cached this long
            lookupCacheSize: 10000             # ... up to this many of each
            messageRetention: {hours: 24}      # how long message timestamps are kept for scoped updates

Everything is validated when the module starts; an invalid value fails
startup naming the key. The token is a :class:`pydantic.SecretStr`: it never
appears in a repr, a log line or a config check finding.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated

from pydantic import AfterValidator, Field, RootModel, SecretStr, field_validator, model_validator

from host import Config, ConfigSection
from plugin_notifications.http_channels import Duration, check_http_url, read_section

CONFIG_KEY = "notifications.processors.slack"
#: Outbox channel names are ``slack:<workspace name>``.
CHANNEL_PREFIX = "slack:"
DEFAULT_API_URL = "https://slack.com/api/"


_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def _short_name(value: str) -> str:
    if not _NAME.match(value):
        raise ValueError("must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit")
    return value


class BroadcastRoute(ConfigSection):
    """One route of broadcasts to Slack channels, matched by ``origin`` and/or ``topic``."""

    origin: str | None = None
    topic: str | None = None
    channel: str | tuple[str, ...]

    @field_validator("channel")
    @classmethod
    def _some_channel(cls, value: str | tuple[str, ...]) -> str | tuple[str, ...]:
        channels = (value,) if isinstance(value, str) else value
        if not channels or any(not item.strip() for item in channels):
            raise ValueError("must name at least one Slack channel, none of them empty")
        return value

    @property
    def channels(self) -> tuple[str, ...]:
        """The route's channels as a tuple."""
        return (self.channel,) if isinstance(self.channel, str) else self.channel


class SlackWorkspace(ConfigSection):
    """One Slack workspace (one entry of the list; camelCase keys)."""

    token: SecretStr
    broadcast_channels: tuple[str, ...] | None = None
    broadcast_routes: tuple[BroadcastRoute, ...] | None = None
    username: str | None = None
    concurrency_limit: int = Field(default=10, ge=1, le=10_000)
    throttle_interval: Duration = timedelta(minutes=1)
    name: Annotated[str, AfterValidator(_short_name)] | None = None
    api_url: Annotated[str, AfterValidator(check_http_url)] = DEFAULT_API_URL
    timeout: Duration = timedelta(seconds=10)
    batch_size: int = Field(default=20, ge=1, le=1000)
    max_retry_after: Duration = timedelta(hours=1)
    lookup_cache_ttl: Duration = timedelta(minutes=10)
    lookup_cache_size: int = Field(default=10_000, ge=1, le=1_000_000)
    message_retention: Duration = timedelta(hours=24)

    @field_validator("token")
    @classmethod
    def _not_blank(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().strip():
            raise ValueError("must not be empty")
        return value

    @field_validator("api_url")
    @classmethod
    def _trailing_slash(cls, value: str) -> str:
        return value if value.endswith("/") else value + "/"


class SlackConfig(RootModel[tuple[SlackWorkspace, ...]]):
    """The whole ``notifications.processors.slack`` list."""

    @model_validator(mode="after")
    def _unique_names(self) -> SlackConfig:
        seen: set[str] = set()
        for channel in self.channels():
            if channel in seen:
                raise ValueError(f"two workspaces share the channel name {channel}; give them distinct names")
            seen.add(channel)
        return self

    def channels(self) -> list[str]:
        """The outbox channel of each workspace, in order: ``slack:<name>``, by default ``slack:<position>``."""
        return [CHANNEL_PREFIX + (item.name or str(index)) for index, item in enumerate(self.root)]

    def workspaces(self) -> list[tuple[str, SlackWorkspace]]:
        """``(channel, workspace)`` pairs, in order."""
        return list(zip(self.channels(), self.root, strict=True))


def read_slack_config(config: Config) -> SlackConfig | None:
    """Validate :data:`CONFIG_KEY`; ``None`` when absent. Raises :class:`ConfigError` naming the key.

    Errors never show the rejected value (it may be the token).
    """
    return read_section(config, CONFIG_KEY, SlackConfig)
