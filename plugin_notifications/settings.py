"""User notification settings: the channel x origin x topic matrix and delivery gating.

A *channel* is ``Web`` (the inbox) or the name of a processor; an *origin*
is the sender; a *topic* is ``payload.topic``. Everything is enabled unless
the user or ``notifications.defaultSettings`` says otherwise; a channel set
``enabled: false`` in config is opt-in (spec section 6).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from cachetools import TTLCache
from pydantic import ValidationError

from host import Config, ConfigError, InputError
from plugin_notifications.models import (
    WEB_CHANNEL,
    ChannelSetting,
    NotificationSettings,
    OriginSetting,
    TopicSetting,
    describe_validation_error,
)
from plugin_notifications.store import NotificationsStore, SettingRow


@dataclass
class _Origin:
    """One origin's flags within one channel (stored or configured)."""

    enabled: bool | None = None
    topics: dict[str, bool] = field(default_factory=dict)


@dataclass
class _Channel:
    """One channel's flag and origins (stored or configured)."""

    enabled: bool | None = None
    origins: dict[str, _Origin] = field(default_factory=dict)


def _from_rows(rows: Sequence[SettingRow]) -> dict[str, _Channel]:
    """Stored rows grouped by channel (lower-cased) and origin.

    A row without topic sets the origin's flag; an origin known only through
    topic rows counts as enabled.
    """
    channels: dict[str, _Channel] = {}
    for row in rows:
        origin = channels.setdefault(row.channel.lower(), _Channel()).origins.setdefault(row.origin, _Origin())
        if row.topic is None:
            origin.enabled = row.enabled
        else:
            origin.topics[row.topic] = row.enabled
    for channel in channels.values():
        for origin in channel.origins.values():
            if origin.enabled is None:
                origin.enabled = True
    return channels


def _from_settings(settings: NotificationSettings) -> dict[str, _Channel]:
    return {
        channel.id.lower(): _Channel(
            enabled=channel.enabled,
            origins={
                origin.id: _Origin(origin.enabled, {topic.id: topic.enabled for topic in origin.topics})
                for origin in channel.origins
            },
        )
        for channel in settings.channels
    }


def read_default_settings(config: Config) -> NotificationSettings:
    """Parse ``notifications.defaultSettings`` (empty when absent)."""
    raw = config.get_optional("notifications.defaultSettings")
    if raw is None:
        return NotificationSettings(channels=[])
    try:
        return NotificationSettings.model_validate(raw)
    except ValidationError as error:
        message = describe_validation_error(error).replace("request/body", "notifications.defaultSettings")
        raise ConfigError(f"Invalid notifications.defaultSettings: {message}") from None


class DeliverySettings:
    """Answers "may channel C deliver origin O / topic T to user U?" for one send.

    Built from the stored rows of all recipients of one origin (a single
    query) plus the configured defaults.
    """

    def __init__(self, rows: Sequence[SettingRow], defaults: dict[str, _Channel]) -> None:
        self._defaults = defaults
        self._by_user: dict[str, dict[str, _Channel]] = {}
        #: Answers for users without stored settings: they depend on the channel, origin and topic only.
        self._without_rows: dict[tuple[str, str, str | None], tuple[bool, str]] = {}
        grouped: dict[str, list[SettingRow]] = {}
        for row in rows:
            grouped.setdefault(row.user, []).append(row)
        for user, user_rows in grouped.items():
            self._by_user[user] = _from_rows(user_rows)

    @property
    def users_with_rows(self) -> frozenset[str]:
        """The users with stored settings: everybody else gets the same answer per channel, origin and topic."""
        return frozenset(self._by_user)

    def is_enabled(self, user: str, channel: str, origin: str, topic: str | None) -> bool:
        """Backstage's ``isNotificationsEnabledFor`` for one user and channel."""
        return self.explain(user, channel, origin, topic)[0]

    def explain(self, user: str, channel: str, origin: str, topic: str | None) -> tuple[bool, str]:
        """:meth:`is_enabled` and which setting decided it (for the delivery log).

        The reason is one of ``default`` (nothing configured), ``config channel``,
        ``config origin``, ``config topic`` (``notifications.defaultSettings``),
        ``user origin`` or ``user topic`` (the user's own settings).
        """
        if user not in self._by_user:  # most recipients of a large send: one answer per channel
            key = (channel, origin, topic)
            known = self._without_rows.get(key)
            if known is None:
                known = self._without_rows[key] = self._decide(user, channel, origin, topic)
            return known
        return self._decide(user, channel, origin, topic)

    def _decide(self, user: str, channel: str, origin: str, topic: str | None) -> tuple[bool, str]:
        configured = self._defaults.get(channel.lower())
        channel_enabled = configured.enabled if configured else None
        stored = self._by_user.get(user, {}).get(channel.lower())
        found = stored.origins.get(origin) if stored else None
        source = "user"
        if found is None and configured is not None and channel_enabled is not False:
            found = configured.origins.get(origin)
            source = "config"
        if found is None:
            if channel_enabled is not None:
                return channel_enabled, "config channel"
            return True, "default"
        if topic is not None and topic in found.topics:
            return found.topics[topic], f"{source} topic"
        return (found.enabled if found.enabled is not None else True), f"{source} origin"


#: Events topic on which a worker announces that a user's settings changed.
SETTINGS_CHANGED_TOPIC = "notifications.settings-changed"


class SettingsRowCache:
    """Each user's stored settings rows, for the send path (no query per send).

    Saving settings invalidates the user here and, through the events bus,
    in every other worker and instance. A generation counter keeps a read
    that raced with an invalidation from caching stale rows, and entries
    expire after ``ttl`` seconds in case an invalidation was lost.
    """

    def __init__(self, ttl: float = 30.0, max_users: int = 200_000) -> None:
        self._rows: TTLCache[str, list[SettingRow]] = TTLCache(maxsize=max_users, ttl=ttl, timer=time.monotonic)
        self._generation: dict[str, int] = {}

    def generation(self, user: str) -> int:
        """The user's invalidation counter (read it before querying)."""
        return self._generation.get(user, 0)

    def get(self, user: str) -> list[SettingRow] | None:
        """Cached rows of ``user``, or ``None``."""
        return self._rows.get(user)

    def put(self, user: str, rows: list[SettingRow], generation: int) -> None:
        """Cache ``rows`` unless ``user`` was invalidated since ``generation`` was read."""
        if self._generation.get(user, 0) != generation:
            return
        self._rows[user] = rows

    def invalidate(self, user: str) -> None:
        """Forget ``user``'s rows."""
        self._rows.pop(user, None)
        self._generation[user] = self._generation.get(user, 0) + 1


class SettingsService:
    """Reads, writes and applies user settings."""

    def __init__(
        self,
        store: NotificationsStore,
        defaults: NotificationSettings,
        processor_channels: Callable[[], list[str]],
        *,
        announce: Callable[[str], Awaitable[None]] | None = None,
        cache: SettingsRowCache | None = None,
    ) -> None:
        self._store = store
        self._defaults = defaults
        self._default_channels = _from_settings(defaults)
        self._processor_channels = processor_channels
        self._announce = announce
        self.cache = cache or SettingsRowCache()

    async def on_settings_changed(self, event: Any) -> None:
        """Events handler: another worker (or this one) saved a user's settings."""
        payload = getattr(event, "payload", None)
        if isinstance(payload, dict) and isinstance(payload.get("user"), str):
            self.cache.invalidate(payload["user"])

    def channels(self) -> list[str]:
        """Channels a user may store settings for: ``Web`` and every processor name."""
        return [WEB_CHANNEL, *self._processor_channels()]

    async def delivery_settings(self, users: Sequence[str], origin: str) -> DeliverySettings:
        """Load what :meth:`DeliverySettings.is_enabled` needs for ``users`` in one query."""
        rows: list[SettingRow] = []
        missing: list[str] = []
        generations: dict[str, int] = {}
        for user in users:
            cached = self.cache.get(user)
            if cached is None:
                missing.append(user)
                generations[user] = self.cache.generation(user)
            else:
                rows.extend(row for row in cached if row.origin == origin)
        if missing:
            fetched: dict[str, list[SettingRow]] = {user: [] for user in missing}
            for row in await self._store.get_settings_rows(missing):
                fetched[row.user].append(row)
            for user, user_rows in fetched.items():
                self.cache.put(user, user_rows, generations[user])
                rows.extend(row for row in user_rows if row.origin == origin)
        return DeliverySettings(rows, self._default_channels)

    async def get(self, user: str) -> NotificationSettings:
        """The caller's effective settings matrix (``GET /settings``)."""
        origins, pairs = await self._store.get_user_origins(user)
        stored = _from_rows(await self._store.get_settings_rows([user]))
        channel_ids = _unique_ci([*self.channels(), *(channel.id for channel in self._defaults.channels)])
        origin_ids = list(dict.fromkeys(origins))
        topics: dict[str, list[str]] = {}
        for origin, topic in pairs:
            topics.setdefault(origin, []).append(topic)
        for configured_channel in self._defaults.channels:
            for configured in configured_channel.origins:
                if configured.id not in origin_ids:
                    origin_ids.append(configured.id)
                for configured_topic in configured.topics:
                    if configured_topic.id not in topics.setdefault(configured.id, []):
                        topics[configured.id].append(configured_topic.id)
        return NotificationSettings(
            channels=[self._channel_matrix(channel_id, stored, origin_ids, topics) for channel_id in channel_ids]
        )

    def _channel_matrix(
        self, channel_id: str, stored: dict[str, _Channel], origin_ids: list[str], topics: dict[str, list[str]]
    ) -> ChannelSetting:
        stored_channel = stored.get(channel_id.lower(), _Channel())
        configured_channel = self._default_channels.get(channel_id.lower(), _Channel())
        channel_enabled = stored_channel.enabled if stored_channel.enabled is not None else configured_channel.enabled
        channel_default = True if channel_enabled is None else channel_enabled
        origins = []
        for origin_id in origin_ids:
            stored_origin = stored_channel.origins.get(origin_id, _Origin())
            configured_origin = configured_channel.origins.get(origin_id, _Origin())
            origin_enabled = _first(stored_origin.enabled, configured_origin.enabled, channel_default)
            topic_default = channel_default if channel_enabled is not None else origin_enabled
            origins.append(
                OriginSetting(
                    id=origin_id,
                    enabled=origin_enabled,
                    topics=[
                        TopicSetting(
                            id=topic,
                            enabled=_first(
                                stored_origin.topics.get(topic), configured_origin.topics.get(topic), topic_default
                            ),
                        )
                        for topic in topics.get(origin_id, [])
                    ],
                )
            )
        return ChannelSetting(id=channel_id, enabled=channel_enabled, origins=origins)

    async def save(self, user: str, settings: NotificationSettings) -> NotificationSettings:
        """Replace the caller's settings (``POST /settings``) and return the new matrix."""
        allowed = self.channels()
        for channel in settings.channels:
            if channel.id not in allowed:
                raise InputError("Invalid channel")
        await self._store.save_settings(user, settings)
        self.cache.invalidate(user)
        if self._announce is not None:
            await self._announce(user)
        return await self.get(user)


def _first(*values: bool | None) -> bool:
    for value in values:
        if value is not None:
            return value
    return True


def _unique_ci(values: Sequence[str]) -> list[str]:
    seen: dict[str, str] = {}
    for value in values:
        seen.setdefault(value.lower(), value)
    return list(seen.values())
