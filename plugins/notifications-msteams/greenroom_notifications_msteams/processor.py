"""The ``MSTeams`` processor: Adaptive Cards to Teams webhooks through the notifications outbox.

Two kinds of durable ``send``-scope channels (one delivery per send, listing
the recipient users whose ``MSTeams`` setting is on):

* ``msteams:<route>`` per configured route, with the webhook module's filter
  semantics (:mod:`plugin_notifications.http_channels`): ``origins``,
  ``topics``, ``minimumSeverity`` at send time; ``entityRefs`` at delivery
  time (a broadcast, or a send reaching none of those users, is skipped).
* ``MSTeams`` (``annotations.enabled``): the webhooks named by the
  ``microsoft.com/teams-webhook`` annotation of the entities the send
  addressed (a group or any other entity posts to its own channel; a user
  only while the ``MSTeams`` setting is on for them) and of the recipient
  users (a personal Workflows webhook). Each distinct URL gets one card.
  Broadcasts reach routes only.

The ``MSTeams`` channel holds users (``holds_users``): a user whose
``MSTeams`` preferences hold a notification (a digest mode, quiet hours)
leaves the send's delivery (so their personal webhook gets no card then) and
gets one digest card (:func:`~greenroom_notifications_msteams.card.digest_card`)
at the release time, posted to their own ``microsoft.com/teams-webhook``;
without one the digest is skipped. Cards to a group's or other entity's
webhook, and route channels, are not per user and are never held.

Teams webhooks take no idempotency key, so a retry posts again. For the
``MSTeams`` channel, which may post to several webhooks in one delivery, the
webhooks that already took a delivery's card are remembered in this process
for a day and not posted to again when the delivery is retried here (another
worker retrying it may repeat them: delivery is at least once).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

from cachetools import TTLCache

from greenroom_notifications_msteams.card import default_card, digest_card, message_body
from greenroom_notifications_msteams.renderers import CardRenderers
from greenroom_notifications_msteams.settings import ANNOTATION, MSTeamsConfig, TeamsRoute
from plugin_notifications import hookimpl
from plugin_notifications.delivery import Delivery, DeliveryChannel, DeliveryOutcome, Digest
from plugin_notifications.http_channels import JsonPoster, RecipientMatcher, RouteFilter
from plugin_notifications.rich_text import DescriptionFormat

PROCESSOR_NAME = "MSTeams"
#: The annotation channel's name (the routes' are ``msteams:<name>``).
ANNOTATION_CHANNEL = "MSTeams"
USER_AGENT = "Greenroom-MSTeams/0.1"
#: How many (delivery, webhook) successes are remembered for retries in this process.
_REMEMBERED = 10_000


class AnnotationLookup:
    """Entity refs -> their ``microsoft.com/teams-webhook`` URL, through the catalog, cached for ``ttl`` seconds."""

    def __init__(self, catalog: Any, ttl: float) -> None:
        self._catalog = catalog
        self._cache: TTLCache[str, str | None] = TTLCache(maxsize=10_000, ttl=ttl, timer=time.monotonic)

    async def urls(self, refs: Sequence[str]) -> dict[str, str]:
        """``{ref: url}`` for the refs whose entity carries the annotation (missing entities have none)."""
        wanted = list(dict.fromkeys(ref.lower() for ref in refs))
        missing = [ref for ref in wanted if ref not in self._cache]
        if missing:
            entities = await self._catalog.get_entities_by_refs(missing)
            for ref, entity in zip(missing, entities, strict=True):
                annotations = ((entity or {}).get("metadata") or {}).get("annotations") or {}
                url = annotations.get(ANNOTATION)
                self._cache[ref] = url.strip() if isinstance(url, str) and url.strip() else None
        found = {ref: self._cache.get(ref) for ref in wanted}
        return {ref: url for ref, url in found.items() if url}


class MSTeamsProcessor:
    """Posts Adaptive Cards to Teams webhooks through the outbox."""

    def __init__(
        self,
        config: MSTeamsConfig,
        *,
        catalog: Any,
        base_url: str,
        description_format: DescriptionFormat = "plain",
        renderers: CardRenderers | None = None,
        client: JsonPoster | None = None,
    ) -> None:
        self._config = config
        self._routes = {route.channel: route for route in config.routes}
        ttl = config.entity_refs_cache_ttl.total_seconds()
        self._matcher = RecipientMatcher(catalog, ttl)
        self._annotations = AnnotationLookup(catalog, ttl)
        self._base_url = base_url
        self._format = description_format
        self._renderers = renderers or CardRenderers()
        self._client = client or JsonPoster(
            user_agent=USER_AGENT, max_retry_after=config.max_retry_after.total_seconds()
        )
        self._slots = asyncio.Semaphore(config.concurrency)
        self._posted: TTLCache[tuple[str, str], bool] = TTLCache(maxsize=_REMEMBERED, ttl=86_400, timer=time.monotonic)

    # -- hooks -----------------------------------------------------------------

    @hookimpl
    def notifications_processor_name(self) -> str:
        """``MSTeams``: also the settings channel users can switch off."""
        return PROCESSOR_NAME

    @hookimpl
    def notifications_delivery_channels(self) -> list[DeliveryChannel]:
        """One ``send``-scope channel per route (with its send-time filters), and ``MSTeams`` for annotations."""
        channels = [
            DeliveryChannel(
                route.channel, scope="send", batch_size=self._config.batch_size, accepts=RouteFilter(route).accepts
            )
            for route in self._config.routes
        ]
        if self._config.annotations.enabled:
            channels.append(
                DeliveryChannel(ANNOTATION_CHANNEL, scope="send", batch_size=self._config.batch_size, holds_users=True)
            )
        return channels

    @hookimpl
    async def notifications_deliver(self, channel: str, deliveries: Sequence[Delivery]) -> dict[str, DeliveryOutcome]:
        """Post each delivery's card, at most ``concurrency`` requests at once."""
        if channel == ANNOTATION_CHANNEL and self._config.annotations.enabled:
            outcomes = await asyncio.gather(*(self.deliver_annotated(delivery) for delivery in deliveries))
        elif (route := self._routes.get(channel)) is not None:
            outcomes = await asyncio.gather(*(self.deliver_route(route, delivery) for delivery in deliveries))
        else:  # not ours: the outbox only calls a channel's own processor
            return {delivery.id: DeliveryOutcome.failed(f"no Teams channel {channel}") for delivery in deliveries}
        return {delivery.id: outcome for delivery, outcome in zip(deliveries, outcomes, strict=True)}

    @hookimpl
    async def notifications_deliver_digest(self, channel: str, digests: Sequence[Digest]) -> dict[str, DeliveryOutcome]:
        """One card per digest (a user's held notifications) to the user's own webhook."""
        if channel != ANNOTATION_CHANNEL or not self._config.annotations.enabled:
            return {
                digest.id: DeliveryOutcome.failed(f"no Teams channel {channel} holding users") for digest in digests
            }
        outcomes = await asyncio.gather(*(self.deliver_digest(digest) for digest in digests))
        return {digest.id: outcome for digest, outcome in zip(digests, outcomes, strict=True)}

    # -- delivery --------------------------------------------------------------

    async def deliver_digest(self, digest: Digest) -> DeliveryOutcome:
        """Post one digest card to the ``microsoft.com/teams-webhook`` of the digest's user (skipped without one)."""
        url = (await self._annotations.urls([digest.user])).get(digest.user.lower())
        if url is None:
            return DeliveryOutcome.skipped(f"{digest.user} has no {ANNOTATION} annotation")
        refusal = self._config.annotations.refusal(url)
        if refusal is not None:
            return DeliveryOutcome.skipped(f"the {ANNOTATION} annotation of {digest.user} is refused: {refusal}")
        if (digest.id, url) in self._posted:
            return DeliveryOutcome.sent()  # a retry here: this webhook already took the card
        card = digest_card([delivery.notification for delivery in digest.deliveries], base_url=self._base_url)
        outcome = await self._post(url, message_body(card), self._config.timeout.total_seconds())
        if outcome.kind == "sent":
            self._posted[(digest.id, url)] = True
        return outcome

    async def card(self, delivery: Delivery, destination: str) -> bytes:
        """The message body for ``delivery`` at ``destination`` (renderer hooks first, then the default card)."""
        card = default_card(
            delivery.notification,
            base_url=self._base_url,
            default_format=self._format,
            max_length=self._config.max_text_length,
        )
        return message_body(await self._renderers.card(delivery.notification, card, destination))

    async def _post(self, url: str, body: bytes, timeout_seconds: float) -> DeliveryOutcome:
        async with self._slots:
            return await self._client.post(url, body, timeout_seconds=timeout_seconds)

    async def deliver_route(self, route: TeamsRoute, delivery: Delivery) -> DeliveryOutcome:
        """Post one card to ``route`` (or skip it when ``entityRefs`` match no recipient)."""
        broadcast = not delivery.recipients
        if broadcast and route.entity_refs is not None:
            return DeliveryOutcome.skipped("a broadcast does not match entityRefs")
        if not broadcast and not await self._matcher.recipients(route, delivery.recipients):
            return DeliveryOutcome.skipped("no recipient matches entityRefs")
        body = await self.card(delivery, route.channel)
        return await self._post(route.url, body, self._config.timeout_for(route))

    async def annotated_targets(self, delivery: Delivery) -> tuple[dict[str, str], list[str]]:
        """``({url: entity ref}, [refused refs])`` of a delivery: annotated addressed entities and recipients.

        A user named in the send counts only while it is a recipient (its ``MSTeams`` setting is on).
        """
        recipients = {ref.lower() for ref in delivery.recipients}
        addressed = [
            ref for ref in delivery.entity_refs if not ref.lower().startswith("user:") or ref.lower() in recipients
        ]
        urls = await self._annotations.urls([*addressed, *delivery.recipients])
        targets: dict[str, str] = {}
        refused: list[str] = []
        for ref, url in urls.items():
            if self._config.annotations.refusal(url) is not None:
                refused.append(ref)
            else:
                targets.setdefault(url, ref)
        return targets, refused

    async def deliver_annotated(self, delivery: Delivery) -> DeliveryOutcome:
        """Post one card to every webhook the delivery's entities name; skip when none does."""
        if not delivery.recipients and not delivery.entity_refs:  # a send whose users are all held has refs
            return DeliveryOutcome.skipped("a broadcast reaches Teams routes only")
        targets, refused = await self.annotated_targets(delivery)
        pending = {url: ref for url, ref in targets.items() if (delivery.id, url) not in self._posted}
        if not targets:
            why = f"; refused (allowedHosts, allowedSchemes): {', '.join(refused)}" if refused else ""
            return DeliveryOutcome.skipped(f"no recipient entity has the {ANNOTATION} annotation{why}")
        results = await asyncio.gather(*(self._post_annotated(delivery, url, ref) for url, ref in pending.items()))
        errors = [
            (ref, outcome)
            for (_url, ref), outcome in zip(pending.items(), results, strict=True)
            if outcome.kind != "sent"
        ]
        if not errors:
            return DeliveryOutcome.sent()
        text = "; ".join(f"{ref}: {outcome.error}" for ref, outcome in errors)
        retries = [outcome for _ref, outcome in errors if outcome.kind == "retry"]
        if retries:
            delays = [outcome.retry_after for outcome in retries if outcome.retry_after is not None]
            return DeliveryOutcome.retry(text, after_seconds=max(delays) if delays else None)
        return DeliveryOutcome.failed(text)

    async def _post_annotated(self, delivery: Delivery, url: str, ref: str) -> DeliveryOutcome:
        body = await self.card(delivery, ref)
        outcome = await self._post(url, body, self._config.timeout.total_seconds())
        if outcome.kind == "sent":
            self._posted[(delivery.id, url)] = True
        return outcome

    async def close(self) -> None:
        """Close the HTTP connection pool."""
        await self._client.close()
