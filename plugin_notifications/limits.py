"""Size limits of the notifications API (``notifications.limits``), checked before anything is stored.

The wire models (:mod:`plugin_notifications.models`) check shapes; these
checks bound sizes, each with a 400 ``InputError`` naming the field:

=========================  =======  =====================================================
key                        default  bounds
=========================  =======  =====================================================
``maxDescriptionLength``   65536    ``payload.description`` (characters)
``maxLinkLength``          8192     ``payload.link`` (characters)
``maxMetadataBytes``       65536    ``payload.metadata`` serialised as JSON
``maxMetadataDepth``       32       nesting of objects/arrays in ``payload.metadata``
``maxUpdateIds``           10000    ``ids`` of one ``POST /update``
``maxSearchLength``        1000     the ``search`` query parameter (characters)
=========================  =======  =====================================================

Title, topic, scope, icon and the ids of ``POST /settings`` are bounded by
their 255-character database columns (:data:`MAX_ID_LENGTH`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from host import Config, InputError, json_depth_exceeds, read_section
from plugin_notifications.config_schema import MAX_STORED_METADATA_DEPTH, NotificationsLimits

#: Width of the short text columns (origin, topic, channel and the settings ids).
MAX_ID_LENGTH = 255


@dataclass(frozen=True)
class NotificationLimits:
    """The resolved ``notifications.limits`` values and the checks that use them."""

    max_description_length: int = 65536
    max_link_length: int = 8192
    max_metadata_bytes: int = 65536
    max_metadata_depth: int = 32
    max_update_ids: int = 10000
    max_search_length: int = 1000

    @classmethod
    def from_config(cls, config: Config) -> NotificationLimits:
        """Read ``notifications.limits`` through its model (missing keys keep their defaults)."""
        section = read_section(config, "notifications.limits", NotificationsLimits)
        return cls(**section.model_dump(exclude_none=True))

    def check_payload(self, payload: Any) -> None:
        """Bound a validated :class:`~plugin_notifications.models.NotificationPayload`."""
        _max_length("request/body/payload/description", payload.description, self.max_description_length)
        _max_length("request/body/payload/link", payload.link, self.max_link_length)
        metadata = payload.metadata
        if metadata is None:
            return
        if json_depth_exceeds(metadata, self.max_metadata_depth):
            raise InputError(
                f"request/body/payload/metadata must NOT be nested more than {self.max_metadata_depth} levels deep"
            )
        try:
            size = len(orjson.dumps(metadata))
        except (TypeError, orjson.JSONEncodeError):
            raise InputError("request/body/payload/metadata must be a JSON object") from None
        if size > self.max_metadata_bytes:
            raise InputError(f"request/body/payload/metadata must NOT be larger than {self.max_metadata_bytes} bytes")

    def check_update_ids(self, ids: Sequence[str]) -> None:
        """Bound the ``ids`` of ``POST /update``."""
        if len(ids) > self.max_update_ids:
            raise InputError(f"request/body/ids must NOT have more than {self.max_update_ids} items")

    def check_search(self, search: str | None) -> None:
        """Bound the ``search`` query parameter."""
        if search is not None and len(search) > self.max_search_length:
            raise InputError(f"Invalid search, must NOT have more than {self.max_search_length} characters")

    def check_settings(self, settings: Any) -> None:
        """Bound the channel, origin and topic ids of ``POST /settings`` (and refuse NUL characters)."""
        for c, channel in enumerate(settings.channels):
            _short_id(f"request/body/channels/{c}/id", channel.id)
            for o, origin in enumerate(channel.origins):
                _short_id(f"request/body/channels/{c}/origins/{o}/id", origin.id)
                for t, topic in enumerate(origin.topics):
                    _short_id(f"request/body/channels/{c}/origins/{o}/topics/{t}/id", topic.id)


def stored_metadata_is_renderable(metadata: Any) -> bool:
    """Whether stored metadata can be sent back (rows written before the limits, or by hand, may not be)."""
    return not json_depth_exceeds(metadata, MAX_STORED_METADATA_DEPTH)


def _max_length(path: str, value: str | None, limit: int) -> None:
    if value is not None and len(value) > limit:
        raise InputError(f"{path} must NOT have more than {limit} characters")


def _short_id(path: str, value: str) -> None:
    _max_length(path, value, MAX_ID_LENGTH)
    if "\x00" in value:
        raise InputError(f"{path} must not contain NUL characters")
