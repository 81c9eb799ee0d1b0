"""The backend module ``msteams`` of plugin ``notifications``.

It validates ``notifications.processors.msteams`` (the pydantic
:class:`~greenroom_notifications_msteams.settings.MSTeamsConfig`, also the
module's ``config_schema``), offers the ``notifications.msteams.cards``
extension point to other modules and adds the
:class:`~greenroom_notifications_msteams.processor.MSTeamsProcessor` through
the ``notifications.processing`` extension point. Without the section, or
with no routes and annotations off, it logs a warning and adds nothing, so
installing the package alone never breaks a host.
"""

from __future__ import annotations

from typing import Any

from greenroom_notifications_msteams.processor import MSTeamsProcessor
from greenroom_notifications_msteams.renderers import CardRenderers, msteams_cards_extension_point
from greenroom_notifications_msteams.settings import CONFIG_KEY, MSTeamsConfig, read_msteams_config
from host import Config, Registrar, core_services, create_backend_module
from plugin_catalog import catalog_service_ref
from plugin_notifications import ProcessorRegistry, notifications_processing_extension_point
from plugin_notifications.http_channels import warn_if_batches_outlast_lease
from plugin_notifications.plugin import DEFAULT_BASE_URL
from plugin_notifications.rich_text import configured_default


def _register(reg: Registrar) -> None:
    renderers = CardRenderers()
    reg.register_extension_point(msteams_cards_extension_point, renderers)

    def init(processing: ProcessorRegistry, config: Config, logger: Any, catalog: Any, lifecycle: Any) -> None:
        settings = read_msteams_config(config)
        if settings is None or not (settings.routes or settings.annotations.enabled):
            logger.warning("Microsoft Teams notifications are off: no routes and no annotations", key=CONFIG_KEY)
            return
        warn_if_batches_outlast_lease(settings, config, logger)
        processor = MSTeamsProcessor(
            settings,
            catalog=catalog,
            base_url=config.get_optional_string("app.baseUrl") or DEFAULT_BASE_URL,
            description_format=configured_default(config.get_optional_string("notifications.descriptionFormat")),
            renderers=renderers,
        )
        processing.add_processor(processor)
        lifecycle.add_shutdown_hook(processor.close)
        logger.info(
            "Microsoft Teams notifications are on",
            routes=len(settings.routes),
            annotations=settings.annotations.enabled,
        )

    reg.register_init(
        deps={
            "processing": notifications_processing_extension_point,
            "config": core_services.config,
            "logger": core_services.logger,
            "catalog": catalog_service_ref,
            "lifecycle": core_services.lifecycle,
        },
        init=init,
    )


#: Backend module ``msteams`` of plugin ``notifications`` (entry point ``notifications-msteams``).
msteams_module = create_backend_module("notifications", "msteams", _register, config_schema={CONFIG_KEY: MSTeamsConfig})
