"""``notifications.processors.msteams``: the routes, the annotation channel and how they are called.

::

    notifications:
      processors:
        msteams:
          timeout: {seconds: 10}            # per request, unless a route sets its own
          concurrency: 8                    # requests in flight per dispatcher batch
          batchSize: 20                     # deliveries per dispatcher call
          maxRetryAfter: {hours: 1}         # a longer Retry-After is cut to this
          entityRefsCacheTtl: {minutes: 1}  # resolved route entityRefs and looked-up annotations are kept this long
          maxTextLength: 4000               # a longer description is cut (Teams refuses messages over ~28 KB)
          annotations:                      # the MSTeams channel: entities annotated microsoft.com/teams-webhook
            enabled: true
            allowedHosts: ["*.webhook.office.com", "*.logic.azure.com", ...]   # see DEFAULT_ALLOWED_HOSTS
            allowedSchemes: [https]
          routes:
            - url: https://prod-12.westeurope.logic.azure.com/workflows/...  # required: Workflows or incoming webhook
              name: ops                     # channel msteams:ops (default: from the url)
              origins: [plugin:catalog]     # only sends from these origins
              topics: [incident]            # only these topics
              minimumSeverity: high         # high and critical only
              entityRefs: [group:default/ops]  # only sends reaching users these refs resolve to
              timeout: {seconds: 5}

Routes and their filters are :class:`plugin_notifications.http_channels.HttpRoute`,
exactly as the webhook module's endpoints. Annotation URLs come from the catalog,
which more people can edit than the config: they are posted to only when their
scheme and host are allowed (by default https and Microsoft's webhook hosts).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from typing import ClassVar, Literal

import httpx
from pydantic import Field, field_validator

from host import Config, ConfigSection
from plugin_notifications.http_channels import HttpChannelSettings, HttpRoute, read_section

CONFIG_KEY = "notifications.processors.msteams"
#: Route channels are ``msteams:<route name>``.
CHANNEL_PREFIX = "msteams:"
#: The annotation that names an entity's Teams webhook (incoming webhook or Workflows URL).
ANNOTATION = "microsoft.com/teams-webhook"
#: Where Teams incoming webhooks and Workflows (Power Automate) triggers live.
DEFAULT_ALLOWED_HOSTS = (
    "*.webhook.office.com",
    "*.logic.azure.com",
    "*.powerautomate.com",
    "*.powerplatform.com",
)


class TeamsRoute(HttpRoute):
    """One configured Teams webhook: ``url``, ``name``, the filters and ``timeout`` (camelCase keys)."""

    channel_prefix: ClassVar[str] = CHANNEL_PREFIX


class AnnotationSettings(ConfigSection):
    """The ``MSTeams`` channel: cards to the webhooks named by recipient entities' annotations."""

    enabled: bool = True
    allowed_hosts: tuple[str, ...] = DEFAULT_ALLOWED_HOSTS
    allowed_schemes: tuple[Literal["http", "https"], ...] = ("https",)

    @field_validator("allowed_hosts")
    @classmethod
    def _lower_hosts(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(host.lower() for host in value)

    def refusal(self, url: str) -> str | None:
        """Why ``url`` may not be posted to (never quoting it: it holds a token), or ``None`` if it may."""
        try:
            parsed = httpx.URL(url.strip())
        except (httpx.InvalidURL, TypeError):
            return "not a URL"
        if parsed.scheme not in self.allowed_schemes:
            return f"scheme {parsed.scheme or '(none)'} is not in allowedSchemes"
        host = parsed.host.lower()
        if not host or not any(fnmatch.fnmatchcase(host, pattern) for pattern in self.allowed_hosts):
            return "host is not in allowedHosts"
        return None


class MSTeamsConfig(HttpChannelSettings):
    """The whole ``notifications.processors.msteams`` section (camelCase keys)."""

    routes: tuple[TeamsRoute, ...] = ()
    annotations: AnnotationSettings = AnnotationSettings()
    max_text_length: int = Field(default=4000, ge=100, le=20000)

    def http_routes(self) -> Sequence[TeamsRoute]:
        """The configured routes."""
        return self.routes


def read_msteams_config(config: Config) -> MSTeamsConfig | None:
    """Validate :data:`CONFIG_KEY`; ``None`` when absent. Raises :class:`ConfigError` naming the key."""
    return read_section(config, CONFIG_KEY, MSTeamsConfig)
