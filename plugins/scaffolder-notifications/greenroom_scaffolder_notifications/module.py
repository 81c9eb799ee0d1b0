"""Backend module ``scaffolder`` of plugin ``notifications``: registers ``notification:send``."""

from __future__ import annotations

from typing import Any

from greenroom_scaffolder_notifications.action import (
    ACTION_NAME,
    NotificationSendInput,
    NotificationSendOutput,
    create_send_action,
)
from host import Registrar, core_services, create_backend_module
from plugin_notifications import notification_service_ref


def _register(reg: Registrar) -> None:
    def init(actions: Any, notifications: Any) -> None:
        actions.register(
            name=ACTION_NAME,
            title="Send notification",
            description="Sends a notification using NotificationService",
            input_model=NotificationSendInput,
            output_model=NotificationSendOutput,
            action=create_send_action(notifications),
            # Sending reaches any user, group or everyone, as the notifications plugin: services only,
            # like the POST /api/notifications route it mirrors.
            allow=("service",),
            attributes={"destructive": False, "idempotent": False, "readOnly": False},
        )

    reg.register_init(
        deps={"actions": core_services.actions_registry, "notifications": notification_service_ref},
        init=init,
    )


#: Backend module ``scaffolder`` of plugin ``notifications`` (entry point ``scaffolder-notifications``).
scaffolder_notifications_module = create_backend_module("notifications", "scaffolder", _register)
