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
from greenroom_notifications_email.settings import CONFIG_KEY, EmailSettings, SesSettings, read_email_settings
from greenroom_notifications_email.templates import EmailTemplates, email_templates_extension_point
from host import Config, Registrar, UserDirectory, core_services, create_backend_module, user_directory_ref
from plugin_notifications import ProcessorRegistry, notifications_processing_extension_point
from plugin_notifications.plugin import DEFAULT_BASE_URL


def _register(reg: Registrar) -> None:
    templates = EmailTemplates()
    reg.register_extension_point(email_templates_extension_point, templates)

    def init(
        processing: ProcessorRegistry, config: Config, logger: Any, catalog: UserDirectory, lifecycle: Any
    ) -> None:
        settings = read_email_settings(config)
        if settings is None:
            logger.warning("Email notifications are off: '%s' is not configured", CONFIG_KEY)
            return
        _warn_ignored(settings, logger)
        processor = EmailProcessor(
            settings,
            catalog=catalog,
            logger=logger.child(processor="Email"),
            base_url=config.get_optional_string("app.baseUrl") or DEFAULT_BASE_URL,
            templates=templates,
        )
        processing.add_processor(processor)
        lifecycle.add_shutdown_hook(processor.close)

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


def _warn_ignored(settings: EmailSettings, logger: Any) -> None:
    """Backstage keys Greenroom reads but does not act on (see docs/compat.md)."""
    transport = settings.transport
    if settings.ses_config_unused:
        logger.warning("'%s.sesConfig' only applies to transport 'ses'; ignored", CONFIG_KEY)
    if not isinstance(transport, SesSettings):
        return
    if transport.options.source_arn:
        logger.warning("sourceArn is not supported in SESv2 and will be ignored")
    if transport.account_id:
        logger.warning("'%s.transportConfig.accountId' is ignored: credentials come from the AWS chain", CONFIG_KEY)
    if transport.api_version:
        logger.warning("'%s.transportConfig.apiVersion' is ignored: Greenroom uses the SES v2 API", CONFIG_KEY)


#: Backend module ``email`` of plugin ``notifications`` (entry point ``notifications-email``).
email_module = create_backend_module(
    "notifications", "email", _register, config_schema={"notifications.processors.email": EmailConfig}
)
