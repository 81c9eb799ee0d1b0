"""Delivery preferences: digests and quiet hours per user and channel (every channel but ``Web``).

A user chooses, per channel (a processor name such as ``Email``), a delivery
mode (``immediate``, ``hourly``, ``daily`` or ``weekly``, at a time of day,
weekday and timezone) and quiet hours (start, end, timezone). Operators set
defaults per origin and topic in ``notifications.preferences.defaults``;
a user's own entry for a channel replaces them. ``GET``/``PUT
/api/notifications/preferences`` read and replace the caller's own entries,
beside (and independent of) Backstage's settings matrix.

At send time :class:`HoldPolicy` answers, per recipient and channel, until
when a delivery is held (:func:`release_time`): the outbox writes a held
delivery as its own row, due then, keyed by channel and user; the
dispatcher hands every held delivery of one user and channel that is due
together to the channel as one digest.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlalchemy.ext.asyncio import AsyncEngine

from host import Config, ConfigError, InputError
from plugin_notifications import tables as t
from plugin_notifications.models import WEB_CHANNEL, describe_validation_error

DeliveryMode = Literal["immediate", "hourly", "daily", "weekly"]
Weekday = Literal["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
WEEKDAYS: tuple[str, ...] = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
CONFIG_KEY = "notifications.preferences"
_TIME_OF_DAY = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
#: At most this many channel entries per user (there are only as many channels as processors).
MAX_CHANNELS = 50


def _time_of_day(value: str) -> str:
    if not _TIME_OF_DAY.match(value):
        raise ValueError("must be a time of day HH:MM (00:00 to 23:59)")
    return value


def _zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown timezone '{value}' (an IANA name such as Europe/Berlin)") from None
    return value


def _parse_time(value: str) -> time:
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


class QuietHours(BaseModel):
    """From ``start`` to ``end`` (local times of day in ``timezone``; over midnight when end < start)."""

    model_config = ConfigDict(extra="forbid")

    start: str = Field(description="local time of day HH:MM when quiet hours begin", examples=["22:00"])
    end: str = Field(description="local time of day HH:MM when they end", examples=["07:00"])
    timezone: str = Field("UTC", description="IANA timezone of start and end")

    _check_times = field_validator("start", "end")(_time_of_day)
    _check_zone = field_validator("timezone")(_zone)


class DeliveryPreference(BaseModel):
    """A delivery mode and quiet hours (what a channel entry and an operator default share)."""

    model_config = ConfigDict(extra="forbid")

    mode: DeliveryMode = Field("immediate", description="immediate, or one digest per hour, day or week")
    at: str = Field(
        "09:00", description="local time HH:MM of the daily and weekly digest; its minutes place the hourly one"
    )
    weekday: Weekday = Field("monday", description="the day of the weekly digest")
    timezone: str = Field("UTC", description="IANA timezone of at and weekday")
    quietHours: QuietHours | None = Field(None, description="nothing is delivered between start and end")

    _check_at = field_validator("at")(_time_of_day)
    _check_zone = field_validator("timezone")(_zone)


def _not_web(value: str | None) -> str | None:
    if value is not None and value.lower() == WEB_CHANNEL.lower():
        raise ValueError("the Web inbox is always immediate")
    return value


class ChannelPreference(DeliveryPreference):
    """How one channel delivers to the user."""

    channel: str = Field(min_length=1, max_length=255, description="a channel (processor) name, not Web")

    _check_channel = field_validator("channel")(_not_web)


class NotificationPreferences(BaseModel):
    """The body of ``GET``/``PUT /api/notifications/preferences``."""

    model_config = ConfigDict(extra="forbid")

    channels: list[ChannelPreference] = Field(default_factory=list, max_length=MAX_CHANNELS)

    @field_validator("channels")
    @classmethod
    def _once_each(cls, value: list[ChannelPreference]) -> list[ChannelPreference]:
        names = [entry.channel.lower() for entry in value]
        if len(set(names)) != len(names):
            raise ValueError("each channel may appear once")
        return value


class PreferenceDefault(DeliveryPreference):
    """One operator default (``notifications.preferences.defaults[]``): a preference for matching sends."""

    channel: str | None = Field(None, description="the channel it applies to; absent: every channel but Web")
    origin: str | None = Field(None, description="only sends of this origin (e.g. plugin:catalog)")
    topic: str | None = Field(None, description="only notifications with this topic")

    _check_channel = field_validator("channel")(_not_web)


class PreferencesConfig(BaseModel):
    """``notifications.preferences``: operator defaults and the critical bypass."""

    model_config = ConfigDict(extra="forbid")

    criticalBypassesQuietHours: bool = Field(
        True, description="critical notifications are delivered at once, past quiet hours and digests"
    )
    defaults: list[PreferenceDefault] = Field(
        default_factory=list, description="preferences for users who set none for a channel, by origin and topic"
    )

    @classmethod
    def from_config(cls, config: Config) -> PreferencesConfig:
        """Read and check ``notifications.preferences`` (a bad value fails startup, naming the key)."""
        raw = config.get_optional(CONFIG_KEY)
        try:
            return cls.model_validate(raw or {})
        except ValidationError as error:
            message = describe_validation_error(error).replace("request/body", CONFIG_KEY)
            raise ConfigError(f"Invalid {CONFIG_KEY}: {message}") from None

    def default_for(self, channel: str, origin: str, topic: str | None) -> DeliveryPreference | None:
        """The most specific default for a channel and send: origin and topic, then origin, topic, none."""
        best: tuple[int, PreferenceDefault] | None = None
        for entry in self.defaults:
            if entry.channel is not None and entry.channel.lower() != channel.lower():
                continue
            if entry.origin is not None and entry.origin != origin:
                continue
            if entry.topic is not None and entry.topic != topic:
                continue
            rank = 4 * (entry.origin is not None) + 2 * (entry.topic is not None) + (entry.channel is not None)
            if best is None or rank > best[0]:
                best = (rank, entry)
        return best[1] if best else None


# -- release times ---------------------------------------------------------------


def _local(moment: datetime, zone: ZoneInfo) -> datetime:
    return moment.astimezone(zone)


def _at(day: date, clock: time, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, clock, tzinfo=zone).astimezone(UTC)


def next_slot(preference: DeliveryPreference, now: datetime) -> datetime:
    """The first digest time of ``preference`` at or after ``now`` (UTC)."""
    zone = ZoneInfo(preference.timezone)
    local = _local(now, zone)
    clock = _parse_time(preference.at)
    if preference.mode == "hourly":
        candidate = local.replace(minute=clock.minute, second=0, microsecond=0)
        if candidate < local:
            candidate += timedelta(hours=1)
        return candidate.astimezone(UTC)
    if preference.mode == "daily":
        for offset in range(3):
            candidate = _at(local.date() + timedelta(days=offset), clock, zone)
            if candidate >= now:
                return candidate
    weekday = WEEKDAYS.index(preference.weekday)
    for offset in range(8):
        day = local.date() + timedelta(days=offset)
        if day.weekday() == weekday:
            candidate = _at(day, clock, zone)
            if candidate >= now:
                return candidate
    return now  # unreachable: every weekday comes within eight days


def quiet_until(quiet: QuietHours, moment: datetime) -> datetime | None:
    """When the quiet hours around ``moment`` end, or ``None`` when ``moment`` is not within them."""
    zone = ZoneInfo(quiet.timezone)
    local = _local(moment, zone)
    start, end, now = _parse_time(quiet.start), _parse_time(quiet.end), local.time().replace(tzinfo=None)
    if start == end:
        return None
    if start < end:
        inside = start <= now < end
        end_day = local.date()
    else:  # over midnight
        inside = now >= start or now < end
        end_day = local.date() + timedelta(days=1) if now >= start else local.date()
    return _at(end_day, end, zone) if inside else None


def release_time(
    preference: DeliveryPreference | None, severity: str, now: datetime, *, critical_bypass: bool
) -> datetime | None:
    """Until when a delivery sent ``now`` is held, or ``None`` to deliver it at once.

    The digest mode picks the next slot; quiet hours then push a slot (or an
    immediate delivery) that falls within them to their end. ``critical``
    notifications are never held when ``critical_bypass`` is on.
    """
    if preference is None or (critical_bypass and severity == "critical"):
        return None
    due = now if preference.mode == "immediate" else next_slot(preference, now)
    if preference.quietHours is not None:
        end = quiet_until(preference.quietHours, due)
        if end is not None:
            due = end
    return due if due > now else None


# -- storage and the send path ------------------------------------------------------


class HoldPolicy:
    """For one send: which recipients' deliveries on which channel are held, and until when."""

    def __init__(
        self,
        own: dict[str, dict[str, ChannelPreference]],
        config: PreferencesConfig,
        origin: str,
        topic: str | None,
        severity: str,
        now: datetime,
    ) -> None:
        self._own = own
        self._config = config
        self._origin = origin
        self._topic = topic
        self._severity = severity
        self._now = now
        self._defaults: dict[str, datetime | None] = {}

    def __call__(self, user: str, channel: str) -> datetime | None:
        """The release time of ``user``'s delivery on ``channel`` (a processor name), or ``None``."""
        key = channel.lower()
        mine = self._own.get(user, {}).get(key)
        if mine is not None:
            return release_time(
                mine, self._severity, self._now, critical_bypass=self._config.criticalBypassesQuietHours
            )
        if key not in self._defaults:  # every user without an own entry shares the default's answer
            self._defaults[key] = release_time(
                self._config.default_for(channel, self._origin, self._topic),
                self._severity,
                self._now,
                critical_bypass=self._config.criticalBypassesQuietHours,
            )
        return self._defaults[key]

    @property
    def holds_nothing(self) -> bool:
        """Whether no recipient has preferences and no operator default exists (the common case)."""
        return not self._own and not self._config.defaults


class PreferencesService:
    """Reads and replaces users' preferences; builds each send's :class:`HoldPolicy`."""

    def __init__(
        self,
        engine: AsyncEngine,
        config: PreferencesConfig,
        channel_names: Callable[[], Sequence[str]],
        now: Callable[[], datetime],
        announce: Callable[[str], Awaitable[None]] | None = None,
    ) -> None:
        self._engine = engine
        self._reader = engine.execution_options(isolation_level="AUTOCOMMIT")
        self._config = config
        self._channel_names = channel_names
        self._now = now
        self._announce = announce

    def channels(self) -> list[str]:
        """The channels a user may set preferences for (processors with a channel that holds: ``recipient`` scope or ``holds_users``)."""
        return [name for name in self._channel_names() if name.lower() != WEB_CHANNEL.lower()]

    @property
    def config(self) -> PreferencesConfig:
        """The operator configuration."""
        return self._config

    async def get(self, user: str) -> NotificationPreferences:
        """The caller's own entries (an empty list when they set none)."""
        p = t.notification_preference
        async with self._reader.connect() as conn:
            stored = await conn.scalar(sa.select(p.c.preferences).where(p.c.user == user))
        return NotificationPreferences.model_validate(stored or {})

    async def put(self, user: str, preferences: NotificationPreferences) -> NotificationPreferences:
        """Replace the caller's entries; channels must be ones a processor provides (``400`` otherwise)."""
        known = {name.lower(): name for name in self.channels()}
        for entry in preferences.channels:
            if entry.channel.lower() not in known:
                choices = ", ".join(sorted(known.values())) or "none"
                raise InputError(f"Unknown channel '{entry.channel}', must be one of: {choices}")
            entry.channel = known[entry.channel.lower()]
        p = t.notification_preference
        document = preferences.model_dump(mode="json", exclude_none=True)
        async with self._engine.begin() as conn:
            await conn.execute(sa.delete(p).where(p.c.user == user))
            if preferences.channels:
                await conn.execute(sa.insert(p).values(user=user, preferences=document, updated=self._now()))
        return NotificationPreferences.model_validate(document)

    async def policy(self, users: Sequence[str], origin: str, topic: str | None, severity: str) -> HoldPolicy:
        """The hold policy of one send to ``users`` (one query, skipped when nobody set anything)."""
        own: dict[str, dict[str, ChannelPreference]] = {}
        if not self._channel_names():  # no channel preferences apply to
            return HoldPolicy(own, PreferencesConfig.model_validate({}), origin, topic, severity, self._now())
        p = t.notification_preference
        async with self._reader.connect() as conn:
            if await conn.scalar(sa.select(sa.literal(1)).select_from(p).limit(1)) is not None:
                for start in range(0, len(users), 5000):
                    chunk = list(users[start : start + 5000])
                    result = await conn.execute(sa.select(p.c.user, p.c.preferences).where(p.c.user.in_(chunk)))
                    for row in result:
                        document = NotificationPreferences.model_validate(row.preferences)
                        own[row.user] = {entry.channel.lower(): entry for entry in document.channels}
        return HoldPolicy(own, self._config, origin, topic, severity, self._now())


def preferences_wire(preferences: NotificationPreferences, channels: Sequence[str]) -> dict[str, Any]:
    """The JSON answer: the caller's entries and the channels they may set."""
    return {
        "channels": [entry.model_dump(mode="json", exclude_none=True) for entry in preferences.channels],
        "available": list(channels),
    }
