"""Sending notifications: validation, recipients, settings, processors, storage, signals.

The order of Backstage's router is kept (spec sections 1.9, 4, 6.4, 8):

1. ``processOptions`` of the processors over the raw body;
2. validation (a 400 naming the field; nothing stored) and the link check;
3. broadcast, or recipients resolved to users;
4. per user: ``preProcess``, then the ``Web`` channel setting decides whether
   it is stored; all users are stored with one bulk statement;
5. after the response: a ``new_notification`` signal per stored
   notification and ``postProcess`` per user, in a tracked background task.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import ada_url

from host import InputError
from plugin_notifications.background import BackgroundTasks
from plugin_notifications.ids import new_ids
from plugin_notifications.limits import NotificationLimits
from plugin_notifications.models import (
    WEB_CHANNEL,
    BroadcastRecipients,
    FanOut,
    Notification,
    NotificationPayload,
    NotificationSendOptions,
    parse_send_options,
    utc_now,
)
from plugin_notifications.outbox import OutboxItems, OutboxPlanner, plan_later_row, planned_fan_out
from plugin_notifications.preferences import PreferencesService
from plugin_notifications.processing import ChannelCheck, Processor, ProcessorPipeline, RecipientResolver
from plugin_notifications.recipients import Resolution, check_recipient_refs, compact_via, resolve_recipients
from plugin_notifications.settings import DeliverySettings, SettingsService
from plugin_notifications.store import BeforeCommit, NotificationsStore, SendWrite

SIGNAL_CHANNEL = "notifications"
_SIGNAL_BATCH = 2000


class InvalidUrl(Exception):
    """What Node's ``new URL()`` throws for a link that does not parse (reported as the error's cause)."""

    name = "TypeError"

    def __init__(self, link: str, base: str) -> None:
        super().__init__("Invalid URL")
        #: Extra fields of the cause in the error body, as Node reports them.
        self.fields = {"code": "ERR_INVALID_URL", "input": link, "base": base}


def validate_link(link: str | None, base_url: str) -> None:
    """Accept http(s) links and relative links within the app, as Backstage checks them.

    The link is parsed as ``new URL(link, app.baseUrl)`` is in Node (Ada, the WHATWG URL parser
    Node uses). A link that does not parse, or is not http(s), is refused as in Backstage. Unlike
    Backstage, a relative link that leaves the app's host (``//host``, ``/\\host``) is refused too:
    it would send users to another site. Relative links are stored unchanged.
    """
    if link is None:
        return
    base = base_url if base_url.endswith("/") else f"{base_url}/"
    try:
        resolved = ada_url.URL(link, base)
    except ValueError:
        raise InputError("Invalid link provided", cause=InvalidUrl(link, base)) from None
    if resolved.protocol not in ("http:", "https:"):
        raise InputError("Invalid link provided", cause=ValueError("Only HTTP/HTTPS links are allowed"))
    if not ada_url.check_url(link) and resolved.host != ada_url.URL(base).host:
        raise InputError("Invalid link provided", cause=ValueError("Relative links must stay within the app"))


class NotificationSender:
    """Creates notifications for a sender (``origin``): the heart of ``POST /notifications``."""

    def __init__(
        self,
        *,
        store: NotificationsStore,
        settings: SettingsService,
        pipeline: ProcessorPipeline,
        resolver: RecipientResolver,
        signals: Any,
        base_url: str,
        tasks: BackgroundTasks,
        logger: Any,
        post_process_concurrency: int = 10,
        limits: NotificationLimits | None = None,
        outbox: OutboxPlanner | None = None,
        on_outbox: Any = None,
        preferences: PreferencesService | None = None,
        now: Callable[[], datetime] = utc_now,
    ) -> None:
        self._store = store
        self._settings = settings
        self._pipeline = pipeline
        self._resolver = resolver
        self._signals = signals
        self._base_url = base_url
        self._tasks = tasks
        self._logger = logger
        self._post_process_limit = max(1, post_process_concurrency)
        self._limits = limits or NotificationLimits()
        self._outbox = outbox
        #: Called (no arguments) after a send wrote outbox rows: wakes the dispatchers.
        self._on_outbox = on_outbox
        #: Digest and quiet-hours preferences: held deliveries (None: never held).
        self._preferences = preferences
        self._now = now

    async def send(
        self, body: Any, *, origin: str, before_commit: BeforeCommit | None = None
    ) -> Sequence[Notification]:
        """Create notifications from a send body on behalf of ``origin``.

        Returns what Backstage's create answers: one item for a broadcast,
        one per user whose ``Web`` channel allows it (so ``[]`` is a valid
        result). ``before_commit`` runs inside the send's transaction with that
        answer (not at all when nothing is written); raising there writes nothing.
        """
        if self._pipeline.active and isinstance(body, dict):
            body = await self._pipeline.process_options(body)
        options = parse_send_options(body)
        if not options.payload.title:
            raise InputError("Invalid notification request received: missing title")
        self._limits.check_payload(options.payload)
        validate_link(options.payload.link, self._base_url)
        # Severity is always echoed, even when defaulted.
        options.payload.severity = options.payload.severity
        created = self._now()
        if isinstance(options.recipients, BroadcastRecipients):
            return [await self._broadcast(options, origin, created, before_commit)]
        check_recipient_refs(options.recipients.entity_refs())
        # Errors of the resolver propagate: the router answers a database outage with 503 and
        # anything else unexpected with a logged 500; neither echoes the error (SQL, parameters).
        resolution = await resolve_recipients(
            self._resolver, options.recipients.entity_refs(), options.recipients.excluded_entity_refs()
        )
        return await self._to_users(resolution, options, origin, created, before_commit)

    async def _broadcast(
        self, options: NotificationSendOptions, origin: str, created: Any, before_commit: BeforeCommit | None
    ) -> Notification:
        notification = _new(None, origin, created, options.payload)
        if self._pipeline.active:
            notification = await self._pipeline.pre_process(notification, options, _always)
        send = self._send_write(origin, created, {"broadcast": True})
        send.before_commit = before_commit
        if self._outbox is not None and self._outbox.active:
            send.outbox = self._outbox.rows(
                send.id, origin, created, [notification], lambda _u, _c: (True, "broadcast")
            )
        stored = await self._store.save_broadcast(notification, _worth_writing(send, options.payload.scope))
        self._outbox_written(send)
        self._tasks.spawn(self._after_broadcast(stored, options), name=f"notifications:broadcast:{stored.id}")
        return stored

    def _send_write(self, origin: str, created: Any, resolution: dict[str, Any]) -> SendWrite:
        return SendWrite({"id": str(uuid.uuid4()), "origin": origin, "created": created, "resolution": resolution})

    def _outbox_written(self, send: SendWrite) -> None:
        if send.outbox and self._on_outbox is not None:
            self._on_outbox()

    async def _to_users(
        self,
        resolution: Resolution,
        options: NotificationSendOptions,
        origin: str,
        created: Any,
        before_commit: BeforeCommit | None,
    ) -> Sequence[Notification]:
        users = resolution.users
        if not users:
            return []
        delivery = await self._settings.delivery_settings(users, origin)
        allowed = _channel_check(delivery)
        topic = options.payload.topic
        template = _new(None, origin, created, options.payload)
        ids = new_ids(len(users))
        pre_process = self._pipeline.active and self._pipeline.runs("notifications_pre_process", options.payload)
        # PERF: without a pre_process hook every user's notification is the template with its own
        # id and user: a FanOut holds them as two lists (no model per user); unscoped sends are
        # stored in bulk from it. A processor may change any field, so it gets one model per user.
        fast = not pre_process and options.payload.scope is None
        web_why: dict[str, list[Any]] = {}
        prepared: Sequence[Notification]
        web: Sequence[Notification]
        if fast:
            prepared = FanOut(template, users, ids)
            web_users, web_ids = [], []
            for user, notification_id in zip(users, ids, strict=True):
                enabled, why = delivery.explain(user, WEB_CHANNEL, origin, topic)
                if enabled:
                    web_users.append(user)
                    web_ids.append(notification_id)
                if why != "default":  # the common case is left out: the log shows it as default
                    web_why[user] = [enabled, why]
            web = prepared if len(web_users) == len(users) else FanOut(template, web_users, web_ids)
        else:
            prepared = []
            for user, notification_id in zip(users, ids, strict=True):
                # model_copy of one template is about twice as fast as model_construct per user
                notification = template.model_copy(update={"id": notification_id, "user": user})
                if pre_process:
                    notification = await self._pipeline.pre_process(notification, options, allowed)
                prepared.append(notification)
            web = []
            for item in prepared:
                enabled, why = delivery.explain(item.user or "", WEB_CHANNEL, origin, topic)
                if enabled:
                    web.append(item)
                if why != "default":
                    web_why[item.user or ""] = [enabled, why]
        send = self._send_write(
            origin,
            created,
            {
                "requested": []
                if isinstance(options.recipients, BroadcastRecipients)
                else options.recipients.entity_refs(),
                **compact_via(resolution.via, users),
                "web": web_why,
            },
        )
        send.before_commit = before_commit
        if self._outbox is not None and self._outbox.active:
            if isinstance(prepared, FanOut) and len(prepared) > self._outbox.plan_later_above:
                # PERF: one small row, whatever the channels; a dispatcher plans the deliveries
                channels = self._outbox.accepting_channels(options.payload)
                send.outbox = [plan_later_row(send_id=send.id, fan_out=prepared, channels=channels)] if channels else []
            else:
                send.outbox = await self._outbox_rows(send.id, prepared, origin, created, delivery)
        stored = await self._store.save_user_notifications(
            web, _worth_writing(send, options.payload.scope, resolution.via, web_why)
        )
        self._outbox_written(send)
        if send.batches > 1:
            self._logger.debug("Stored %s notifications of send %s in %s batches", len(stored), send.id, send.batches)
        delivered: Sequence[Notification]
        if fast:  # unscoped: stored as given, nothing to put back
            delivered = prepared
        else:
            by_user = {item.user: item for item in stored}
            delivered = [by_user.get(item.user, item) for item in prepared]
        self._tasks.spawn(
            self._after_users(stored, delivered, options, allowed),
            name=f"notifications:send:{origin}:{len(users)}",
        )
        return stored

    async def _outbox_rows(
        self,
        send_id: str,
        notifications: Sequence[Notification],
        origin: str,
        created: datetime,
        delivery: DeliverySettings,
    ) -> list[dict[str, Any]]:
        """The outbox rows of a send to users: each durable channel's deliveries, with settings and preferences."""
        assert self._outbox is not None
        payload = notifications[0].payload
        users = (
            notifications.users if isinstance(notifications, FanOut) else [item.user or "" for item in notifications]
        )
        hold = None
        if self._preferences is not None:
            policy = await self._preferences.policy(users, origin, payload.topic, str(payload.severity))
            hold = None if policy.holds_nothing else policy
        return self._outbox.rows(
            send_id,
            origin,
            created,
            notifications,
            lambda user, channel: delivery.explain(user, channel, origin, payload.topic),
            hold,
            individual=delivery.users_with_rows,
        )

    async def plan_later(self, plan: OutboxItems) -> list[dict[str, Any]]:
        """The delivery rows of a planning row (:func:`~plugin_notifications.outbox.plan_later_row`).

        Called by a dispatcher: users' settings and preferences are read now, not at the send.
        """
        fan_out = planned_fan_out(plan)
        delivery = await self._settings.delivery_settings(fan_out.users, plan.origin)
        return await self._outbox_rows(str(plan.send_id), fan_out, plan.origin, plan.created, delivery)

    async def _after_broadcast(self, stored: Notification, options: NotificationSendOptions) -> None:
        await self._signal({"type": "broadcast"}, stored.id)
        await self._pipeline.post_process(stored, options, _always)

    async def _after_users(
        self,
        stored: Sequence[Notification],
        delivered: Sequence[Notification],
        options: NotificationSendOptions,
        allowed: ChannelCheck,
    ) -> None:
        for start in range(0, len(stored), _SIGNAL_BATCH):
            await self._signal_many(stored[start : start + _SIGNAL_BATCH])
        if not (self._pipeline.active and self._pipeline.runs("notifications_post_process", options.payload)):
            return
        limit = asyncio.Semaphore(self._post_process_limit)

        async def post(notification: Notification) -> None:
            async with limit:
                await self._pipeline.post_process(notification, options, allowed)

        await asyncio.gather(*(post(item) for item in delivered))

    async def _signal_many(self, notifications: Sequence[Notification]) -> None:
        """One ``new_notification`` signal per stored notification, sent together."""
        pairs = (
            zip(notifications.users, notifications.ids, strict=True)
            if isinstance(notifications, FanOut)
            else ((item.user, item.id) for item in notifications)
        )
        signals = [
            {
                "recipients": {"type": "user", "entityRef": [user]},
                "channel": SIGNAL_CHANNEL,
                "message": {"action": "new_notification", "notification_id": notification_id},
            }
            for user, notification_id in pairs
        ]
        publish_many = getattr(self._signals, "publish_many", None)
        try:
            if publish_many is not None:
                await publish_many(signals)
                return
            for signal in signals:
                await self._signals.publish(**signal)
        except Exception as error:  # noqa: BLE001 - a signal is only a hint and the notification is stored: never fail the send
            self._logger.warning("Failed to publish new_notification signals: %s", error)

    async def _signal(self, recipients: dict[str, Any], notification_id: str) -> None:
        try:
            await self._signals.publish(
                recipients=recipients,
                channel=SIGNAL_CHANNEL,
                message={"action": "new_notification", "notification_id": notification_id},
            )
        except Exception as error:  # noqa: BLE001 - a signal is only a hint and the notification is stored: never fail the send
            self._logger.warning("Failed to publish new_notification signal: %s", error)


def _worth_writing(send: SendWrite, *recorded: Any) -> SendWrite | None:
    """``send``, or ``None`` when its row would record nothing the delivery log cannot tell without it.

    That is an unscoped send (``recorded``: a scoped re-send must point its rows at the new
    send) with no outbox rows and nothing to run before commit whose users were all asked
    for directly (no ``via`` steps) and got the web inbox's default: the log then answers
    "asked for directly, web by default" from the notification alone. Its
    notifications are then stored in one statement, without ``BEGIN``/``COMMIT`` (one round
    trip instead of four on the POST to one user).
    """
    if send.outbox or send.before_commit is not None or any(recorded):
        return send
    return None


def _channel_check(delivery: DeliverySettings) -> ChannelCheck:
    """Processors may handle a user's notification when that user enabled their channel."""

    def allowed(processor: Processor, notification: Notification) -> bool:
        return delivery.is_enabled(
            notification.user or "", processor.name, notification.origin, notification.payload.topic
        )

    return allowed


def _always(_processor: Processor, _notification: Notification) -> bool:
    return True


def _new(user: str | None, origin: str, created: Any, payload: NotificationPayload) -> Notification:
    """A fresh notification carrying only the supplied payload fields (as create answers)."""
    return Notification.model_construct(
        {"id", "user", "created", "origin", "payload"},
        id=str(uuid.uuid4()),
        user=user,
        created=created,
        origin=origin,
        payload=payload,
    )
