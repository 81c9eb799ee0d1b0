"""The ``notification:send`` action (Backstage's scaffolder-backend-module-notifications).

Registered in the actions registry of plugin ``notifications``, so its id is
``notifications:notification:send`` and its name is the scaffolder action id
``notification:send`` that templates name in ``steps[].action``.
"""

from __future__ import annotations

import hashlib
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from host import InputError

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
    idempotency_key: str | None = Field(
        default=None,
        alias="idempotencyKey",
        min_length=1,
        max_length=200,
        pattern=r"^[\x20-\x7e]+$",
        description="Send at most once per key and caller within notifications.idempotency.window "
        "(printable ASCII, e.g. the task id); a repeat with other inputs fails",
    )


class NotificationSendOutput(BaseModel):
    """No outputs."""


def scoped_key(credentials: Any, key: str) -> str:
    """The service's key for an invoker's key: prefixed with a hash of the invoker, so callers never share keys."""
    principal = credentials.principal
    invoker = getattr(principal, "subject", None) or getattr(principal, "user_entity_ref", None) or principal.type
    return f"{hashlib.sha256(str(invoker).encode()).hexdigest()[:16]}:{key}"


def create_send_action(notifications: Any) -> Any:
    """The action function, sending through ``notifications`` (the notification service)."""

    async def send(input: NotificationSendInput, credentials: Any, logger: Any) -> NotificationSendOutput:
        logger.info("Sending notification to %s", input.recipients)
        if input.recipients == "entity" and input.entity_refs is None:
            if input.optional:
                return NotificationSendOutput()
            raise InputError("Entity references must be provided")
        recipients: dict[str, Any] = (
            {"type": "broadcast"}
            if input.recipients == "broadcast"
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
            key = scoped_key(credentials, input.idempotency_key) if input.idempotency_key is not None else None
            await notifications.send(
                recipients=recipients,
                payload={name: value for name, value in payload.items() if value is not None},
                idempotency_key=key,
            )
        except Exception as error:
            logger.error("Failed to send notification: %s", error)
            if not input.optional:
                raise
        return NotificationSendOutput()

    return send
