"""Where a notification goes in Slack: catalog annotations, e-mail lookups and broadcast routes.

* A **user** named in the send gets a DM (Backstage 0.4.0: users reached only
  through a group get none). Their Slack id is the ``slack.com/bot-notify``
  annotation (Backstage's), else ``slack.com/user_id``, else Slack's
  ``users.lookupByEmail`` of ``spec.profile.email``.
* Any **other entity** named in the send (a group, a component) gets a
  message in the channel of its ``slack.com/bot-notify`` annotation, or in
  ``payload.metadata.slackChannel`` when the sender gives one (it wins).
* A **broadcast** goes to the channels of the most specific
  ``broadcastRoutes`` entry: origin and topic, then origin only, then topic
  only (the first such entry in the list), else to ``broadcastChannels``.

Catalog entities and e-mail lookups are cached (``cachetools`` TTL caches,
``lookupCacheTtl``, ``lookupCacheSize``), misses too.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from cachetools import TTLCache

from greenroom_notifications_slack.settings import BroadcastRoute, SlackWorkspace
from host import InputError, UserDirectory, normalize_entity_ref
from plugin_notifications.models import Notification

if TYPE_CHECKING:
    from greenroom_notifications_slack.client import SlackClient

BOT_NOTIFY = "slack.com/bot-notify"
USER_ID = "slack.com/user_id"
#: ``payload.metadata`` key naming the channel for entity recipients.
CHANNEL_METADATA_KEY = "slackChannel"
_MISSING: dict[str, Any] = {}


def canonical_ref(ref: str) -> str | None:
    """``ref`` in canonical lower-case form (``user:jane`` -> ``user:default/jane``), ``None`` if malformed."""
    try:
        return normalize_entity_ref(ref).lower()
    except (InputError, ValueError):
        return None


def kind_of(ref: str) -> str:
    """The kind of a canonical ref."""
    return ref.partition(":")[0]


def broadcast_channels(notification: Notification, workspace: SlackWorkspace) -> tuple[str, ...]:
    """The channels a broadcast goes to (see the module docstring)."""
    routes: Sequence[BroadcastRoute] = workspace.broadcast_routes or ()
    origin, topic = notification.origin, notification.payload.topic

    def tier(route: BroadcastRoute) -> int | None:
        """0: origin and topic match, 1: origin-only route matches, 2: topic-only route matches."""
        if route.origin is not None and route.topic is not None:
            return 0 if (route.origin, route.topic) == (origin, topic) else None
        if route.origin is not None:
            return 1 if route.origin == origin else None
        if route.topic is not None:
            return 2 if route.topic == topic else None
        return None

    ranked = [(rank, index) for index, route in enumerate(routes) if (rank := tier(route)) is not None]
    if ranked:
        return routes[min(ranked)[1]].channels
    return workspace.broadcast_channels or ()


class SlackDirectory:
    """Finds Slack ids for catalog entities, with cached catalog reads and e-mail lookups."""

    def __init__(self, catalog: UserDirectory, client: SlackClient, workspace: SlackWorkspace) -> None:
        self._catalog = catalog
        self._client = client
        ttl = workspace.lookup_cache_ttl.total_seconds()
        self._entities: TTLCache[str, dict[str, Any]] = TTLCache(workspace.lookup_cache_size, ttl)
        self._emails: TTLCache[str, str] = TTLCache(workspace.lookup_cache_size, ttl)
        # Deliveries of a batch run concurrently: one catalog read and one lookup per key at a time.
        self._entities_lock = asyncio.Lock()
        self._lookups: dict[str, asyncio.Future[str | None]] = {}

    async def entities(self, refs: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The catalog entities of canonical ``refs`` (missing ones left out), one catalog call for the misses."""
        wanted = list(dict.fromkeys(refs))
        async with self._entities_lock:
            misses = [ref for ref in wanted if ref not in self._entities]
            if misses:
                found = await self._catalog.get_entities_by_refs(misses)
                for ref, entity in zip(misses, found, strict=True):
                    self._entities[ref] = entity if isinstance(entity, dict) else _MISSING
            return {ref: entity for ref in wanted if (entity := self._entities.get(ref))}

    async def user_id(self, entity: dict[str, Any]) -> str | None:
        """A user's Slack id: its annotations, else the e-mail lookup (``None`` when neither finds one)."""
        annotations = (entity.get("metadata") or {}).get("annotations") or {}
        for key in (BOT_NOTIFY, USER_ID):
            value = annotations.get(key)
            if isinstance(value, str) and value.strip():
                return value.strip()
        email = ((entity.get("spec") or {}).get("profile") or {}).get("email")
        if not isinstance(email, str) or not email.strip():
            return None
        email = email.strip().lower()
        if email in self._emails:
            return self._emails[email] or None
        pending = self._lookups.get(email)
        if pending is not None:  # another delivery is looking this address up right now
            return await asyncio.shield(pending)
        pending = asyncio.get_running_loop().create_future()
        self._lookups[email] = pending
        try:
            found = await self._client.user_id_by_email(email)
        except asyncio.CancelledError:
            pending.cancel()
            raise
        except Exception as error:
            pending.set_exception(error)
            pending.exception()  # marked retrieved: the deliveries waiting on it get it, nobody else must
            raise
        finally:
            self._lookups.pop(email, None)
        self._emails[email] = found or ""
        pending.set_result(found)
        return found

    @staticmethod
    def channel_of(entity: dict[str, Any]) -> str | None:
        """The ``slack.com/bot-notify`` channel of a non-user entity."""
        value = ((entity.get("metadata") or {}).get("annotations") or {}).get(BOT_NOTIFY)
        return value.strip() if isinstance(value, str) and value.strip() else None
