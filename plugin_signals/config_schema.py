"""The signals plugin's config section (``signals``), for ``greenroom config check``."""

from __future__ import annotations

from pydantic import Field

from host import ConfigSection, PositiveDuration


class SignalsLimitsConfig(ConfigSection):
    """``signals.limits``: see :class:`plugin_signals.connections.SignalLimits`."""

    max_channel_name_length: int | None = Field(default=None, gt=0)
    max_channels_per_socket: int | None = Field(default=None, gt=0)
    max_sockets_per_user: int | None = Field(default=None, gt=0)


class SignalsHistoryConfig(ConfigSection):
    """``signals.history``: see :class:`plugin_signals.history.HistorySettings`."""

    enabled: bool | None = None
    max_age: PositiveDuration | None = None
    max_messages: int | None = Field(default=None, ge=1)
    prune_interval: PositiveDuration | None = None
    gap_timeout: PositiveDuration | None = None
    position_interval: PositiveDuration | None = None


class SignalsSseConfig(ConfigSection):
    """``signals.sse``: see :class:`plugin_signals.sse.SseSettings`."""

    heartbeat_interval: PositiveDuration | None = None


class SignalsConfig(ConfigSection):
    """``signals``."""

    limits: SignalsLimitsConfig | None = None
    history: SignalsHistoryConfig | None = None
    sse: SignalsSseConfig | None = None
