"""The Slack processor: one durable ``send``-scope outbox channel per workspace.

One delivery per send (or broadcast) and workspace. Delivering it:

1. finds the destinations (:mod:`greenroom_notifications_slack.targets`):
   DMs for the users the send named (among the recipients who have the
   channel on), the channel of each other entity it named (or
   ``metadata.slackChannel``), or the broadcast routes;
2. renders one message (title, an attachment coloured by severity, the
   Block Kit blocks of the renderer hook) with the description in ``mrkdwn``;
3. posts it to each destination the delivery has not posted to yet (the
   ledger in ``slack_messages``), or, for a notification with a ``scope``,
   updates the message an earlier send of the same origin and scope left
   there (``chat.update`` on its ``ts``); every call takes a slot of the
   workspace's throttle (``concurrencyLimit`` per ``throttleInterval``).

The delivery id travels in the message's ``metadata``
(``event_type: greenroom_notification``), so anything reading the channel
can tell a repeat from a new message.

The channels hold users (``holds_users``): a user whose preferences for
``SlackNotificationProcessor`` hold a notification (a digest mode, quiet
hours) leaves the send's delivery and gets it later in one digest DM
(:mod:`greenroom_notifications_slack.digest`), if the send named them (users
reached through a group get no DM, held or not). Channel posts are not per
user and go out at once.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from greenroom_notifications_slack import PROCESSOR_NAME
from greenroom_notifications_slack.client import SlackCallError, SlackClient, Throttle
from greenroom_notifications_slack.digest import digest_message
from greenroom_notifications_slack.mrkdwn import markdown_to_mrkdwn, plain_to_mrkdwn
from greenroom_notifications_slack.render import SlackRenderers, absolute_link, message
from greenroom_notifications_slack.settings import SlackConfig, SlackWorkspace
from greenroom_notifications_slack.store import PostedMessage, SlackMessageStore
from greenroom_notifications_slack.targets import (
    CHANNEL_METADATA_KEY,
    SlackDirectory,
    broadcast_channels,
    canonical_ref,
    kind_of,
)
from host import UserDirectory
from plugin_notifications import hookimpl
from plugin_notifications.delivery import Delivery, DeliveryChannel, DeliveryOutcome, Digest
from plugin_notifications.models import Notification
from plugin_notifications.rich_text import DescriptionFormat, description_format

#: ``metadata.event_type`` of every message.
EVENT_TYPE = "greenroom_notification"
#: ``chat.update`` errors after which a new message is posted instead.
_GONE = ("message_not_found", "cant_update_message", "edit_window_closed", "channel_not_found")
_MENTION = re.compile(r"&lt;@(user:[^&\s]+?)&gt;", re.IGNORECASE)


@dataclass
class Workspace:
    """What one configured workspace needs at delivery time."""

    channel: str
    settings: SlackWorkspace
    client: SlackClient
    directory: SlackDirectory
    throttle: Throttle


class SlackProcessor:
    """Delivers notifications to Slack through the outbox (one channel per workspace)."""

    def __init__(
        self,
        config: SlackConfig,
        *,
        catalog: UserDirectory,
        store: SlackMessageStore,
        renderers: SlackRenderers | None = None,
        base_url: str,
        description_default: DescriptionFormat = "plain",
        lease_seconds: float = 60.0,
        logger: Any = None,
    ) -> None:
        self._store = store
        self._renderers = renderers or SlackRenderers()
        self._base_url = base_url
        self._description_default = description_default
        #: How long one batch may wait for throttle slots: half the outbox lease.
        self._wait_budget = lease_seconds / 2
        self._logger = logger
        self.workspaces: dict[str, Workspace] = {}
        for channel, settings in config.workspaces():
            client = SlackClient(
                settings.token.get_secret_value(),
                api_url=settings.api_url,
                timeout=settings.timeout.total_seconds(),
                max_retry_after=settings.max_retry_after.total_seconds(),
            )
            self.workspaces[channel] = Workspace(
                channel,
                settings,
                client,
                SlackDirectory(catalog, client, settings),
                Throttle(settings.concurrency_limit, settings.throttle_interval.total_seconds()),
            )

    # -- hooks -----------------------------------------------------------------

    @hookimpl
    def notifications_processor_name(self) -> str:
        """``SlackNotificationProcessor``, as in Backstage: also the settings channel users can switch off."""
        return PROCESSOR_NAME

    @hookimpl
    def notifications_delivery_channels(self) -> list[DeliveryChannel]:
        """One ``send``-scope channel per workspace; users' digests and quiet hours hold their DMs."""
        return [
            DeliveryChannel(channel, scope="send", batch_size=workspace.settings.batch_size, holds_users=True)
            for channel, workspace in self.workspaces.items()
        ]

    @hookimpl
    async def notifications_deliver(self, channel: str, deliveries: Sequence[Delivery]) -> dict[str, DeliveryOutcome]:
        """Deliver a batch; deliveries of one origin and scope go one after the other, in order."""
        workspace = self.workspaces.get(channel)
        if workspace is None:  # not ours: the outbox only calls a channel's own processor
            return {delivery.id: DeliveryOutcome.failed(f"no Slack workspace {channel}") for delivery in deliveries}
        deadline = time.monotonic() + self._wait_budget
        groups: dict[tuple[str, ...], list[Delivery]] = {}
        for delivery in sorted(deliveries, key=lambda d: (d.created.timestamp() if d.created else 0.0, d.id)):
            scope = delivery.notification.payload.scope
            key = ("scope", delivery.notification.origin, scope) if scope else ("one", delivery.id)
            groups.setdefault(key, []).append(delivery)
        outcomes: dict[str, DeliveryOutcome] = {}

        async def run(group: list[Delivery]) -> None:
            for delivery in group:
                outcomes[delivery.id] = await self.deliver_one(workspace, delivery, deadline)

        await asyncio.gather(*(run(group) for group in groups.values()))
        return outcomes

    @hookimpl
    async def notifications_deliver_digest(self, channel: str, digests: Sequence[Digest]) -> dict[str, DeliveryOutcome]:
        """One DM per digest (a user's held notifications); deliveries that reach no DM are answered ``skipped``."""
        workspace = self.workspaces.get(channel)
        if workspace is None:
            return {digest.id: DeliveryOutcome.failed(f"no Slack workspace {channel}") for digest in digests}
        deadline = time.monotonic() + self._wait_budget
        outcomes: dict[str, DeliveryOutcome] = {}
        for answers in await asyncio.gather(*(self.deliver_digest(workspace, digest, deadline) for digest in digests)):
            outcomes.update(answers)
        return outcomes

    # -- delivery --------------------------------------------------------------

    async def deliver_digest(self, workspace: Workspace, digest: Digest, deadline: float) -> dict[str, DeliveryOutcome]:
        """DM the digest's user one message listing the held notifications of sends that named them."""
        user = canonical_ref(digest.user) or digest.user
        named = [d for d in digest.deliveries if user in {canonical_ref(ref) for ref in d.entity_refs}]
        through_group = DeliveryOutcome.skipped("reached through a group: no DM (its channel message is not held)")
        answers = {d.id: through_group for d in digest.deliveries if not any(d.id == n.id for n in named)}
        answers[digest.id] = (
            await self._post_digest(workspace, digest, user, named, deadline) if named else through_group
        )
        return answers

    async def _post_digest(
        self, workspace: Workspace, digest: Digest, user: str, deliveries: Sequence[Delivery], deadline: float
    ) -> DeliveryOutcome:
        try:
            entity = (await workspace.directory.entities([user])).get(user)
            user_id = await workspace.directory.user_id(entity) if entity else None
        except SlackCallError as failure:
            return failure.outcome
        if not user_id:
            return DeliveryOutcome.skipped(f"no Slack destination: no Slack user for {user}")
        if user_id in await self._store.posted_by(digest.id):
            return DeliveryOutcome.sent()  # a retry: it went out on an earlier attempt
        wait = await workspace.throttle.acquire(deadline)
        if wait is not None:
            return DeliveryOutcome.retry("throttled (concurrencyLimit per throttleInterval)", wait)
        notifications = [delivery.notification for delivery in deliveries]
        content = digest_message(notifications, self._base_url, workspace.settings.username)
        metadata = {
            "event_type": EVENT_TYPE,
            "event_payload": {"delivery_id": digest.id, "notification_count": len(notifications)},
        }
        try:
            conversation, ts = await workspace.client.post(user_id, content, metadata)
        except SlackCallError as failure:
            return failure.outcome
        await self._store.record(
            channel=workspace.channel,
            delivery_id=digest.id,
            destination=user_id,
            message=PostedMessage(conversation, ts),
            origin=notifications[0].origin,
            scope=None,
        )
        return DeliveryOutcome.sent()

    async def deliver_one(self, workspace: Workspace, delivery: Delivery, deadline: float) -> DeliveryOutcome:
        """Post (or update) one delivery's message at each of its destinations."""
        try:
            destinations, missing = await self._destinations(workspace, delivery)
        except SlackCallError as failure:
            return failure.outcome
        if not destinations:
            return DeliveryOutcome.skipped(missing or "no Slack destination")
        notification = self._with_absolute_link(delivery.notification)
        try:
            description = await self._description(workspace, notification)
            blocks = await self._renderers.blocks(notification, description)
        except SlackCallError as failure:
            return failure.outcome
        except Exception as error:
            if self._logger is not None:
                self._logger.error("Slack renderer failed", exc_info=error)
            return DeliveryOutcome.failed(f"the Slack renderer failed ({type(error).__name__})")
        content = message(notification, blocks, workspace.settings.username)
        metadata = {
            "event_type": EVENT_TYPE,
            "event_payload": {"delivery_id": delivery.id, "notification_id": notification.id},
        }
        posted = await self._store.posted_by(delivery.id)
        failures: list[DeliveryOutcome] = []
        for destination in destinations:
            if destination in posted:
                continue  # a retry: this one went out on an earlier attempt
            wait = await workspace.throttle.acquire(deadline)
            if wait is not None:
                failures.append(DeliveryOutcome.retry("throttled (concurrencyLimit per throttleInterval)", wait))
                break
            try:
                await self._send(workspace, delivery, destination, content, metadata)
            except SlackCallError as failure:
                failures.append(failure.outcome)
                if failure.outcome.retry_after is not None:
                    break  # rate limited: the rest waits as well
        return _combine(failures)

    async def _send(
        self,
        workspace: Workspace,
        delivery: Delivery,
        destination: str,
        content: dict[str, Any],
        metadata: dict[str, Any],
    ) -> None:
        notification = delivery.notification
        scope = notification.payload.scope
        sent: PostedMessage | None = None
        if scope:
            earlier = await self._store.latest(workspace.channel, notification.origin, scope, destination)
            if earlier is not None:
                try:
                    await workspace.client.update(earlier.conversation, earlier.ts, content, metadata)
                    sent = earlier
                except SlackCallError as failure:
                    if failure.outcome.kind == "retry" or not any(g in (failure.outcome.error or "") for g in _GONE):
                        raise
        if sent is None:
            conversation, ts = await workspace.client.post(destination, content, metadata)
            sent = PostedMessage(conversation, ts)
        await self._store.record(
            channel=workspace.channel,
            delivery_id=delivery.id,
            destination=destination,
            message=sent,
            origin=notification.origin,
            scope=scope,
        )

    async def _destinations(self, workspace: Workspace, delivery: Delivery) -> tuple[list[str], str]:
        """The Slack destinations of ``delivery`` in order, and why there are none when there are none."""
        notification = delivery.notification
        if not delivery.recipients and not delivery.entity_refs:  # a send whose users are all held has refs
            channels = list(dict.fromkeys(broadcast_channels(notification, workspace.settings)))
            return channels, "no broadcastRoutes entry or broadcastChannels for this broadcast"
        requested = [ref for ref in (canonical_ref(r) for r in delivery.entity_refs) if ref is not None]
        enabled = {ref.lower() for ref in delivery.recipients}
        named_users = [ref for ref in requested if kind_of(ref) == "user" and ref in enabled]
        others = [ref for ref in requested if kind_of(ref) != "user"]
        metadata = notification.payload.metadata or {}
        chosen = metadata.get(CHANNEL_METADATA_KEY)
        chosen = chosen.strip() if isinstance(chosen, str) and chosen.strip() else None
        entities = await workspace.directory.entities(named_users + ([] if chosen else others))
        destinations: list[str] = []
        if others:
            if chosen:
                destinations.append(chosen)
            for ref in [] if chosen else others:
                target = SlackDirectory.channel_of(entities.get(ref) or {})
                if target:
                    destinations.append(target)
        unknown = []
        for ref in named_users:
            entity = entities.get(ref)
            user_id = await workspace.directory.user_id(entity) if entity else None
            if user_id:
                destinations.append(user_id)
            else:
                unknown.append(ref)
        why = "no Slack destination: " + (
            f"no Slack user for {', '.join(unknown)}"
            if unknown
            else "no user named in the send, no entity with a Slack channel"
        )
        return list(dict.fromkeys(destinations)), why

    def _with_absolute_link(self, notification: Notification) -> Notification:
        link = absolute_link(notification.payload.link, self._base_url)
        if link == notification.payload.link:
            return notification
        return notification.model_copy(update={"payload": notification.payload.model_copy(update={"link": link})})

    async def _description(self, workspace: Workspace, notification: Notification) -> str | None:
        """The description as ``mrkdwn``, with ``<@user:...>`` mentions turned into Slack mentions."""
        text = notification.payload.description
        if not text:
            return None
        markdown = description_format(notification.payload.metadata, self._description_default) == "markdown"
        converted = markdown_to_mrkdwn(text) if markdown else plain_to_mrkdwn(text)
        mentioned = list(dict.fromkeys(ref for ref in (canonical_ref(m) for m in _MENTION.findall(converted)) if ref))
        if not mentioned:
            return converted
        entities = await workspace.directory.entities(mentioned)
        ids = {}
        for ref in mentioned:
            entity = entities.get(ref)
            user_id = await workspace.directory.user_id(entity) if entity and kind_of(ref) == "user" else None
            if user_id:
                ids[ref] = user_id

        def mention(match: re.Match[str]) -> str:
            user_id = ids.get(canonical_ref(match.group(1)) or "")
            return f"<@{user_id}>" if user_id else match.group(0)

        return _MENTION.sub(mention, converted)

    async def close(self) -> None:
        """Close every workspace's HTTP session."""
        for workspace in self.workspaces.values():
            await workspace.client.close()


def _combine(failures: list[DeliveryOutcome]) -> DeliveryOutcome:
    """One outcome for a delivery's destinations: any retry retries, else any failure fails, else sent."""
    if not failures:
        return DeliveryOutcome.sent()
    errors = "; ".join(dict.fromkeys(f.error or "" for f in failures))
    retries = [f for f in failures if f.kind == "retry"]
    if retries:
        delays = [f.retry_after for f in retries if f.retry_after is not None]
        return DeliveryOutcome.retry(errors, after_seconds=max(delays) if delays else None)
    return DeliveryOutcome.failed(errors)
