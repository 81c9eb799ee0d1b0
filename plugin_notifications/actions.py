"""The notifications plugin's actions (``/api/notifications/.backstage/actions/v1/actions``, and over MCP).

* ``get-notifications`` - the caller's own notifications (user principals; read-only), with
  Backstage's input schema (``view``, ``search``, ``topic``, ``minimumSeverity``,
  ``createdAfter``, ``offset``, ``limit``);
* ``mark-notifications-read`` - mark the caller's notifications read or unread (user principals);
* ``send-notification`` - ``POST /api/notifications`` as an action (service principals only):
  the same validation, limits and origin (the caller's subject), and the same
  ``Idempotency-Key`` semantics through ``idempotencyKey``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field

from plugin_notifications.idempotency import IdempotencyKeys
from plugin_notifications.limits import NotificationLimits
from plugin_notifications.models import notifications_to_wire
from plugin_notifications.sender import NotificationSender
from plugin_notifications.store import NotificationFilters, NotificationQuery, NotificationsStore
from plugin_notifications.updates import update_states

_GET_DESCRIPTION = """
Fetches notifications for the currently authenticated user from the Backstage notifications system.

Each notification has an `id`, `origin` (the plugin or service that sent it), a `payload` with
`title`, optional `description`, optional `link`, `severity` (one of "critical", "high", "normal", "low"),
and optional `topic`. Notifications also carry `created` and optionally `read`, `saved`, and `updated` timestamps.

Use `view` to choose "unread" (default), "read", "saved" or "all"; combine it with `search`, `topic`,
`minimumSeverity` (this severity and anything more severe) and `createdAfter` (ISO 8601).
Use `offset` and `limit` to paginate; the response includes `totalCount`.
"""


class GetNotificationsInput(BaseModel):
    """Input of ``get-notifications`` (Backstage's schema)."""

    model_config = ConfigDict(extra="forbid")

    view: Literal["unread", "read", "saved", "all"] = Field(
        default="unread", description='Which notifications to return. Defaults to "unread".'
    )
    search: str | None = Field(
        default=None, description="Free-text search string to filter notifications by title or description."
    )
    topic: str | None = Field(
        default=None, description='Filter to notifications with this specific topic, e.g. "ci/cd".'
    )
    minimum_severity: Literal["critical", "high", "normal", "low"] | None = Field(
        default=None, alias="minimumSeverity", description="Minimum severity to include."
    )
    created_after: datetime | None = Field(
        default=None,
        alias="createdAfter",
        description='ISO 8601 datetime string. Only return notifications created after this time, e.g. "2025-01-01T00:00:00Z".',
    )
    offset: int = Field(default=0, ge=0, description="Number of notifications to skip for pagination. Defaults to 0.")
    limit: int = Field(
        default=10, ge=1, le=100, description="Maximum number of notifications to return (1-100). Defaults to 10."
    )


class GetNotificationsOutput(BaseModel):
    """Output of ``get-notifications``."""

    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)

    notifications: list[dict[str, Any]] = Field(description="List of notifications matching the filters.")
    total_count: int = Field(
        alias="totalCount", description="Total number of notifications matching the filters, useful for pagination."
    )


class MarkNotificationsReadInput(BaseModel):
    """Input of ``mark-notifications-read``."""

    model_config = ConfigDict(extra="forbid")

    ids: list[str] = Field(min_length=1, description="Ids of the caller's notifications to mark.")
    read: bool = Field(default=True, description="true marks them read (default), false marks them unread.")


class NotificationsOutput(BaseModel):
    """The notifications an action changed or created, in the REST API's wire form."""

    notifications: list[dict[str, Any]] = Field(description="The notifications, as the REST API answers them.")


class SendNotificationInput(BaseModel):
    """Input of ``send-notification``: the body of ``POST /api/notifications`` plus an optional key."""

    model_config = ConfigDict(extra="forbid")

    recipients: dict[str, Any] = Field(
        description=(
            'Who receives it: {"type": "broadcast"} or {"type": "entity", "entityRef": "user:default/jane" or a list, '
            '"excludeEntityRef": optional}.'
        )
    )
    payload: dict[str, Any] = Field(
        description=(
            "The notification: title (required), description, link, severity (critical, high, normal, low), "
            "topic, scope, icon, metadata."
        )
    )
    idempotency_key: str | None = Field(
        default=None,
        alias="idempotencyKey",
        description=(
            "Send at most once per key and caller within notifications.idempotency.window (as the Idempotency-Key "
            "header); a repeat with the same body answers the first result, with another body fails."
        ),
    )


def _utc(moment: datetime) -> datetime:
    """``moment`` in UTC (a time without a zone is taken as UTC, as the REST API's ``createdAfter``)."""
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)


def register_notification_actions(
    actions: Any,
    *,
    store: NotificationsStore,
    sender: NotificationSender,
    signals: Any,
    limits: NotificationLimits,
    idempotency: IdempotencyKeys,
) -> None:
    """Register the three actions in the notifications plugin's actions registry."""

    async def get_notifications(input: GetNotificationsInput, credentials: Any) -> GetNotificationsOutput:
        user = str(credentials.principal.user_entity_ref)
        limits.check_search(input.search)
        filters = NotificationFilters(
            search=input.search or None,
            read={"unread": False, "read": True}.get(input.view),
            saved=True if input.view == "saved" else None,
            created_after=_utc(input.created_after) if input.created_after else None,
            minimum_severity=input.minimum_severity,
            topic=input.topic or None,
            archived=False,  # as the REST list: archived notifications are out of every view
        )
        query = NotificationQuery(filters=filters, offset=input.offset, limit=input.limit)
        found, total = await store.list_notifications(user, query)
        return GetNotificationsOutput(notifications=notifications_to_wire(found), totalCount=total)

    async def mark_notifications_read(input: MarkNotificationsReadInput, credentials: Any) -> NotificationsOutput:
        user = str(credentials.principal.user_entity_ref)
        updated = await update_states(store, signals, limits, user, input.ids, read=input.read, saved=None)
        return NotificationsOutput(notifications=notifications_to_wire(updated))

    async def send_notification(input: SendNotificationInput, credentials: Any) -> NotificationsOutput:
        origin = str(credentials.principal.subject)
        body = {"recipients": input.recipients, "payload": input.payload}
        if input.idempotency_key is None:
            return NotificationsOutput(notifications=notifications_to_wire(await sender.send(body, origin=origin)))
        kept = await idempotency.run(
            origin,
            input.idempotency_key,
            body,
            lambda record: sender.send(body, origin=origin, before_commit=record),
        )
        return NotificationsOutput(notifications=orjson.loads(kept.body))

    actions.register(
        name="get-notifications",
        title="Get Notifications",
        description=_GET_DESCRIPTION,
        input_model=GetNotificationsInput,
        output_model=GetNotificationsOutput,
        action=get_notifications,
        allow=("user",),
        attributes={"destructive": False, "idempotent": True, "readOnly": True},
    )
    actions.register(
        name="mark-notifications-read",
        title="Mark notifications read",
        description="Marks the current user's notifications (by id) read, or unread with read: false. "
        "Ids the user cannot see are ignored; answers the notifications it found.",
        input_model=MarkNotificationsReadInput,
        output_model=NotificationsOutput,
        action=mark_notifications_read,
        allow=("user",),
        attributes={"destructive": False, "idempotent": True, "readOnly": False},
    )
    actions.register(
        name="send-notification",
        title="Send notification",
        description="Sends a notification to users, groups or everyone, as POST /api/notifications does "
        "(service credentials only; the origin is the calling service). Answers the created notifications.",
        input_model=SendNotificationInput,
        output_model=NotificationsOutput,
        action=send_notification,
        # Sending reaches any user, group or everyone: services only, like the route it mirrors.
        allow=("service",),
        attributes={"destructive": False, "idempotent": False, "readOnly": False},
    )
