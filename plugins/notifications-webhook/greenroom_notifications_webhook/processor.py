"""The ``Webhook`` processor: one durable outbox channel per endpoint, delivered as signed POSTs.

Each endpoint is a ``send``-scope channel ``webhook:<name>``: one message per
send (or broadcast) listing every recipient user the channel is on for,
rather than one per user, so a 10,000-user group send is one request per
endpoint. The outbox calls :meth:`WebhookProcessor.notifications_deliver`
with due deliveries; each becomes one POST whose ``webhook-id`` is the
delivery's id, and whose result is classified by
:func:`plugin_notifications.http_channels.classify`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from greenroom_notifications_webhook.message import Signer, message_body
from greenroom_notifications_webhook.settings import WebhookConfig, WebhookEndpoint
from host import UserDirectory
from plugin_notifications import hookimpl
from plugin_notifications.delivery import Delivery, DeliveryChannel, DeliveryOutcome
from plugin_notifications.http_channels import JsonPoster, RecipientMatcher, RouteFilter

PROCESSOR_NAME = "Webhook"
USER_AGENT = "Greenroom-Webhooks/0.1"


class WebhookProcessor:
    """Delivers notifications to the configured endpoints through the outbox."""

    def __init__(self, config: WebhookConfig, *, catalog: UserDirectory, client: JsonPoster | None = None) -> None:
        self._config = config
        self._endpoints = {endpoint.channel: endpoint for endpoint in config.endpoints}
        self._signers = {endpoint.channel: Signer(endpoint.secret.get_secret_value()) for endpoint in config.endpoints}
        self._matcher = RecipientMatcher(catalog, config.entity_refs_cache_ttl.total_seconds())
        self._client = client or JsonPoster(
            user_agent=USER_AGENT, max_retry_after=config.max_retry_after.total_seconds()
        )
        self._slots = asyncio.Semaphore(config.concurrency)

    # -- hooks -----------------------------------------------------------------

    @hookimpl
    def notifications_processor_name(self) -> str:
        """``Webhook``: also the settings channel users can switch off."""
        return PROCESSOR_NAME

    @hookimpl
    def notifications_delivery_channels(self) -> list[DeliveryChannel]:
        """One ``send``-scope channel per endpoint, with its send-time filters."""
        return [
            DeliveryChannel(
                endpoint.channel,
                scope="send",
                batch_size=self._config.batch_size,
                accepts=RouteFilter(endpoint).accepts,
            )
            for endpoint in self._config.endpoints
        ]

    @hookimpl
    async def notifications_deliver(self, channel: str, deliveries: Sequence[Delivery]) -> dict[str, DeliveryOutcome]:
        """POST each delivery to the channel's endpoint, at most ``concurrency`` at once."""
        endpoint = self._endpoints.get(channel)
        if endpoint is None:  # not ours: the outbox only calls a channel's own processor
            return {delivery.id: DeliveryOutcome.failed(f"no webhook endpoint {channel}") for delivery in deliveries}
        outcomes = await asyncio.gather(*(self.deliver_one(endpoint, delivery) for delivery in deliveries))
        return {delivery.id: outcome for delivery, outcome in zip(deliveries, outcomes, strict=True)}

    # -- delivery --------------------------------------------------------------

    async def deliver_one(self, endpoint: WebhookEndpoint, delivery: Delivery) -> DeliveryOutcome:
        """Deliver one message to ``endpoint`` (or skip it when ``entityRefs`` match no recipient)."""
        broadcast = not delivery.recipients
        if broadcast and endpoint.entity_refs is not None:
            return DeliveryOutcome.skipped("a broadcast does not match entityRefs")
        recipients = await self._matcher.recipients(endpoint, delivery.recipients)
        if not broadcast and not recipients:
            return DeliveryOutcome.skipped("no recipient matches entityRefs")
        body = message_body(delivery.notification, recipients, broadcast=broadcast)
        async with self._slots:
            headers = self._signers[endpoint.channel].headers(delivery.id, body)  # signed when sent: a fresh timestamp
            return await self._client.post(
                endpoint.url, body, headers, timeout_seconds=self._config.timeout_for(endpoint)
            )

    async def close(self) -> None:
        """Close the HTTP connection pool."""
        await self._client.close()
