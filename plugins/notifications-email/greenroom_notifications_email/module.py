"""The backend module ``email`` of plugin ``notifications``.

It adds the :class:`~greenroom_notifications_email.processor.EmailProcessor`
through the ``notifications.processing`` extension point and offers the
``notifications.email.templates`` extension point to other modules. Without
``notifications.processors.email`` in the config it logs a warning and adds
nothing, so installing the package alone never breaks a host.
"""

from __future__ import annotations

from typing import Any

from greenroom_notifications_email.config_schema import EmailConfig
from greenroom_notifications_email.processor import EmailProcessor
from greenroom_notifications_email.settings import CONFIG_KEY, read_email_settings
from greenroom_notifications_email.templates import EmailTemplates, email_templates_extension_point
from host import core_services
from host.config import Config
from host.features import Registrar, create_backend_module
from plugin_catalog import catalog_service_ref
from plugin_notifications import ProcessorRegistry, notifications_processing_extension_point
from plugin_notifications.plugin import DEFAULT_BASE_URL


def _register(reg: Registrar) -> None:
    templates = EmailTemplates()
    reg.register_extension_point(email_templates_extension_point, templates)

    def init(processing: ProcessorRegistry, config: Config, logger: Any, catalog: Any) -> None:
        settings = read_email_settings(config)
        if settings is None:
            logger.warning(f"Email notifications are off: '{CONFIG_KEY}' is not configured")
            return
        processing.add_processor(
            EmailProcessor(
                settings,
                catalog=catalog,
                logger=logger.child(processor="Email"),
                base_url=config.get_optional_string("app.baseUrl") or DEFAULT_BASE_URL,
                templates=templates,
            )
        )

    reg.register_init(
        deps={
            "processing": notifications_processing_extension_point,
            "config": core_services.config,
            "logger": core_services.logger,
            "catalog": catalog_service_ref,
        },
        init=init,
    )


#: Backend module ``email`` of plugin ``notifications`` (entry point ``notifications-email``).
email_module = create_backend_module(
    "notifications", "email", _register, config_schema={"notifications.processors.email": EmailConfig}
)
