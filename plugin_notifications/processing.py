"""Processors: registration (extension point and entry points) and running their hooks.

See :mod:`plugin_notifications.hookspecs` for the hooks. The
:class:`ProcessorRegistry` is what modules receive for the extension point
``notifications.processing``; :class:`ProcessorPipeline` runs the hooks of
the eligible processors in pluggy's call order, logging and skipping any
that fail.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol, cast

import pluggy
from pydantic import BaseModel, ConfigDict, Field, field_validator

from host import await_me_maybe, register_checked
from plugin_notifications import hookspecs
from plugin_notifications.clock import Clock, SystemClock
from plugin_notifications.delivery import DeliveryChannel
from plugin_notifications.models import (
    SEVERITIES,
    Notification,
    NotificationPayload,
    NotificationSendOptions,
    normalize_severity,
)

#: Every hook, derived from the specs (a new hookspec needs no second list).
HOOKS: tuple[str, ...] = tuple(
    sorted(
        name
        for name, value in vars(hookspecs).items()
        if inspect.isfunction(value) and hasattr(value, f"{hookspecs.PROJECT_NAME}_spec")
    )
)
RESOLVE_HOOK = "notifications_resolve_recipients"
NAME_HOOK = "notifications_processor_name"
CHANNELS_HOOK = "notifications_delivery_channels"
DELIVER_HOOK = "notifications_deliver"
DIGEST_HOOK = "notifications_deliver_digest"
#: The hooks a processor implements (everything but the recipient-resolver slot).
PROCESSOR_HOOKS: tuple[str, ...] = tuple(hook for hook in HOOKS if hook != RESOLVE_HOOK)


class ProcessorFilters(BaseModel):
    """Which notifications a processor handles (Backstage ``NotificationProcessorFilters``)."""

    model_config = ConfigDict(populate_by_name=True, frozen=True)

    min_severity: str | None = Field(default=None, alias="minSeverity")
    max_severity: str | None = Field(default=None, alias="maxSeverity")
    excluded_topics: tuple[str, ...] = Field(default=(), alias="excludedTopics")
    #: ``None``: every topic; a list: only these topics (a notification without a topic never matches).
    included_topics: tuple[str, ...] | None = Field(default=None, alias="includedTopics")

    @field_validator("min_severity", "max_severity")
    @classmethod
    def _known_severity(cls, value: str | None, info: Any) -> str | None:
        if value is not None and value.lower() not in SEVERITIES:
            label = "minSeverity" if info.field_name == "min_severity" else "maxSeverity"
            raise ValueError(f"Invalid {label}")
        return value.lower() if value else None

    def accepts(self, severity: Any, topic: Any) -> bool:
        """Whether a notification of ``severity`` and ``topic`` passes these filters."""
        rank = SEVERITIES.index(normalize_severity(severity))
        if self.min_severity and rank > SEVERITIES.index(self.min_severity):
            return False
        if self.max_severity and rank < SEVERITIES.index(self.max_severity):
            return False
        if topic is not None and topic in self.excluded_topics:
            return False
        return self.included_topics is None or (topic is not None and topic in self.included_topics)


class RecipientResolver(Protocol):
    """Replaces the catalog-backed resolution of ``entity`` recipients.

    Return user entity refs; anything that is not a ``user`` ref is dropped.
    May be sync or async.
    """

    def resolve_notification_recipients(
        self, *, entity_refs: list[str], excluded_entity_refs: list[str]
    ) -> Any:  # pragma: no cover - protocol
        """Return the user refs to notify for ``entity_refs`` minus ``excluded_entity_refs``."""


#: The event loop of the pipeline call running a hook in a worker thread (see :func:`_run_on_loop`).
_LOOP: contextvars.ContextVar[asyncio.AbstractEventLoop] = contextvars.ContextVar("notifications_hook_loop")


def _run_on_loop(function: Callable[..., Any]) -> Callable[..., Any]:
    """Let pluggy call an ``async`` hook implementation from a worker thread and get its value.

    Inside a wrapped call (the pipeline runs pluggy in a worker thread and sets :data:`_LOOP`)
    the coroutine runs on the event loop and the thread waits for its result, so wrappers see
    the value, not a coroutine. Called anywhere else it returns the coroutine, as before.
    """

    @functools.wraps(function)
    def call(*args: Any) -> Any:
        loop = _LOOP.get(None)
        if loop is None:
            return function(*args)
        return asyncio.run_coroutine_threadsafe(function(*args), loop).result()

    return call


class Processor:
    """One registered processor: its name and its hook implementations."""

    def __init__(self, plugin: object, impls: Mapping[str, pluggy.HookImpl], wrappers: Iterable[str] = ()) -> None:
        self.plugin = plugin
        self._impls = dict(impls)
        #: The hooks this processor wraps (``@hookimpl(wrapper=True)``) rather than implements.
        self.wrapped_hooks = frozenset(wrappers)
        #: Each implementation as written (``async`` ones return coroutines).
        self._functions = {hook: impl.function for hook, impl in self._impls.items()}
        self._async = frozenset(
            hook for hook, function in self._functions.items() if inspect.iscoroutinefunction(function)
        )
        name_impl = self._impls.get(NAME_HOOK)
        if name_impl is None:
            raise TypeError(f"Notification processor {plugin!r} does not implement notifications_processor_name")
        name = name_impl.function()
        if not isinstance(name, str) or not name:
            raise TypeError(f"Notification processor {plugin!r} returned an invalid name {name!r}")
        self.name = name
        self.delivery_channels = self._read_channels()

    def _read_channels(self) -> tuple[DeliveryChannel, ...]:
        """The durable channels the processor declares (``notifications_delivery_channels``), once."""
        impl = self._impls.get(CHANNELS_HOOK)
        if impl is None:
            return ()
        if DELIVER_HOOK not in self._impls:
            raise TypeError(f"Notification processor {self.name} declares delivery channels without {DELIVER_HOOK}")
        raw = impl.function()
        items = (
            [] if raw is None else [raw] if isinstance(raw, (str, DeliveryChannel)) else list(cast(Iterable[Any], raw))
        )
        channels = tuple(DeliveryChannel(item) if isinstance(item, str) else item for item in items)
        for channel in channels:
            if not isinstance(channel, DeliveryChannel):
                raise TypeError(f"Notification processor {self.name} declared an invalid channel {channel!r}")
        return channels

    def implements(self, hook: str) -> bool:
        """Whether this processor implements ``hook``."""
        return hook in self._impls

    def is_async(self, hook: str) -> bool:
        """Whether this processor's ``hook`` is an ``async`` function."""
        return hook in self._async

    async def call(self, hook: str, **kwargs: Any) -> Any:
        """Call this processor's ``hook`` with the arguments it asks for; await if async."""
        impl = self._impls[hook]
        return await await_me_maybe(self._functions[hook](*(kwargs[name] for name in impl.argnames)))

    def bridge_async_impls(self) -> None:
        """Make pluggy's calls of the ``async`` implementations usable inside wrapped calls."""
        for hook in self._async:
            # pluggy keeps the function on the HookImpl (typed Final, assignable at runtime); the
            # argnames, order and markers it computed at registration stay as they are.
            self._impls[hook].function = _run_on_loop(self._functions[hook])  # type: ignore[misc]

    def filters(self) -> ProcessorFilters:
        """This processor's filters (none when the hook is not implemented)."""
        impl = self._impls.get("notifications_processor_filters")
        raw = impl.function() if impl else None
        if raw is None:
            return ProcessorFilters()
        return raw if isinstance(raw, ProcessorFilters) else ProcessorFilters.model_validate(raw)

    def __repr__(self) -> str:
        return f"Processor({self.name})"


class _ResolverPlugin:
    """Adapts a :class:`RecipientResolver` object to the ``notifications_resolve_recipients`` hook."""

    def __init__(self, resolver: RecipientResolver, **marker: bool) -> None:
        self.resolver = resolver
        self.__name__ = f"recipient-resolver-{id(resolver)}"

        def notifications_resolve_recipients(entity_refs: list[str], excluded_entity_refs: list[str]) -> Any:
            return resolver.resolve_notification_recipients(
                entity_refs=entity_refs, excluded_entity_refs=excluded_entity_refs
            )

        self.notifications_resolve_recipients = hookspecs.hookimpl(
            notifications_resolve_recipients,
            tryfirst=marker.get("tryfirst", False),
            trylast=marker.get("trylast", False),
        )


class ProcessorRegistry:
    """The ``notifications.processing`` extension point, and the list of processors.

    Modules call :meth:`add_processor` and
    :meth:`set_notification_recipient_resolver` during their ``init``; the
    plugin then adds the processors found through entry points. The registry
    is also the recipient resolver the sender uses: it calls the
    ``notifications_resolve_recipients`` hook through pluggy.
    """

    def __init__(self) -> None:
        self.plugin_manager = pluggy.PluginManager(hookspecs.PROJECT_NAME)
        self.plugin_manager.add_hookspecs(hookspecs)
        self.processors: list[Processor] = []
        self._resolver_set = False
        self._subset_callers: dict[tuple[str, int], Callable[..., list[Any]]] = {}
        #: What "now" is for sends, holds and the dispatcher (:mod:`plugin_notifications.clock`).
        self.clock: Clock = SystemClock()

    def set_clock(self, clock: Clock) -> None:
        """Replace the plugin's clock (tests: a :class:`~plugin_notifications.clock.ManualClock`).

        Call it from a module's ``init``; a clock with ``subscribe(listener)`` wakes the
        dispatcher whenever it moves.
        """
        self.clock = clock

    def holding_channel_names(self) -> list[str]:
        """Processor names with a durable channel that holds users' deliveries: the channels preferences apply to.

        ``recipient``-scope channels, and ``send``-scope ones with :attr:`DeliveryChannel.holds_users`.
        """
        names: list[str] = []
        for processor, channel in self.durable_channels().values():
            if channel.holds and processor.name not in names:
                names.append(processor.name)
        return names

    def add_processor(self, *processors: Any) -> None:
        """Register processors: modules or objects with ``@hookimpl`` hooks, or lists of them."""
        for plugin in _flatten(processors):
            if not _has_hookimpls(plugin):
                raise TypeError(
                    f"{plugin!r} is not a notification processor: it implements none of the hooks "
                    f"{', '.join(PROCESSOR_HOOKS)} with @plugin_notifications.hookimpl"
                )
            self._register(plugin)
            self._track(plugin)

    def set_notification_recipient_resolver(self, resolver: RecipientResolver) -> None:
        """Replace the catalog-backed recipient resolution (only one resolver may be set this way).

        ``resolver`` has ``resolve_notification_recipients(*, entity_refs, excluded_entity_refs)``;
        it becomes an implementation of the ``notifications_resolve_recipients`` hook.
        """
        if self._resolver_set:
            raise RuntimeError("A notification recipient resolver is already set")
        self._resolver_set = True
        self._register(_ResolverPlugin(resolver))

    def set_default_recipient_resolver(self, resolver: RecipientResolver) -> None:
        """Install the resolver used when no other implementation answers (``trylast``)."""
        self._register(_ResolverPlugin(resolver, trylast=True))

    def trace_hook_calls(self, logger: Any) -> None:
        """Log every hook call pluggy makes (``notifications.traceHooks: true``)."""
        self.plugin_manager.trace.root.setwriter(lambda message: logger.info("pluggy: %s", " ".join(message.split())))
        self.plugin_manager.enable_tracing()

    def resolve_notification_recipients(self, *, entity_refs: list[str], excluded_entity_refs: list[str]) -> Any:
        """Call ``notifications_resolve_recipients`` through pluggy (the first result wins)."""
        return self.plugin_manager.hook.notifications_resolve_recipients(
            entity_refs=entity_refs, excluded_entity_refs=excluded_entity_refs
        )

    def load_entry_points(self, group: str = hookspecs.ENTRY_POINT_GROUP) -> int:
        """Register every processor of the entry-point ``group``; return how many were loaded."""
        count = self.plugin_manager.load_setuptools_entrypoints(group)
        self.plugin_manager.check_pending()
        for plugin, dist in self.plugin_manager.list_plugin_distinfo():
            if not _has_hookimpls(plugin, HOOKS):
                self.plugin_manager.unregister(plugin)
                raise TypeError(
                    f"Entry point of {dist.project_name} in {group} is not a notification processor: "
                    f"{plugin!r} implements none of the hooks with @plugin_notifications.hookimpl"
                )
            if _has_hookimpls(plugin):
                self._track(plugin)
        return count

    def channel_names(self) -> list[str]:
        """Every processor name: the settings channels besides ``Web``."""
        return [processor.name for processor in self.processors]

    def durable_channels(self) -> dict[str, tuple[Processor, DeliveryChannel]]:
        """Every durable channel by name, with the processor delivering it."""
        found: dict[str, tuple[Processor, DeliveryChannel]] = {}
        for processor in self.processors:
            for channel in processor.delivery_channels:
                found[channel.name] = (processor, channel)
        return found

    def call_order(self, hook: str) -> list[Processor]:
        """The processors implementing ``hook``, in pluggy's call order (``tryfirst``/``trylast``)."""
        by_plugin = {id(processor.plugin): processor for processor in self.processors}
        impls = getattr(self.plugin_manager.hook, hook).get_hookimpls()
        return [
            by_plugin[id(impl.plugin)]
            for impl in reversed(impls)
            if id(impl.plugin) in by_plugin and not _is_wrapper(impl)
        ]

    def is_wrapped(self, hook: str) -> bool:
        """Whether any registered plugin wraps ``hook`` (``@hookimpl(wrapper=True)``)."""
        return any(_is_wrapper(impl) for impl in getattr(self.plugin_manager.hook, hook).get_hookimpls())

    def hook_caller(self, processor: Processor, hook: str) -> Callable[..., list[Any]]:
        """pluggy's caller of ``hook`` for ``processor`` alone, inside every wrapper of ``hook``."""
        key = (hook, id(processor))
        caller = self._subset_callers.get(key)
        if caller is None:
            keep = {id(processor.plugin)} | {
                id(impl.plugin) for impl in getattr(self.plugin_manager.hook, hook).get_hookimpls() if _is_wrapper(impl)
            }
            others = [plugin for plugin in self.plugin_manager.get_plugins() if id(plugin) not in keep]
            caller = self.plugin_manager.subset_hook_caller(hook, remove_plugins=others)
            self._subset_callers[key] = caller
        return caller

    def _register(self, plugin: object) -> None:
        if self.plugin_manager.is_registered(plugin):
            return
        self._subset_callers.clear()
        register_checked(self.plugin_manager, plugin)

    def _track(self, plugin: object) -> None:
        if any(processor.plugin is plugin for processor in self.processors):
            return
        impls = {}
        wrappers = []
        for hook in PROCESSOR_HOOKS:
            for impl in getattr(self.plugin_manager.hook, hook).get_hookimpls():
                if impl.plugin is plugin:
                    if _is_wrapper(impl):
                        wrappers.append(hook)
                    else:
                        impls[hook] = impl
        try:
            processor = Processor(plugin, impls, wrappers)
            taken = self.durable_channels()
            for channel in processor.delivery_channels:
                if channel.name in taken:
                    owner = taken[channel.name][0].name
                    raise TypeError(
                        f"Delivery channel {channel.name} of {processor.name} is already declared by {owner}"
                    )
        except (TypeError, ValueError):
            self.plugin_manager.unregister(plugin)
            raise
        processor.bridge_async_impls()
        self._subset_callers.clear()
        self.processors.append(processor)


def _flatten(items: Iterable[Any]) -> Iterable[Any]:
    for item in items:
        if isinstance(item, (list, tuple)):
            yield from _flatten(item)
        else:
            yield item


def _is_wrapper(impl: pluggy.HookImpl) -> bool:
    return bool(impl.wrapper or impl.hookwrapper)


def _has_hookimpls(item: Any, hooks: Iterable[str] = PROCESSOR_HOOKS) -> bool:
    marker = f"{hookspecs.PROJECT_NAME}_impl"
    return any(hasattr(getattr(item, hook, None), marker) for hook in hooks)


#: Decides whether a processor may handle a notification for its user (settings).
ChannelCheck = Callable[[Processor, Notification], bool]


class ProcessorPipeline:
    """Runs processor hooks: sequentially, in pluggy's call order, chaining results, never raising."""

    def __init__(self, registry: ProcessorRegistry, logger: Any, *, trace: bool = False) -> None:
        self._registry = registry
        self._logger = logger
        self._trace = trace

    @property
    def active(self) -> bool:
        """Whether any processor is registered."""
        return bool(self._registry.processors)

    def runs(self, hook: str, payload: NotificationPayload) -> bool:
        """Whether any processor implements ``hook`` and accepts ``payload``'s severity and topic.

        Every user of one send shares the payload's severity and topic, so a send asks
        once and skips the per-user loop of a hook nobody implements (durable-only
        processors such as the email and webhook modules implement neither
        ``pre_process`` nor ``post_process``).
        """
        return bool(self._eligible(hook, payload.severity, payload.topic))

    def _eligible(self, hook: str, severity: Any, topic: Any) -> list[Processor]:
        eligible = []
        for processor in self._registry.call_order(hook):
            try:
                accepted = processor.filters().accepts(severity, topic)
            except Exception as error:  # noqa: BLE001 - a broken filter must not stop the send
                self._log_failure(processor, hook, error)
                continue
            if accepted:
                eligible.append(processor)
        return eligible

    async def process_options(self, options: dict[str, Any]) -> dict[str, Any]:
        """Run ``notifications_process_options`` of every eligible processor over the raw body."""
        hook = "notifications_process_options"
        raw_payload = options.get("payload")
        payload: dict[str, Any] = raw_payload if isinstance(raw_payload, dict) else {}
        for processor in self._eligible(hook, payload.get("severity"), payload.get("topic")):
            ok, result = await self._call(processor, hook, options=options)
            if ok and isinstance(result, dict):
                options = result
        return options

    async def pre_process(
        self, notification: Notification, options: NotificationSendOptions, allowed: ChannelCheck
    ) -> Notification:
        """Run ``notifications_pre_process`` of the processors eligible for this notification."""
        hook = "notifications_pre_process"
        for processor in self._for(hook, notification, allowed):
            # A copy, so that a processor failing half-way leaves the last good value intact.
            candidate = notification.model_copy(deep=True)
            ok, result = await self._call(processor, hook, notification=candidate, options=options)
            if ok:
                notification = result if isinstance(result, Notification) else candidate
        return notification

    async def post_process(
        self, notification: Notification, options: NotificationSendOptions, allowed: ChannelCheck
    ) -> None:
        """Run ``notifications_post_process`` of the processors eligible for this notification."""
        hook = "notifications_post_process"
        for processor in self._for(hook, notification, allowed):
            await self._call(processor, hook, notification=notification, options=options)

    async def _call(self, processor: Processor, hook: str, **kwargs: Any) -> tuple[bool, Any]:
        """Call one hook; a failure is logged and reported as ``(False, None)``."""
        started = time.monotonic()
        try:
            if self._registry.is_wrapped(hook):
                result = await self._call_wrapped(processor, hook, kwargs)
            else:
                result = await processor.call(hook, **kwargs)
        except Exception as error:  # noqa: BLE001 - a failing processor is logged and skipped, never loses the send
            self._log_failure(processor, hook, error)
            return False, None
        if self._trace:
            self._logger.info(
                "hook %s of %s returned %s",
                hook,
                processor.name,
                type(result).__name__,
                hook=hook,
                processor=processor.name,
                ms=round((time.monotonic() - started) * 1000, 2),
            )
        return True, result

    async def _call_wrapped(self, processor: Processor, hook: str, kwargs: dict[str, Any]) -> Any:
        """Call ``processor``'s ``hook`` through pluggy, inside the hook's wrappers.

        An ``async`` implementation makes pluggy run in a worker thread while the coroutine
        runs on this loop, so the wrappers see (and may replace) its value.
        """
        caller = self._registry.hook_caller(processor, hook)
        if processor.is_async(hook):
            token = _LOOP.set(asyncio.get_running_loop())
            try:
                results = await asyncio.to_thread(caller, **kwargs)  # the thread inherits _LOOP
            finally:
                _LOOP.reset(token)
        else:
            results = caller(**kwargs)
        return results[0] if results else None

    def _for(self, hook: str, notification: Notification, allowed: ChannelCheck) -> list[Processor]:
        payload = notification.payload
        return [
            processor
            for processor in self._eligible(hook, payload.severity, payload.topic)
            if notification.user is None or allowed(processor, notification)
        ]

    def _log_failure(self, processor: Processor, hook: str, error: BaseException) -> None:
        self._logger.error(
            "Error while processing notification with %s: %s failed", processor.name, hook, exc_info=error
        )
