"""Durable channels: what a processor delivering through the outbox declares, receives and answers.

A processor that implements ``notifications_delivery_channels`` and
``notifications_deliver`` (see :mod:`plugin_notifications.hookspecs`) is a
*durable* processor. For every send, the notifications plugin writes one
outbox row per (recipient batch, channel) in the same transaction as the
notification rows; dispatchers on every worker claim due rows, call
``notifications_deliver(channel, deliveries)`` in batches and record each
:class:`DeliveryOutcome`. Delivery is at least once: a worker killed after
delivering but before recording repeats the delivery with the same
:attr:`Delivery.id`, so receivers deduplicate on it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from plugin_notifications.models import Notification

#: ``recipient``: one delivery per recipient user (or one per broadcast);
#: ``send``: one delivery per send, listing every recipient user.
DeliveryScope = Literal["recipient", "send"]

#: What a channel may answer for one delivery.
OutcomeKind = Literal["sent", "retry", "failed", "skipped"]


@dataclass(frozen=True)
class DeliveryChannel:
    """One durable channel of a processor.

    :param name: unique among all channels of the host; stored in outbox rows
        and shown in delivery logs (``Email``, ``webhook:ops``). Keep it stable:
        rows written under a name no processor declares any more wait (and
        are reported as ``pending``) until it comes back.
    :param scope: ``recipient`` (default) or ``send``.
    :param batch_size: at most this many deliveries per ``notifications_deliver`` call.
    :param accepts: an optional extra filter, called at send time with the
        notification (for ``send`` scope, the notification without a user);
        ``False`` writes nothing for this channel.
    :param holds_users: ``send`` scope only: the channel reaches users one by one
        (a Slack DM, a personal Teams webhook), so users' digests and quiet hours
        apply to it. A recipient whose preferences hold the notification leaves
        the send's delivery and gets a held delivery of their own, keyed by
        channel and user like a ``recipient``-scope channel's (released through
        ``notifications_deliver_digest`` when the processor implements it); the
        other recipients stay on the one send delivery. That delivery is written
        even when every user was held, so what is not per user (a post to a
        group's channel) still goes out at once: its ``recipients`` may then be
        empty, and only its empty ``entity_refs`` tell a broadcast. ``recipient``
        scope always holds; ``send`` scope without this never does.
    """

    name: str
    scope: DeliveryScope = "recipient"
    batch_size: int = 50
    accepts: Callable[[Notification], bool] | None = None
    holds_users: bool = False

    def __post_init__(self) -> None:
        if not self.name or len(self.name) > 255:
            raise ValueError(f"Invalid delivery channel name {self.name!r}")
        if self.scope not in ("recipient", "send"):
            raise ValueError(f"Invalid delivery channel scope {self.scope!r}")
        if self.batch_size < 1:
            raise ValueError("A delivery channel's batch_size must be at least 1")
        if self.holds_users and self.scope != "send":
            raise ValueError("holds_users applies to send-scope channels (recipient scope always holds)")

    @property
    def holds(self) -> bool:
        """Whether users' digests and quiet hours hold deliveries on this channel."""
        return self.scope == "recipient" or self.holds_users


@dataclass(frozen=True)
class Delivery:
    """One thing to deliver on one channel.

    :param id: unique, and stable across retries and workers (``<outbox row uuid>.<n>``): pass it to the
        receiver (``Idempotency-Key``, ``webhook-id``, ``Message-ID``) so it
        can drop repeats.
    :param channel: the :attr:`DeliveryChannel.name`.
    :param notification: the notification as stored for the user (``user``
        is ``None`` for a broadcast and for ``send`` scope).
    :param recipients: the recipient user refs: ``[user]`` for ``recipient``
        scope and for a held delivery, every user the channel is enabled for
        (and, with :attr:`DeliveryChannel.holds_users`, not held) in ``send``
        scope, ``[]`` for a broadcast.
    :param attempt: 1 for the first try, 2 for the first retry, and so on.
    :param entity_refs: the entity refs the send addressed (its ``recipients.entityRef``, as sent),
        so a channel can tell a user named in the send from one reached through a group, or post
        to a group's own chat channel; ``()`` for a broadcast.
    """

    id: str
    channel: str
    notification: Notification
    recipients: tuple[str, ...] = ()
    attempt: int = 1
    created: datetime | None = None
    entity_refs: tuple[str, ...] = ()


@dataclass(frozen=True)
class Digest:
    """Held deliveries of one user on one channel, released together (``notifications_deliver_digest``).

    :param id: stable across retries while the same deliveries are due together
        (``digest.<id of the first delivery>``): pass it on for deduplication.
    :param channel: the :attr:`DeliveryChannel.name`.
    :param user: the recipient.
    :param deliveries: every delivery in the digest, oldest first.
    :param attempt: 1 for the first try, then higher.
    """

    id: str
    channel: str
    user: str
    deliveries: tuple[Delivery, ...]
    attempt: int = 1


@dataclass(frozen=True)
class DeliveryOutcome:
    """What happened to one delivery; build it with the class methods."""

    kind: OutcomeKind
    error: str | None = None
    retry_after: float | None = None

    @classmethod
    def sent(cls) -> DeliveryOutcome:
        """Delivered: never tried again."""
        return cls("sent")

    @classmethod
    def retry(cls, error: str, after_seconds: float | None = None) -> DeliveryOutcome:
        """Failed for now: try again after ``after_seconds`` (default: the outbox's backoff).

        After ``notifications.delivery.maxAttempts`` attempts the delivery is dead-lettered.
        """
        return cls("retry", error=error, retry_after=after_seconds)

    @classmethod
    def failed(cls, error: str) -> DeliveryOutcome:
        """Failed for good (a permanent error): dead-lettered now, never tried again."""
        return cls("failed", error=error)

    @classmethod
    def skipped(cls, reason: str) -> DeliveryOutcome:
        """Nothing to deliver (for example no email address); recorded with ``reason``."""
        return cls("skipped", error=reason)
