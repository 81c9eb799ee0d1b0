"""The backend module ``webhook`` of plugin ``notifications``.

It validates ``notifications.processors.webhook`` (the pydantic
:class:`~greenroom_notifications_webhook.settings.WebhookConfig`, also
declared as the module's ``config_schema``) and adds the
:class:`~greenroom_notifications_webhook.processor.WebhookProcessor` through
the ``notifications.processing`` extension point. Without the section, or
with no endpoints, it logs a warning and adds nothing, so installing the
package alone never breaks a host.
"""

from __future__ import annotations

from typing import Any

from greenroom_notifications_webhook.processor import WebhookProcessor
from greenroom_notifications_webhook.settings import CONFIG_KEY, WebhookConfig, read_webhook_config
from host import Config, Registrar, UserDirectory, core_services, create_backend_module, user_directory_ref
from plugin_notifications import ProcessorRegistry, notifications_processing_extension_point
from plugin_notifications.http_channels import warn_if_batches_outlast_lease


def _register(reg: Registrar) -> None:
    def init(
        processing: ProcessorRegistry, config: Config, logger: Any, catalog: UserDirectory, lifecycle: Any
    ) -> None:
        settings = read_webhook_config(config)
        if settings is None or not settings.endpoints:
            logger.warning("Webhook notifications are off: no endpoints configured", key=f"{CONFIG_KEY}.endpoints")
            return
        warn_if_batches_outlast_lease(settings, config, logger)
        processor = WebhookProcessor(settings, catalog=catalog)
        processing.add_processor(processor)
        lifecycle.add_shutdown_hook(processor.close)
        logger.info("Webhook notifications are on", endpoints=len(settings.endpoints))

    reg.register_init(
        deps={
            "processing": notifications_processing_extension_point,
            "config": core_services.config,
            "logger": core_services.logger,
            "catalog": user_directory_ref,
            "lifecycle": core_services.lifecycle,
        },
        init=init,
    )


#: Backend module ``webhook`` of plugin ``notifications`` (entry point ``notifications-webhook``).
webhook_module = create_backend_module("notifications", "webhook", _register, config_schema={CONFIG_KEY: WebhookConfig})
