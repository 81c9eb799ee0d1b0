"""The transactional outbox: its settings, and the rows a send writes for its durable channels.

A send writes one ``notification_send`` row (the resolution: how each user
was reached, and why the web inbox was muted for anyone) and, per durable
channel, one ``notification_outbox`` row per batch of up to
``notifications.delivery.recipientsPerRow`` recipients, in the transaction
of the notification rows (:meth:`NotificationsStore.save_user_notifications`).

A row's deliveries are kept as parallel lists (``user``, ``nid``, ``p``,
``status``, ``attempts``, ``error``, ``updated``, ``why``) so that a large
fan-out builds them by slicing; :class:`OutboxItems` reads and changes them.
A column in :data:`UNIFORM_COLUMNS` whose deliveries all hold one value is
stored as that value alone (:func:`compact_items`; a new 200-delivery row
stores two lists, not eight), and read back as a list (:func:`expand_items`).
A delivery's id is its row's id and its position (:func:`delivery_id`):
unique, stable across retries, and free to generate.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from host import Config, ConfigError, read_section
from plugin_notifications.config_schema import DeliveryBackoff, DeliveryConfigSection
from plugin_notifications.delivery import Delivery, DeliveryChannel
from plugin_notifications.models import FanOut, Notification, NotificationPayload, format_timestamp

#: Delivery statuses (shown in delivery logs). ``failed`` will be retried; ``dead`` will not.
PENDING, SENT, FAILED, DEAD, MUTED, SKIPPED = "pending", "sent", "failed", "dead", "muted", "skipped"
#: Statuses a dispatcher still delivers.
OPEN_STATUSES = frozenset({PENDING, FAILED})
#: Row states.
ROW_PENDING, ROW_DONE = "pending", "done"
#: Counter names (``notification_delivery_counter``).
COUNTERS = ("sent", "failed", "retried", "dead", "skipped")
CONFIG_KEY = "notifications.delivery"
#: The pseudo-channel of a send whose deliveries the dispatcher plans (:func:`plan_later_row`).
PLAN_CHANNEL = "@plan"
#: Per-delivery columns a row may store as one value shared by all its deliveries.
UNIFORM_COLUMNS = ("p", "status", "attempts", "error", "updated", "why")
T = TypeVar("T")


@dataclass(frozen=True)
class DeliveryConfig:
    """``notifications.delivery``: retries, backoff, lease, polling and batching of the outbox."""

    max_attempts: int = 8
    initial_backoff: float = 10.0
    max_backoff: float = 600.0
    lease_seconds: float = 60.0
    poll_interval: float = 2.0
    recipients_per_row: int = 200
    claim_rows: int = 20
    enabled: bool = True
    #: Fan-outs to more users than this write one planning row; a dispatcher plans their deliveries.
    plan_later_above: int = 1000

    @classmethod
    def from_config(cls, config: Config) -> DeliveryConfig:
        """Read ``notifications.delivery`` through its model (a bad value fails startup, naming the key)."""
        section = read_section(config, CONFIG_KEY, DeliveryConfigSection)
        backoff = section.backoff or DeliveryBackoff()
        defaults = cls()
        result = cls(
            max_attempts=_or(section.max_attempts, defaults.max_attempts),
            initial_backoff=_seconds(backoff.initial, defaults.initial_backoff),
            max_backoff=_seconds(backoff.max, defaults.max_backoff),
            lease_seconds=_or(section.lease_seconds, defaults.lease_seconds),
            poll_interval=_seconds(section.poll_interval, defaults.poll_interval),
            recipients_per_row=_or(section.recipients_per_row, defaults.recipients_per_row),
            claim_rows=_or(section.claim_rows, defaults.claim_rows),
            enabled=section.dispatcher is not False,
            plan_later_above=_or(section.plan_later_above, defaults.plan_later_above),
        )
        if result.max_backoff < result.initial_backoff:
            raise ConfigError(f"{CONFIG_KEY}.backoff.max must not be shorter than backoff.initial")
        return result

    def backoff(self, attempts: int) -> float:
        """Seconds before the next try after ``attempts`` failed ones: exponential, capped, jittered.

        "Equal jitter": half the exponential delay plus a random part of the other half, so
        retries of many deliveries spread out but never come sooner than half the delay.
        """
        delay = min(self.max_backoff, self.initial_backoff * float(2 ** max(0, attempts - 1)))
        return delay / 2 + random.uniform(0, delay / 2)


def delivery_id(row_id: str, index: int) -> str:
    """The stable id of the delivery at ``index`` of outbox row ``row_id``."""
    return f"{row_id}.{index}"


def compact_items(items: dict[str, Any]) -> dict[str, Any]:
    """``items`` with each column of :data:`UNIFORM_COLUMNS` that holds one value throughout stored as that value.

    Changes and returns ``items``. Lists of one delivery are left as they are.
    """
    for column in UNIFORM_COLUMNS:
        values = items.get(column)
        if isinstance(values, list) and len(values) > 1 and values.count(values[0]) == len(values):
            items[column] = values[0]
    return items


def expand_items(items: dict[str, Any]) -> dict[str, Any]:
    """A copy of stored ``items`` with every column of :data:`UNIFORM_COLUMNS` as a list again."""
    expanded = dict(items)
    size = len(items["user"])
    for column in UNIFORM_COLUMNS:
        value = expanded.get(column)
        if not isinstance(value, list):
            expanded[column] = [value] * size
    return expanded


def _payload_wire(payload: NotificationPayload) -> dict[str, Any]:
    return payload.model_dump(mode="json", exclude_unset=True)


def plan_rows(
    *,
    send_id: str,
    origin: str,
    created: datetime,
    channel: DeliveryChannel,
    notifications: Sequence[Notification],
    statuses: Sequence[str],
    whys: Sequence[str],
    per_row: int,
) -> list[dict[str, Any]]:
    """The outbox rows of one ``recipient``-scope channel, in batches of ``per_row``.

    ``statuses`` (pending or muted) and ``whys`` run parallel to ``notifications``.
    """
    rows = []
    for start in range(0, len(notifications), per_row):
        batch = notifications[start : start + per_row]
        payloads: list[dict[str, Any]] = []
        positions: list[int] = []
        if isinstance(batch, FanOut):  # one payload for all: no model per user
            payloads.append(_payload_wire(batch.template.payload))
            positions = [0] * len(batch)
            batch_users: list[str | None] = list(batch.users)
            batch_ids = list(batch.ids)
        else:
            index_of: dict[int, int] = {}
            for notification in batch:
                key = id(notification.payload)  # recipients of one send share a payload object
                if key not in index_of:
                    index_of[key] = len(payloads)
                    payloads.append(_payload_wire(notification.payload))
                positions.append(index_of[key])
            batch_users = [notification.user for notification in batch]
            batch_ids = [notification.id for notification in batch]
        batch_statuses = list(statuses[start : start + per_row])
        items = {
            "payloads": payloads,
            "user": batch_users,
            "nid": batch_ids,
            "p": positions,
            "status": batch_statuses,
            "attempts": 0,
            "error": None,
            "updated": None,
            "why": list(whys[start : start + per_row]),
        }
        rows.append(_row(send_id, origin, created, channel.name, compact_items(items), PENDING in batch_statuses))
    return rows


def plan_send_row(
    *,
    send_id: str,
    origin: str,
    created: datetime,
    channel: DeliveryChannel,
    notification: Notification,
    recipients: Sequence[str],
    why: str,
    muted: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The one outbox row of a ``send``-scope channel: one delivery listing ``recipients``.

    ``muted`` maps the users whose settings switched the channel off to the setting that
    did: they are not recipients, and their delivery log shows the channel as ``muted``.
    """
    items = {
        "payloads": [_payload_wire(notification.payload)],
        "user": [None],
        "nid": [notification.id],
        "p": [0],
        "status": [PENDING],
        "attempts": [0],
        "error": [None],
        "updated": [None],
        "why": [why],
        "recipients": [list(recipients)],
        "muted": [dict(muted or {})],
    }
    return _row(send_id, origin, created, channel.name, items, True)


def _row(
    send_id: str, origin: str, created: datetime, channel: str, items: dict[str, Any], open_: bool
) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "send_id": send_id,
        "channel": channel,
        "state": ROW_PENDING if open_ else ROW_DONE,
        "origin": origin,
        "created": created,
        "updated": created,
        "items": items,
        "next_attempt": created,
        "lease_owner": None,
        "lease_expires": None,
        "digest_key": None,
    }


def plan_later_row(*, send_id: str, fan_out: FanOut, channels: Sequence[str]) -> dict[str, Any]:
    """The one row a large fan-out writes instead of its deliveries: what a dispatcher needs to plan them.

    Its users and notification ids, the payload, and the ``channels`` that accepted it (the
    delivery log shows them as pending meanwhile). The send's transaction then writes one row
    however many durable channels there are; settings and preferences are read when planned.
    """
    template = fan_out.template
    items = {
        "payloads": [_payload_wire(template.payload)],
        "user": list(fan_out.users),
        "nid": list(fan_out.ids),
        "channels": list(channels),
    }
    return _row(send_id, template.origin, template.created, PLAN_CHANNEL, items, True)


def planned_fan_out(items: OutboxItems) -> FanOut:
    """The fan-out a planning row (:func:`plan_later_row`) stands for."""
    payload = NotificationPayload.model_validate(items.items["payloads"][0])
    template = Notification.model_construct(
        {"id", "user", "created", "origin", "payload"},
        id=items.send_id or items.row_id,
        user=None,
        created=items.created,
        origin=items.origin,
        payload=payload,
    )
    return FanOut(template, items.items["user"], items.items["nid"])


def renumber(rows: Sequence[dict[str, Any]], restored: dict[str, str]) -> None:
    """Point deliveries at the ids of re-notified (scoped) notifications, which keep their old id."""
    if not restored:
        return
    for row in rows:
        items = row["items"]
        items["nid"] = [
            restored.get(user, nid) if user else nid for user, nid in zip(items["user"], items["nid"], strict=True)
        ]


class OutboxItems:
    """The deliveries of one claimed outbox row."""

    def __init__(self, row: Any, entity_refs: Sequence[str] = ()) -> None:
        self.row_id = str(row["id"])
        self.send_id = str(row["send_id"]) if row.get("send_id") is not None else None
        #: The entity refs the send addressed (``()`` for a broadcast): :attr:`Delivery.entity_refs`.
        self.entity_refs = tuple(entity_refs)
        self.channel = str(row["channel"])
        self.origin = str(row["origin"])
        self.created: datetime = row["created"]
        self.items: dict[str, Any] = expand_items(row["items"]) if self.channel != PLAN_CHANNEL else dict(row["items"])
        #: Set on a row held for a digest or quiet hours (:func:`digest_key`).
        self.digest_key: str | None = row.get("digest_key")
        #: When each delivery that failed this round may be tried again.
        self.retry_at: dict[int, datetime] = {}

    def __len__(self) -> int:
        return len(self.items["status"])

    def open_indexes(self) -> list[int]:
        """Positions of deliveries still to make."""
        return [i for i, status in enumerate(self.items["status"]) if status in OPEN_STATUSES]

    def delivery(self, index: int) -> Delivery:
        """The :class:`Delivery` at ``index`` (its attempt number is the next one)."""
        items = self.items
        payload = NotificationPayload.model_validate(items["payloads"][items["p"][index]])
        user = items["user"][index]
        notification = Notification.model_construct(
            {"id", "user", "created", "origin", "payload"},
            id=items["nid"][index],
            user=user,
            created=self.created,
            origin=self.origin,
            payload=payload,
        )
        recipients = items.get("recipients")
        return Delivery(
            id=delivery_id(self.row_id, index),
            channel=self.channel,
            notification=notification,
            recipients=tuple(recipients[index]) if recipients else ((user,) if user else ()),
            attempt=int(items["attempts"][index]) + 1,
            created=self.created,
            entity_refs=self.entity_refs,
        )

    def set(self, index: int, status: str, error: str | None, now: datetime, *, attempted: bool = True) -> None:
        """Record one delivery's new status (and count an attempt)."""
        items = self.items
        items["status"][index] = status
        if attempted:
            items["attempts"][index] = int(items["attempts"][index]) + 1
        items["error"][index] = error
        items["updated"][index] = format_timestamp(now)

    def next_attempt(self, now: datetime) -> datetime:
        """When the row is due again: the earliest retry of its open deliveries."""
        waits = [self.retry_at.get(index, now) for index in self.open_indexes()]
        return min(waits) if waits else now

    @property
    def open(self) -> bool:
        """Whether any delivery is still to make."""
        return any(status in OPEN_STATUSES for status in self.items["status"])


#: Decides, for one user and processor name, whether the channel is on and which setting said so.
Explain = Callable[[str, str], tuple[bool, str]]
#: For one user and processor name: until when the delivery is held (digest, quiet hours), or ``None``.
Hold = Callable[[str, str], "datetime | None"]


def digest_key(channel: str, user: str) -> str:
    """The key grouping one user's held deliveries on one channel into a digest."""
    return f"{channel}\n{user}"


def hold_row(row: dict[str, Any], key: str, due: datetime) -> dict[str, Any]:
    """Make a one-delivery row a held one: due at ``due``, grouped under ``key``."""
    row["digest_key"] = key
    row["next_attempt"] = due
    row["items"]["held"] = [format_timestamp(due)]
    return row


class OutboxPlanner:
    """Builds a send's outbox rows for every durable channel registered (see :func:`plan_rows`)."""

    def __init__(self, registry: Any, config: DeliveryConfig, logger: Any) -> None:
        self._registry = registry
        self._config = config
        self._logger = logger

    @property
    def active(self) -> bool:
        """Whether any durable channel is registered."""
        return bool(self._registry.durable_channels())

    @property
    def plan_later_above(self) -> int:
        """Fan-outs to more users than this are planned by a dispatcher (``notifications.delivery.planLaterAbove``)."""
        return self._config.plan_later_above

    def rows(
        self,
        send_id: str,
        origin: str,
        created: datetime,
        notifications: Sequence[Notification],
        explain: Explain,
        hold: Hold | None = None,
        individual: Collection[str] | None = None,
    ) -> list[dict[str, Any]]:
        """Rows of every durable channel for ``notifications`` (one per user, or one broadcast).

        ``hold`` holds a user's delivery until a digest slot or the end of quiet hours: it gets
        a row of its own, due then (:func:`hold_row`). It applies to ``recipient``-scope
        channels and to ``send``-scope ones with :attr:`DeliveryChannel.holds_users`, whose
        send row then lists only the users not held.

        ``individual``, when given, promises that ``explain`` answers every user outside it
        alike (they stored no settings): a fan-out then asks ``explain`` once per channel for
        them, not once per user.
        """
        rows: list[dict[str, Any]] = []
        if not notifications:
            return rows
        for processor, channel in self._accepting(notifications[0].payload):
            try:
                rows.extend(
                    self._channel_rows(
                        send_id, origin, created, processor.name, channel, notifications, explain, hold, individual
                    )
                )
            except Exception as error:  # a broken filter or accepts() must not stop the send
                self._logger.error("Error while planning deliveries of channel %s", channel.name, exc_info=error)
        return rows

    def accepting_channels(self, payload: NotificationPayload) -> list[str]:
        """The durable channels whose processor's filters accept ``payload`` (severity, topic)."""
        return [channel.name for _, channel in self._accepting(payload)]

    def _accepting(self, payload: NotificationPayload) -> list[tuple[Any, DeliveryChannel]]:
        found = []
        for processor, channel in self._registry.durable_channels().values():
            try:
                if processor.filters().accepts(payload.severity, payload.topic):
                    found.append((processor, channel))
            except Exception as error:  # a broken filter must not stop the send
                self._logger.error("Error while planning deliveries of channel %s", channel.name, exc_info=error)
        return found

    def _channel_rows(
        self,
        send_id: str,
        origin: str,
        created: datetime,
        setting: str,
        channel: DeliveryChannel,
        notifications: Sequence[Notification],
        explain: Explain,
        hold: Hold | None = None,
        individual: Collection[str] | None = None,
    ) -> list[dict[str, Any]]:
        accepts = channel.accepts
        # PERF: a fan-out's users mostly share one answer: ask once, then the few with settings.
        answers = (
            _fan_out_answers(notifications, setting, explain, individual)
            if isinstance(notifications, FanOut) and individual is not None
            else None
        )
        if channel.scope == "send":
            broadcast = notifications[0].user is None
            template = (
                notifications[0] if broadcast else notifications[0].model_copy(update={"id": send_id, "user": None})
            )
            if accepts is not None and not accepts(template):
                return []
            users: list[str] = []
            muted: dict[str, str] = {}
            held: list[dict[str, Any]] = []
            holds = hold if channel.holds_users else None
            if answers is not None and holds is None and answers[0][0] and isinstance(notifications, FanOut):
                _, special = answers
                fan_out_users = notifications.users
                muted = {fan_out_users[i]: why for i, (enabled, why) in special.items() if not enabled}
                users = [user for user in fan_out_users if user not in muted] if muted else list(fan_out_users)
            else:
                for index, user in enumerate(_users(notifications)):
                    if user is None:
                        continue
                    enabled, why = explain(user, setting)
                    if not enabled:
                        muted[user] = why
                    elif (
                        row := _held_row(
                            send_id, origin, created, channel, (notifications, index, user), why, holds, setting
                        )
                    ) is not None:
                        held.append(row)
                    else:
                        users.append(user)
            row = plan_send_row(
                send_id=send_id,
                origin=origin,
                created=created,
                channel=channel,
                notification=template,
                recipients=users,
                why="broadcast" if broadcast else "send",
                muted=muted,
            )
            if not broadcast and not users and not held:
                row["items"]["status"] = [MUTED]
                row["state"] = ROW_DONE
            return [row, *held]
        kept: list[int] = []
        statuses: list[str] = []
        whys: list[str] = []
        held = []
        planned = answers is not None and hold is None and accepts is None  # everyone kept, nobody held
        if planned and answers is not None:
            (enabled, why), special = answers
            kept = list(range(len(notifications)))
            statuses = [PENDING if enabled else MUTED] * len(notifications)
            whys = [why] * len(notifications)
            for index, (enabled, why) in special.items():
                statuses[index], whys[index] = (PENDING if enabled else MUTED), why
        for index, user in enumerate(() if planned else _users(notifications)):
            if user is None:
                enabled, why = True, "broadcast"
            else:
                enabled, why = explain(user, setting)
                if enabled and accepts is not None and not accepts(notifications[index]):
                    continue
                if enabled and (
                    row := _held_row(
                        send_id, origin, created, channel, (notifications, index, user), why, hold, setting
                    )
                ):
                    held.append(row)
                    continue
            kept.append(index)
            statuses.append(PENDING if enabled else MUTED)
            whys.append(why)
        return (
            plan_rows(
                send_id=send_id,
                origin=origin,
                created=created,
                channel=channel,
                notifications=_subset(notifications, kept),
                statuses=statuses,
                whys=whys,
                per_row=self._config.recipients_per_row,
            )
            + held
        )


def _fan_out_answers(
    fan_out: FanOut, setting: str, explain: Explain, individual: Collection[str]
) -> tuple[tuple[bool, str], dict[int, tuple[bool, str]]] | None:
    """The answer every user outside ``individual`` shares, and the others' answers by position.

    ``None`` when every user is individual (there is no shared answer).
    """
    users = fan_out.users
    special = (
        {index: explain(user, setting) for index, user in enumerate(users) if user in individual} if individual else {}
    )
    if len(special) == len(users):
        return None
    first = next(index for index in range(len(users)) if index not in special)
    return explain(users[first], setting), special


def _users(notifications: Sequence[Notification]) -> Sequence[str | None]:
    """The recipient of each notification; a :class:`FanOut` answers its list without building models."""
    if isinstance(notifications, FanOut):
        return notifications.users
    return [notification.user for notification in notifications]


def _subset(notifications: Sequence[Notification], kept: list[int]) -> Sequence[Notification]:
    """The notifications at ``kept`` (ascending); a fan-out stays a fan-out, and whole when nothing was left out."""
    if len(kept) == len(notifications):
        return notifications
    if isinstance(notifications, FanOut):
        return FanOut(
            notifications.template, [notifications.users[i] for i in kept], [notifications.ids[i] for i in kept]
        )
    return [notifications[i] for i in kept]


def _held_row(
    send_id: str,
    origin: str,
    created: datetime,
    channel: DeliveryChannel,
    recipient: tuple[Sequence[Notification], int, str],
    why: str,
    hold: Hold | None,
    setting: str,
) -> dict[str, Any] | None:
    """A row of its own for a user's delivery their preferences hold (due at release), else ``None``.

    ``recipient`` is ``(notifications, index, user)``: ``notifications[index]`` is built only for
    a held user (a fan-out builds its models on demand).
    """
    notifications, index, user = recipient
    due = hold(user, setting) if hold is not None else None
    if due is None:
        return None
    [row] = plan_rows(
        send_id=send_id,
        origin=origin,
        created=created,
        channel=channel,
        notifications=[notifications[index]],
        statuses=[PENDING],
        whys=[why],
        per_row=1,
    )
    return hold_row(row, digest_key(channel.name, user), due)


def _or(value: T | None, default: T) -> T:
    return default if value is None else value


def _seconds(value: timedelta | None, default: float) -> float:
    return default if value is None else value.total_seconds()
