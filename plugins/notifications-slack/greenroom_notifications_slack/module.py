"""The backend module ``slack`` of plugin ``notifications``.

It validates ``notifications.processors.slack`` (the pydantic
:class:`~greenroom_notifications_slack.settings.SlackConfig`, also declared
as the module's ``config_schema``), applies its own Alembic history to the
notifications plugin's database (table ``slack_messages``, version table
``notifications_slack_alembic_version``), schedules the daily clean-up of
old message timestamps, and adds the
:class:`~greenroom_notifications_slack.processor.SlackProcessor` through the
``notifications.processing`` extension point. It offers the
``notifications.slack.blockkit`` extension point to other modules. Without
the section, or with an empty list, it logs a warning and adds nothing, so
installing the package alone never breaks a host.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from greenroom_notifications_slack.render import SlackRenderers, slack_block_kit_extension_point
from greenroom_notifications_slack.settings import CONFIG_KEY, SlackConfig, read_slack_config
from greenroom_notifications_slack.store import MIGRATIONS, VERSION_TABLE, SlackMessageStore
from host import Config, Registrar, UserDirectory, core_services, create_backend_module, user_directory_ref
from plugin_notifications import ProcessorRegistry, notifications_processing_extension_point
from plugin_notifications.outbox import DeliveryConfig
from plugin_notifications.plugin import DEFAULT_BASE_URL
from plugin_notifications.rich_text import configured_default

#: The scheduled task that deletes old ``slack_messages`` rows.
CLEANUP_TASK = "notifications-slack-messages-cleanup"


def _register(reg: Registrar) -> None:
    renderers = SlackRenderers()
    reg.register_extension_point(slack_block_kit_extension_point, renderers)

    async def init(
        processing: ProcessorRegistry,
        config: Config,
        logger: Any,
        catalog: UserDirectory,
        lifecycle: Any,
        database: Any,
        scheduler: Any,
    ) -> None:
        settings = read_slack_config(config)
        if settings is None or not settings.root:
            logger.warning("Slack notifications are off: no workspace configured", key=CONFIG_KEY)
            return
        # slack_sdk and aiohttp are imported only when a workspace is configured
        from greenroom_notifications_slack.processor import SlackProcessor

        await database.migrate(MIGRATIONS, version_table=VERSION_TABLE)
        store = SlackMessageStore(await database.get_engine())
        processor = SlackProcessor(
            settings,
            catalog=catalog,
            store=store,
            renderers=renderers,
            base_url=config.get_optional_string("app.baseUrl") or DEFAULT_BASE_URL,
            description_default=configured_default(config.get_optional_string("notifications.descriptionFormat")),
            lease_seconds=DeliveryConfig.from_config(config).lease_seconds,
            logger=logger.child(processor="Slack"),
        )
        processing.add_processor(processor)
        lifecycle.add_shutdown_hook(processor.close)

        async def clean() -> None:
            deleted = 0
            for channel, workspace in settings.workspaces():
                deleted += await store.purge(channel, workspace.message_retention)
            logger.info("Cleaned up old Slack message timestamps", deleted=deleted)

        await scheduler.schedule_task(
            id=CLEANUP_TASK,
            frequency=timedelta(hours=24),
            timeout=timedelta(minutes=5),
            initial_delay=timedelta(hours=2),
            fn=clean,
        )
        logger.info("Slack notifications are on", workspaces=",".join(processor.workspaces))

    reg.register_init(
        deps={
            "processing": notifications_processing_extension_point,
            "config": core_services.config,
            "logger": core_services.logger,
            "catalog": user_directory_ref,
            "lifecycle": core_services.lifecycle,
            "database": core_services.database,
            "scheduler": core_services.scheduler,
        },
        init=init,
    )


#: Backend module ``slack`` of plugin ``notifications`` (entry point ``notifications-slack``).
slack_module = create_backend_module("notifications", "slack", _register, config_schema={CONFIG_KEY: SlackConfig})
