"""The ``notification:send`` action (Backstage's scaffolder-backend-module-notifications).

Registered in the actions registry of plugin ``notifications``, so its id is
``notifications:notification:send`` and its name is the scaffolder action id
``notification:send`` that templates name in ``steps[].action``.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from host.errors import InputError

ACTION_NAME = "notification:send"


class NotificationSendInput(BaseModel):
    """The action's input (spec section 13)."""

    model_config = ConfigDict(populate_by_name=True)

    recipients: Literal["broadcast", "entity"] = Field(
        description="Recipient of the notification, either broadcast or entity. "
        "If using entity, also entityRefs must be provided",
    )
    entity_refs: list[str] | None = Field(
        default=None, alias="entityRefs", description="Entity references to send the notification to"
    )
    title: str = Field(description="Notification title")
    info: str | None = Field(default=None, description="Notification description")
    link: str | None = Field(default=None, description="Notification link")
    severity: Literal["low", "normal", "high", "critical"] | None = Field(
        default=None, description="Notification severity"
    )
    scope: str | None = Field(default=None, description="Notification scope")
    topic: str | None = Field(default=None, description="Notification topic")
    optional: bool | None = Field(default=None, description="Do not fail the step if sending the notification fails")


class NotificationSendOutput(BaseModel):
    """No outputs."""


def create_send_action(notifications: Any) -> Any:
    """The action function, sending through ``notifications`` (the notification service)."""

    async def send(input: NotificationSendInput, logger: Any) -> NotificationSendOutput:
        logger.info(f"Sending notification to {input.recipients}")
        if input.recipients == "entity" and input.entity_refs is None:
            if input.optional:
                return NotificationSendOutput()
            raise InputError("Entity references must be provided")
        recipients: dict[str, Any] = (
            {"type": "broadcast"} if input.recipients == "broadcast"
            else {"type": "entity", "entityRef": input.entity_refs}
        )
        payload = {
            "title": input.title,
            "description": input.info,
            "link": input.link,
            "severity": input.severity,
            "topic": input.topic,
            "scope": input.scope,
        }
        try:
            await notifications.send(
                recipients=recipients, payload={key: value for key, value in payload.items() if value is not None}
            )
        except Exception as error:
            logger.error(f"Failed to send notification: {error}")
            if not input.optional:
                raise
        return NotificationSendOutput()

    return send
