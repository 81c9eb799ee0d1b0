"""Processor hooks of the notifications plugin (pluggy project ``greenroom.notifications``).

A *processor* is one pluggy plugin - a module or an object - implementing
some of the hooks below with ``@hookimpl``. It is Backstage's
``NotificationProcessor``: it can rewrite what is sent, filter it and
deliver it to another system (email, chat). Its name is also a settings
channel that users can switch on and off per origin and topic.

A processor is always such a pluggy plugin. It reaches the notifications
plugin through the entry-point group ``greenroom.notifications.processors``
(a module or object, found with pluggy's ``load_setuptools_entrypoints``),
or, when it needs config or services, from a backend module of plugin
``notifications`` that depends on the extension point
``notifications.processing`` and calls ``add_processor(obj)``.

The hooks are the functions below: the notifications plugin derives its hook
list from them, and a processor implementing a ``notifications_*`` hook that
is not specified here is refused at registration (pluggy ``check_pending``).

The notifications plugin calls each processor's implementation separately,
because every processor has its own name, filters and user settings, in
pluggy's call order (``@hookimpl(tryfirst=True)`` / ``trylast=True`` move a
processor to the front or the back; otherwise the last registered runs
first, as in pluggy). An implementation may accept any subset of the
arguments, may be ``async``, and may return ``None`` to leave its input
unchanged. An exception is logged and skipped; it never loses the
notification.

A processor may also *wrap* ``notifications_process_options``,
``notifications_pre_process`` or ``notifications_post_process`` with
``@hookimpl(wrapper=True)``: a generator that runs before each processor's
call (it may change the arguments), receives the call's results as a list from
``yield`` (the value an ``async`` implementation returned, not its coroutine)
and returns the list to use. Each processor's implementation is called
through pluggy with ``subset_hook_caller``: that processor alone, inside every
wrapper of the hook, in pluggy's order (``tryfirst`` on a wrapper makes it the
outermost). A wrapper is not itself called as a processor of the hook it
wraps, and it sees the calls of every processor whatever their filters::

    class Timing:
        @hookimpl
        def notifications_processor_name(self):
            return "Timing"

        @hookimpl(wrapper=True)
        def notifications_pre_process(self, notification):
            started = time.monotonic()
            results = yield
            metrics.observe(time.monotonic() - started)
            return results

When a hook has wrappers, an ``async`` implementation's call runs pluggy in a
worker thread while the coroutine runs on the event loop; without wrappers
each implementation is called directly.

``notifications_resolve_recipients`` is not a processor hook but a
"pick exactly one" slot (``firstresult``), called through pluggy: the first
implementation to return a value wins, and the catalog-backed default is
registered ``trylast``.

Example::

    from plugin_notifications import hookimpl

    @hookimpl
    def notifications_processor_name():
        return "Audit"

    @hookimpl
    async def notifications_post_process(notification):
        await audit_log.write(notification.to_wire())
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from plugin_notifications.delivery import Delivery, DeliveryChannel, DeliveryOutcome, Digest
    from plugin_notifications.models import Notification, NotificationSendOptions
    from plugin_notifications.processing import ProcessorFilters

PROJECT_NAME = "greenroom.notifications"
ENTRY_POINT_GROUP = "greenroom.notifications.processors"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def notifications_processor_name() -> str:  # type: ignore[empty-body]
    """Return the processor's name (Backstage ``getName``). Required.

    The name is also the id of the processor's settings channel, shown as a
    column of the user's settings (for example ``Email``).

    :return: a short, stable name.

    Use in processors: every processor must implement it.
    """


@hookspec
def notifications_processor_filters() -> ProcessorFilters | dict[str, Any] | None:
    """Return which notifications the processor wants (Backstage ``getNotificationFilters``).

    ``{"minSeverity": "high"}`` skips anything less severe than high,
    ``maxSeverity`` anything more severe, ``excludedTopics`` the listed
    topics, ``includedTopics`` (when set) every topic not listed and
    notifications without a topic. Either a :class:`~plugin_notifications.processing.ProcessorFilters`
    or a dict with those keys (camelCase or snake_case).

    :return: the filters, or ``None`` for every notification.

    Use in processors: optional.
    """


@hookspec
def notifications_process_options(options: dict[str, Any]) -> dict[str, Any] | None:
    """Rewrite a send request before it is validated (Backstage ``processOptions``).

    Called once per send request, before recipients are resolved, with the
    raw JSON body ``{"recipients": ..., "payload": ...}``. User settings do
    not apply here; the processor's filters do (against the raw payload).

    :param options: the send options as sent (not validated yet).
    :return: new options, or ``None`` to keep ``options`` (which may be
        changed in place).

    Use in processors: optional.
    """


@hookspec
def notifications_pre_process(notification: Notification, options: NotificationSendOptions) -> Notification | None:
    """Change a notification before it is stored and signalled (Backstage ``preProcess``).

    Called once per recipient user (or once for a broadcast) when the
    processor's channel is enabled for that user, origin and topic.

    :param notification: the notification about to be stored; ``user`` is
        ``None`` for a broadcast.
    :param options: the validated send options.
    :return: the notification to store, or ``None`` to keep ``notification``
        (which may be changed in place).

    Use in processors: optional.
    """


@hookspec(firstresult=True)
def notifications_resolve_recipients(entity_refs: list[str], excluded_entity_refs: list[str]) -> Any:
    """Turn ``entity`` recipients into user refs (replaces the catalog resolution).

    :param entity_refs: the requested entity refs (``recipients.entityRef``).
    :param excluded_entity_refs: refs to leave out (``recipients.excludeEntityRef``).
    :return: user entity refs, as a list or ``{"userEntityRefs": [...]}``
        (refs that are not users are dropped); the dict may add
        ``"via": {reached_ref: [from_ref, relation]}``, the path the delivery
        log shows (the catalog default fills it), or ``None`` to let the next
        implementation answer. An ``async`` implementation always answers.

    Use in processors: optional; implemented by a plugin that is not a
    processor (no ``notifications_processor_name``), registered with
    ``set_notification_recipient_resolver`` or through the entry-point group.
    Stops at the first non-``None`` result.
    """


@hookspec
def notifications_post_process(notification: Notification, options: NotificationSendOptions) -> None:
    """Deliver a stored notification elsewhere (Backstage ``postProcess``).

    Called once per recipient user (also for users whose ``Web`` channel is
    off) or once for a broadcast, after the notification is stored and
    signalled. It runs in a background task: the HTTP response does not wait
    for it, and shutdown waits for tasks still running.

    :param notification: the stored notification.
    :param options: the validated send options.

    Use in processors: optional.
    """


@hookspec
def notifications_delivery_channels() -> Sequence[DeliveryChannel | str] | DeliveryChannel | str | None:
    """Declare the processor's durable channels (delivered through the outbox).

    A processor implementing this and ``notifications_deliver`` is durable:
    each send writes outbox rows for its channels in the notification's
    transaction, and dispatchers on every worker deliver them with retries,
    backoff, a lease and dead-lettering (``notifications.delivery``). The
    user settings of the processor's name decide, per recipient, whether a
    channel is used (``muted`` otherwise); its filters apply as well.

    :return: :class:`~plugin_notifications.delivery.DeliveryChannel` objects
        (a plain string is a ``recipient``-scope channel of that name).

    Use in processors: optional; called once, when the processor is registered.
    """


@hookspec
def notifications_deliver(
    channel: str, deliveries: Sequence[Delivery]
) -> Mapping[str, DeliveryOutcome] | Sequence[DeliveryOutcome] | None:
    """Deliver a batch of outbox deliveries of one of the processor's channels.

    Called by a dispatcher with at most the channel's ``batch_size``
    deliveries. At least once: a delivery may come again (same
    :attr:`~plugin_notifications.delivery.Delivery.id`) if a worker died
    before recording its outcome, so pass the id on for deduplication.

    :param channel: the channel's name.
    :param deliveries: the deliveries due now.
    :return: one :class:`~plugin_notifications.delivery.DeliveryOutcome` per
        delivery: a mapping by delivery id, or a sequence in the order of
        ``deliveries``. A delivery without an outcome, and every delivery of a
        call that raises, is retried with backoff.

    Use in processors: required for durable processors.
    """


@hookspec
def notifications_deliver_digest(
    channel: str, digests: Sequence[Digest]
) -> Mapping[str, DeliveryOutcome] | Sequence[DeliveryOutcome] | None:
    """Deliver held notifications of one user as one message per digest (optional).

    A user's deliveries held by their preferences (a digest mode or quiet
    hours, :mod:`plugin_notifications.preferences`) are released together: one
    :class:`~plugin_notifications.delivery.Digest` per user and channel,
    carrying every delivery due. A channel that implements this sends one
    summary (one email); one that does not gets the deliveries one by one
    through ``notifications_deliver``. At least once, like deliveries: a
    digest may come again with the same :attr:`Digest.id`.

    :param channel: the channel's name.
    :param digests: the digests due now.
    :return: one :class:`~plugin_notifications.delivery.DeliveryOutcome` per
        digest (by digest id, or in order); it applies to every delivery in it.

    A mapping may also answer single deliveries of a digest by their
    :attr:`~plugin_notifications.delivery.Delivery.id` (for example
    ``skipped`` for one the channel does not reach the user with): that
    outcome replaces the digest's for them.

    Use in processors: optional, for durable ``recipient``-scope channels and
    ``send``-scope ones with ``holds_users``.
    """
