"""Which notifications and recipients an endpoint receives.

* ``origins``, ``topics`` and ``minimumSeverity`` are checked at send time
  (:meth:`EndpointFilter.accepts`, the channel's ``accepts``): a send that
  does not pass writes no outbox row for the endpoint.
* ``entityRefs`` is checked at delivery time (:class:`RecipientMatcher`): the
  refs are resolved through the catalog exactly as a send's
  ``recipients: {type: entity, entityRef: [...]}`` would be (a user is
  itself, a group is its members and its child groups' members), and the
  delivery's recipients are narrowed to those users. A send that reaches
  none of them, and every broadcast, is skipped for the endpoint.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from greenroom_notifications_webhook.settings import WebhookEndpoint
from plugin_notifications.models import Notification, severities_at_least


class EndpointFilter:
    """The send-time filters of one endpoint: origins, topics, minimum severity."""

    def __init__(self, endpoint: WebhookEndpoint) -> None:
        self._origins = frozenset(endpoint.origins) if endpoint.origins is not None else None
        self._topics = frozenset(endpoint.topics) if endpoint.topics is not None else None
        self._severities = (
            frozenset(severities_at_least(endpoint.minimum_severity)) if endpoint.minimum_severity else None
        )

    def accepts(self, notification: Notification) -> bool:
        """Whether ``notification`` passes every filter set (an unset filter passes everything).

        A ``topics`` filter never passes a notification without a topic.
        """
        payload = notification.payload
        if self._origins is not None and notification.origin not in self._origins:
            return False
        if self._topics is not None and payload.topic not in self._topics:
            return False
        return self._severities is None or payload.severity in self._severities


class RecipientMatcher:
    """Narrows a delivery's recipients to the users an endpoint's ``entityRefs`` resolve to.

    Resolutions are cached per endpoint for ``ttl`` seconds, so a dispatcher
    batch costs at most one catalog query per endpoint.
    """

    def __init__(self, catalog: Any, ttl: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._catalog = catalog
        self._ttl = ttl
        self._clock = clock
        self._cache: dict[str, tuple[float, frozenset[str]]] = {}

    async def recipients(self, endpoint: WebhookEndpoint, recipients: tuple[str, ...]) -> tuple[str, ...]:
        """``recipients`` that the endpoint wants, in order (all of them without ``entityRefs``)."""
        if endpoint.entity_refs is None:
            return recipients
        wanted = await self._users(endpoint)
        return tuple(ref for ref in recipients if ref.lower() in wanted)

    async def _users(self, endpoint: WebhookEndpoint) -> frozenset[str]:
        hit = self._cache.get(endpoint.channel)
        if hit is not None and hit[0] > self._clock():
            return hit[1]
        users = await self._catalog.resolve_users(list(endpoint.entity_refs or ()), [])
        resolved = frozenset(ref.lower() for ref in users)
        self._cache[endpoint.channel] = (self._clock() + self._ttl, resolved)
        return resolved
