"""The notifications plugin's config section (``notifications``), for ``greenroom config check``.

``notifications.processors.<name>`` belongs to the processor modules; each
declares its own schema for it.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from host import ConfigSection, Duration, PositiveDuration, by_kind
from plugin_notifications.models import NotificationSettings
from plugin_notifications.preferences import PreferencesConfig


class WebInboxConfig(ConfigSection):
    """``notifications.web``: the ``/notifications`` page."""

    title: str | None = None
    api_base_url: str | None = None
    sign_in_provider: Literal["guest", "proxy"] | None = None
    mark_as_read_on_link_open: bool | None = None
    #: where *Switch user* goes after signing out (an authenticating proxy's sign-out URL)
    switch_user_url: str | None = Field(default=None, min_length=1)


#: The deepest ``notifications.limits.maxMetadataDepth`` allowed.
MAX_STORED_METADATA_DEPTH = 200


class NotificationsLimits(ConfigSection):
    """``notifications.limits``: size bounds of the notifications API (see :mod:`plugin_notifications.limits`)."""

    max_description_length: int | None = Field(default=None, gt=0)
    max_link_length: int | None = Field(default=None, gt=0)
    max_metadata_bytes: int | None = Field(default=None, gt=0)
    #: stored metadata nested deeper is left out of responses (JSON encoders stop near 255 levels)
    max_metadata_depth: int | None = Field(default=None, gt=0, le=MAX_STORED_METADATA_DEPTH)
    max_update_ids: int | None = Field(default=None, gt=0)
    max_search_length: int | None = Field(default=None, gt=0)


class IdempotencyConfig(ConfigSection):
    """``notifications.idempotency``: ``Idempotency-Key`` sends (see :mod:`plugin_notifications.idempotency`)."""

    window: PositiveDuration | None = None
    lease: PositiveDuration | None = None
    max_key_length: int | None = Field(default=None, gt=0)
    max_response_bytes: int | None = Field(default=None, gt=0)


class DeliveryBackoff(ConfigSection):
    """``notifications.delivery.backoff``: the exponential retry delay (jittered)."""

    initial: PositiveDuration | None = None
    max: PositiveDuration | None = None


class DeliveryConfigSection(ConfigSection):
    """``notifications.delivery``: the outbox of durable channels (see :mod:`plugin_notifications.outbox`)."""

    max_attempts: int | None = Field(default=None, ge=1)
    backoff: DeliveryBackoff | None = None
    lease_seconds: float | None = Field(default=None, ge=0.1)
    poll_interval: PositiveDuration | None = None
    recipients_per_row: int | None = Field(default=None, ge=1)
    claim_rows: int | None = Field(default=None, ge=1)
    dispatcher: bool | None = None
    plan_later_above: int | None = Field(default=None, ge=0)


#: A retention: a duration, or ``false`` (keep for ever).
Retention = by_kind(object=Duration, string=Duration, number=Duration, boolean=Literal[False])


class RetentionRuleConfig(ConfigSection):
    """One ``notifications.retentionRules`` entry: the retention of one origin and/or topic (exact match)."""

    origin: str | None = Field(default=None, min_length=1)
    topic: str | None = Field(default=None, min_length=1)
    retention: Retention  # type: ignore[valid-type]

    @model_validator(mode="after")
    def _names_something(self) -> RetentionRuleConfig:
        if self.origin is None and self.topic is None:
            raise ValueError("a retention rule needs an origin, a topic or both (notifications.retention is the rest)")
        return self


class NotificationsConfig(ConfigSection):
    """``notifications``."""

    retention: Retention | None = None  # type: ignore[valid-type]
    #: per origin and/or topic, on top of ``retention``; the first rule that matches decides
    retention_rules: list[RetentionRuleConfig] | None = None
    concurrency_limit: int | None = Field(default=None, ge=1)
    #: users per batch of a large fan-out's rows (see :data:`plugin_notifications.store.FAN_OUT_BATCH`)
    fan_out_batch_size: int | None = Field(default=None, ge=1)
    throttle_interval: Duration | None = None
    default_settings: NotificationSettings | None = None
    web: WebInboxConfig | None = None
    limits: NotificationsLimits | None = None
    idempotency: IdempotencyConfig | None = None
    delivery: DeliveryConfigSection | None = None
    #: digest and quiet-hours defaults (see :mod:`plugin_notifications.preferences`)
    preferences: PreferencesConfig | None = None
    #: default format of ``payload.description`` (see :mod:`plugin_notifications.rich_text`)
    description_format: Literal["plain", "markdown"] | None = None
    processors: dict[str, Any] | None = None
    trace_hooks: bool | None = None
