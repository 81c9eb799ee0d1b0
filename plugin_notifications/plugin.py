"""The ``notifications`` backend plugin and its ``notifications.processing`` extension point.

``init`` migrates the database, loads processors (from modules through the
extension point, then from the ``greenroom.notifications.processors``
entry points), serves ``/api/notifications``, schedules the retention task
and provides the sender through ``notifications_sender_ref``, which makes
``notification_service_ref`` usable in-process.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from host import (
    Config,
    Provided,
    Registrar,
    SignalsService,
    UserDirectory,
    core_services,
    create_backend_plugin,
    create_extension_point,
    signals_service_ref,
    user_directory_ref,
)
from plugin_notifications.actions import register_notification_actions
from plugin_notifications.background import BackgroundTasks
from plugin_notifications.cleaner import schedule_cleaner
from plugin_notifications.config_schema import NotificationsConfig
from plugin_notifications.dispatcher import OUTBOX_TOPIC, Dispatcher
from plugin_notifications.idempotency import IdempotencyKeys, IdempotencySettings
from plugin_notifications.limits import NotificationLimits
from plugin_notifications.openapi import build_openapi_document
from plugin_notifications.outbox import DeliveryConfig, OutboxPlanner
from plugin_notifications.outbox_store import OutboxStore
from plugin_notifications.preferences import PreferencesConfig, PreferencesService
from plugin_notifications.processing import ProcessorPipeline, ProcessorRegistry
from plugin_notifications.recipients import DirectoryRecipientResolver
from plugin_notifications.rich_text import configured_default
from plugin_notifications.routes import NotificationsApi
from plugin_notifications.sender import NotificationSender
from plugin_notifications.service import notifications_idempotency_ref, notifications_sender_ref
from plugin_notifications.settings import SETTINGS_CHANGED_TOPIC, SettingsService, read_default_settings
from plugin_notifications.store import FAN_OUT_BATCH, NotificationsStore
from plugin_notifications.web import mount_web_inbox

MIGRATIONS = Path(__file__).parent / "migrations"
DEFAULT_BASE_URL = "http://localhost:3000"

#: Modules of plugin ``notifications`` depend on this to add processors or a recipient resolver.
notifications_processing_extension_point = create_extension_point("notifications.processing")


def _register(reg: Registrar) -> None:
    registry = ProcessorRegistry()
    reg.register_extension_point(notifications_processing_extension_point, registry)

    async def init(
        config: Config,
        logger: Any,
        database: Any,
        router: Any,
        root_router: Any,
        http_auth: Any,
        scheduler: Any,
        lifecycle: Any,
        signals: SignalsService,
        directory: UserDirectory,
        provided_sender: Provided[NotificationSender],
        provided_idempotency: Provided[IdempotencyKeys],
        events: Any,
        actions: Any,
    ) -> None:
        await database.migrate(MIGRATIONS)
        engine = await database.get_engine()
        store = NotificationsStore(
            engine, fan_out_batch=int(config.get_optional_number("notifications.fanOutBatchSize") or FAN_OUT_BATCH)
        )
        idempotency = IdempotencyKeys(engine, IdempotencySettings.from_config(config), logger)
        trace_hooks = bool(config.get_optional_boolean("notifications.traceHooks"))
        if trace_hooks:
            registry.trace_hook_calls(logger)
        registry.set_default_recipient_resolver(DirectoryRecipientResolver(directory))
        loaded = registry.load_entry_points()
        if registry.processors:
            names = ", ".join(registry.channel_names())
            logger.info("Notification processors: %s (%s from entry points)", names, loaded)

        async def announce_settings_change(user: str) -> None:
            await events.publish(SETTINGS_CHANGED_TOPIC, {"user": user})

        settings = SettingsService(
            store, read_default_settings(config), registry.channel_names, announce=announce_settings_change
        )
        await events.subscribe("settings-cache", [SETTINGS_CHANGED_TOPIC], settings.on_settings_changed)
        tasks = BackgroundTasks(logger)
        limits = NotificationLimits.from_config(config)
        delivery_config = DeliveryConfig.from_config(config)
        clock = registry.clock
        outbox_store = OutboxStore(engine, clock.now)
        dispatcher = Dispatcher(outbox_store, registry, delivery_config, logger.child(task="dispatcher"), now=clock.now)
        subscribe = getattr(clock, "subscribe", None)
        if subscribe is not None:  # a test's manual clock: moving it starts a dispatcher round
            subscribe(dispatcher.wake)
        preferences = PreferencesService(
            engine, PreferencesConfig.from_config(config), registry.holding_channel_names, clock.now
        )
        await events.subscribe("notifications-dispatcher", [OUTBOX_TOPIC], dispatcher.on_outbox_event)

        def outbox_written() -> None:
            dispatcher.wake()  # this worker at once; the others through the events bus
            tasks.spawn(events.publish(OUTBOX_TOPIC, {}), name="notifications:outbox-wake")

        sender = NotificationSender(
            store=store,
            settings=settings,
            pipeline=ProcessorPipeline(registry, logger, trace=trace_hooks),
            resolver=registry,
            signals=signals,
            base_url=config.get_optional_string("app.baseUrl") or DEFAULT_BASE_URL,
            tasks=tasks,
            logger=logger,
            post_process_concurrency=int(config.get_optional_number("notifications.concurrencyLimit") or 10),
            limits=limits,
            outbox=OutboxPlanner(registry, delivery_config, logger),
            on_outbox=outbox_written,
            preferences=preferences,
            now=clock.now,
        )
        dispatcher.planner = sender.plan_later
        NotificationsApi(
            store=store,
            sender=sender,
            settings=settings,
            signals=signals,
            http_auth=http_auth,
            limits=limits,
            idempotency=idempotency,
            outbox=outbox_store,
            description_format=configured_default(config.get_optional_string("notifications.descriptionFormat")),
            preferences=preferences,
        ).register(router)
        register_notification_actions(
            actions, store=store, sender=sender, signals=signals, limits=limits, idempotency=idempotency
        )
        router.add_openapi(build_openapi_document())
        mount_web_inbox(root_router, config)  # the web inbox at /notifications
        await schedule_cleaner(config, scheduler, store, logger, idempotency, outbox_store)
        # in-flight post-processing (emails, ...) gets the host's shutdown timeout to finish
        shutdown_timeout = config.get_optional_duration("backend.lifecycle.shutdownTimeout")
        drain_seconds = shutdown_timeout.total_seconds() if shutdown_timeout else 30.0
        lifecycle.add_shutdown_hook(lambda: tasks.drain(drain_seconds))
        provided_idempotency.provide(idempotency)
        lifecycle.add_shutdown_hook(lambda: dispatcher.stop(drain_seconds))
        if delivery_config.enabled:
            lifecycle.add_startup_hook(dispatcher.start)
        elif registry.durable_channels():
            logger.info(
                "Delivery dispatcher off here (notifications.delivery.dispatcher: false): "
                "run `greenroom deliveries dispatch` to deliver %s",
                ", ".join(sorted(registry.durable_channels())),
            )
        provided_sender.provide(sender)

    reg.register_init(
        deps={
            "config": core_services.config,
            "logger": core_services.logger,
            "database": core_services.database,
            "router": core_services.http_router,
            "root_router": core_services.root_http_router,
            "http_auth": core_services.http_auth,
            "scheduler": core_services.scheduler,
            "lifecycle": core_services.lifecycle,
            "signals": signals_service_ref,
            "directory": user_directory_ref,
            "provided_sender": notifications_sender_ref,
            "provided_idempotency": notifications_idempotency_ref,
            "events": core_services.events,
            "actions": core_services.actions_registry,
        },
        init=init,
    )


#: The notifications backend plugin (``/api/notifications``).
notifications_plugin = create_backend_plugin(
    "notifications", _register, config_schema={"notifications": NotificationsConfig}
)
