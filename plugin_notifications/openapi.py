"""The OpenAPI 3.1 document of ``/api/notifications`` (spec section 1).

Request bodies and the notification itself reuse the pydantic models'
JSON schemas (:mod:`plugin_notifications.models`), so the document cannot
drift from what the routes validate; the rest is written from the wire
shapes of :mod:`plugin_notifications.routes`. The deprecated aliases
(``GET /``, ``GET /{id}``, ``POST /``, ``POST /update``) are described as
well, since Backstage's own ``DefaultNotificationService`` still calls ``POST /``.
"""

from __future__ import annotations

import copy
from typing import Any

from host import (
    json_body,
    openapi_document,
    path_param,
    pydantic_schemas,
    query_param,
    ref,
    responses,
)
from plugin_notifications.idempotency import HEADER as IDEMPOTENCY_HEADER
from plugin_notifications.models import (
    SEVERITIES,
    DeleteRequest,
    Notification,
    NotificationSendOptions,
    NotificationSettings,
    UpdateRequest,
)
from plugin_notifications.preferences import NotificationPreferences
from plugin_notifications.store import ORDER_FIELDS

_TIMESTAMP = {"type": "string", "format": "date-time"}
_ORDER_NAMES = ", ".join(ORDER_FIELDS)
#: Literal segments routed before ``/{id}``; an id is never one of them.
RESERVED_IDS = [
    "notifications", "update", "delete", "status", "topics", "settings", "preferences", "openapi.json",
    "delivery-metrics",
]  # fmt: skip


def _filters(*, with_topic: bool) -> list[dict[str, Any]]:
    """The filters shared by the list and topics routes, in Backstage's order and with its schemas."""
    flag = {"type": "string", "enum": ["true", "false"]}
    params = [query_param("topic", {"type": "string"}, "exact topic")] if with_topic else []
    return [
        *params,
        query_param("search", {"type": "string"}, "case-insensitive substring of title or description"),
        query_param("read", flag, "only read (`true`) or unread (`false`) notifications"),
        query_param("saved", flag, "only saved (`true`) or unsaved (`false`) notifications"),
        query_param("createdAfter", {"type": "string"}, "ISO 8601 time: only notifications created at or after it"),
        query_param(
            "minimumSeverity", {"type": "string", "enum": list(SEVERITIES)}, "this severity and every more severe one"
        ),
        query_param(
            "archived",
            flag,
            "Greenroom only: only archived (`true`) or not archived (`false`) notifications; "
            "without it archived ones are left out",
        ),
    ]


#: The ``Idempotency-Key`` request header of create (IETF httpapi draft: a Structured Field String).
IDEMPOTENCY_KEY_PARAMETER = {
    "name": IDEMPOTENCY_HEADER,
    "in": "header",
    "required": False,
    "schema": {"type": "string"},
    "example": '"8e03978e-40d5-43e8-bc93-6894a57f9324"',
    "description": (
        "Send at most once: a quoted string (Structured Field String, 1-255 printable ASCII characters; a bare "
        "token is a 400). Within `notifications.idempotency.window` (24 h) a repeat by the same service with the "
        "same body answers the first response again and creates nothing; another body is a 422; a repeat while "
        "the first runs is a 409."
    ),
}


#: Greenroom's opt-in addition to list and get: Backstage's clients never send it and see nothing new.
DESCRIPTION_HTML_PARAMETER = query_param(
    "descriptionHtml",
    {"type": "string", "enum": ["true", "false"]},
    "`true`: add `descriptionHtml` (sanitized HTML) to each notification whose description is Markdown "
    "(`payload.metadata.descriptionFormat: markdown`, or the `notifications.descriptionFormat` default); "
    "the payload is unchanged",
)


def _operations() -> dict[str, dict[str, Any]]:
    """Each operation once, keyed by its current path and method."""
    notification_list = {
        "type": "object",
        "required": ["totalCount", "notifications"],
        "properties": {
            "totalCount": {"type": "integer", "minimum": 0},
            "notifications": {"type": "array", "items": ref("Notification")},
        },
    }
    notifications = {"type": "array", "items": ref("Notification")}
    return {
        "list": {
            "summary": "The caller's notifications and the broadcasts (user token)",
            "parameters": [
                query_param("offset", {"type": "integer", "minimum": 0}, "rows to skip"),
                query_param("limit", {"type": "integer", "minimum": 0}, "page size (no default, no maximum)"),
                query_param(
                    "orderField",
                    {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]},
                    f"`field` or `field,asc|desc`, repeatable; default `created,desc`; fields: {_ORDER_NAMES}",
                ),
                *_filters(with_topic=True),
                DESCRIPTION_HTML_PARAMETER,
            ],
            "responses": responses(notification_list, 400, 401, 403),
        },
        "create": {
            "summary": "Send a notification (service token); answers the created notifications",
            "parameters": [IDEMPOTENCY_KEY_PARAMETER],
            "requestBody": {"required": True, **json_body(ref("NotificationSendOptions"), "recipients and payload")},
            "responses": {
                **responses(notifications, 400, 401, 403),
                "409": json_body(
                    ref("Error"), f"ConflictError: a request with this {IDEMPOTENCY_HEADER} is still being processed"
                ),
                "422": json_body(
                    ref("Error"), f"IdempotencyKeyReusedError: this {IDEMPOTENCY_HEADER} was used with a different body"
                ),
            },
        },
        "get": {
            "summary": "One notification visible to the caller (user token)",
            "parameters": [
                path_param("id", "notification id", {"type": "string", "not": {"enum": RESERVED_IDS}}),
                DESCRIPTION_HTML_PARAMETER,
            ],
            "responses": responses(ref("Notification"), 400, 401, 403, 404),
        },
        "deliveries": {
            "summary": "How the notification reached the recipient and each channel's delivery status "
            "(user token: own notifications and broadcasts; service token: any)",
            "parameters": [
                path_param("id", "notification id", {"type": "string", "not": {"enum": RESERVED_IDS}}),
                query_param(
                    "user", {"type": "string"}, "service token only: the recipient the notification must belong to"
                ),
            ],
            "responses": responses(ref("DeliveryLog"), 401, 403, 404),
        },
        "deliveryMetrics": {
            "summary": "Outbox counters per channel, queue depth and lag (service token)",
            "responses": responses(ref("DeliveryMetrics"), 401, 403),
        },
        "remove": {
            "summary": "Greenroom only: delete one of the caller's notifications (user token); a broadcast is "
            "deleted for the caller only. 204, or 404 when the caller has no such notification",
            "parameters": [path_param("id", "notification id", {"type": "string", "not": {"enum": RESERVED_IDS}})],
            "responses": {
                "204": {"description": "deleted"},
                **{code: body for code, body in responses({}, 401, 403, 404).items() if code != "200"},
            },
        },
        "removeMany": {
            "summary": "Greenroom only: delete the caller's notifications among `ids` (user token; broadcasts for the "
            "caller only); ids the caller cannot see are ignored. Answers the ids that were deleted",
            "requestBody": {"required": True, **json_body(ref("DeleteRequest"), "ids to delete")},
            "responses": responses(ref("DeletedNotifications"), 400, 401, 403),
        },
        "update": {
            "summary": "Mark read/unread, saved/unsaved and (Greenroom only) archived or not (user token); answers "
            "the affected notifications",
            "requestBody": {"required": True, **json_body(ref("UpdateRequest"), "ids and the new state")},
            "responses": responses(notifications, 400, 401, 403),
        },
        "status": {
            "summary": "Read and unread counts of the caller (user token)",
            "responses": responses(ref("NotificationStatus"), 401, 403),
        },
        "topics": {
            "summary": "Distinct topics of the caller's (filtered) notifications (user token)",
            "parameters": _filters(with_topic=False),
            "responses": responses(ref("Topics"), 400, 401, 403),
        },
        "getSettings": {
            "summary": "The caller's effective channel x origin x topic settings (user token)",
            "responses": responses(ref("NotificationSettings"), 401, 403),
        },
        "getPreferences": {
            "summary": "The caller's delivery preferences (digests, quiet hours) and the channels they apply to "
            "(user token)",
            "responses": responses(ref("NotificationPreferencesResponse"), 401, 403),
        },
        "putPreferences": {
            "summary": "Replace the caller's delivery preferences (user token); answers them as stored",
            "requestBody": {
                "required": True,
                **json_body(ref("NotificationPreferencesRequest"), "every channel entry of the caller"),
            },
            "responses": responses(ref("NotificationPreferencesResponse"), 400, 401, 403),
        },
        "saveSettings": {
            "summary": "Replace the caller's settings (user token); answers the new settings",
            "requestBody": {"required": True, **json_body(ref("NotificationSettings"), "the whole matrix")},
            "responses": responses(ref("NotificationSettings"), 400, 401, 403),
        },
    }


def _paths() -> dict[str, Any]:
    ops = _operations()

    def op(name: str, operation_id: str, *, deprecated: bool = False) -> dict[str, Any]:
        result = {"operationId": operation_id, **ops[name]}
        if deprecated:
            result["deprecated"] = True
        return result

    return {
        "/notifications": {"get": op("list", "getNotifications"), "post": op("create", "createNotification")},
        "/notifications/update": {"post": op("update", "updateNotifications")},
        "/notifications/delete": {"post": op("removeMany", "deleteNotifications")},
        "/notifications/{id}": {"get": op("get", "getNotification"), "delete": op("remove", "deleteNotification")},
        "/notifications/{id}/deliveries": {"get": op("deliveries", "getNotificationDeliveries")},
        "/delivery-metrics": {"get": op("deliveryMetrics", "getDeliveryMetrics")},
        "/status": {"get": op("status", "getStatus")},
        "/topics": {"get": op("topics", "getTopics")},
        "/settings": {"get": op("getSettings", "getSettings"), "post": op("saveSettings", "saveSettings")},
        "/preferences": {"get": op("getPreferences", "getPreferences"), "put": op("putPreferences", "putPreferences")},
        "/": {
            "get": op("list", "getNotificationsLegacy", deprecated=True),
            "post": op("create", "createNotificationLegacy", deprecated=True),
        },
        "/update": {"post": op("update", "updateNotificationsLegacy", deprecated=True)},
        "/{id}": {
            "get": op("get", "getNotificationLegacy", deprecated=True),
            "delete": op("remove", "deleteNotificationShort"),
        },
        "/{id}/deliveries": {"get": op("deliveries", "getNotificationDeliveriesShort")},
    }


def _schemas() -> dict[str, Any]:
    schemas = pydantic_schemas(
        [
            (NotificationSendOptions, "validation"),
            (UpdateRequest, "validation"),
            (DeleteRequest, "validation"),
            (NotificationSettings, "validation"),
            (Notification, "serialization"),
        ]
    )
    # The models accept a ref or a list of refs through a plain validator, which has no schema of its own.
    ref_or_refs = {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}
    entity = schemas["EntityRecipients"]["properties"]
    entity["entityRef"] = ref_or_refs
    entity["excludeEntityRef"] = ref_or_refs
    # Backstage's document has two recipient kinds; the newer `entities` alias is routed to its own
    # schema first, so a bad recipients object is reported with exactly Backstage's message.
    schemas["NotificationSendOptions"]["properties"]["recipients"] = {
        "if": {"type": "object", "required": ["type"], "properties": {"type": {"const": "entities"}}},
        "then": ref("EntitiesRecipients"),
        "else": {"oneOf": [ref("EntityRecipients"), ref("BroadcastRecipients")]},
    }
    # Responses carry null for unset payload fields; request bodies may omit them but not send null.
    schemas["NotificationResponsePayload"] = copy.deepcopy(schemas["NotificationPayload"])
    schemas["Notification"]["properties"]["payload"] = ref("NotificationResponsePayload")
    for name in (
        "NotificationPayload",
        "EntityRecipients",
        "EntitiesRecipients",
        "BroadcastRecipients",
        "UpdateRequest",
        "DeleteRequest",
        "TopicSetting",
        "OriginSetting",
        "ChannelSetting",
    ):
        schemas[name] = _as_backstage_input(schemas[name])
    # Every channel of a settings body lists its origins (the model defaults them for config files).
    schemas["ChannelSetting"]["required"] = ["id", "origins"]
    # Timestamps are serialised by a field serializer, which pydantic can only describe as a string.
    notification = schemas["Notification"]["properties"]
    notification["created"] = _TIMESTAMP
    for name in ("saved", "read", "updated"):
        notification[name] = {"anyOf": [_TIMESTAMP, {"type": "null"}]}
    notification["descriptionHtml"] = {
        "type": "string",
        "description": "only with `?descriptionHtml=true` and a Markdown description: the description as sanitized "
        "HTML (no script, no raw HTML, http/https/mailto links only)",
    }
    notification["archived"] = {**_TIMESTAMP, "description": "Greenroom only: present while the caller has it archived"}
    schemas["DeletedNotifications"] = {
        "type": "object",
        "required": ["deleted"],
        "properties": {"deleted": {"type": "array", "items": {"type": "string"}}},
    }
    schemas["NotificationStatus"] = {
        "type": "object",
        "required": ["unread", "read"],
        "properties": {"unread": {"type": "integer", "minimum": 0}, "read": {"type": "integer", "minimum": 0}},
    }
    nullable_string = {"type": ["string", "null"]}
    schemas["DeliveryLog"] = {
        "type": "object",
        "required": ["notificationId", "user", "resolution", "channels"],
        "properties": {
            "notificationId": {"type": "string"},
            "user": nullable_string,
            "resolution": {
                "type": "array",
                "description": "from the requested entity down to the user; relation: how the previous step reached it",
                "items": {
                    "type": "object",
                    "required": ["entityRef", "relation"],
                    "properties": {"entityRef": nullable_string, "relation": nullable_string},
                },
            },
            "channels": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["channel", "status", "attempts", "lastError", "updated"],
                    "properties": {
                        "channel": {"type": "string"},
                        "status": {"type": "string", "enum": ["pending", "sent", "failed", "dead", "muted", "skipped"]},
                        "attempts": {"type": "integer", "minimum": 0},
                        "lastError": nullable_string,
                        "updated": {"anyOf": [_TIMESTAMP, {"type": "null"}]},
                        "setting": {"type": "string", "description": "which setting allowed or muted the channel"},
                        "deliveryId": {"type": "string", "description": "the id passed to the channel"},
                    },
                },
            },
        },
    }
    counters = {"type": "object", "additionalProperties": {"type": "integer", "minimum": 0}}
    schemas["DeliveryMetrics"] = {
        "type": "object",
        "required": ["channels", "queueDepth", "lagSeconds"],
        "properties": {
            "channels": {
                "type": "object",
                "additionalProperties": counters,
                "description": "per channel: sent, failed, retried, dead, skipped, queueDepth",
            },
            "queueDepth": {"type": "integer", "minimum": 0},
            "sendsToPlan": {
                "type": "integer",
                "minimum": 0,
                "description": "large sends whose deliveries a dispatcher has yet to plan (counted in queueDepth)",
            },
            "lagSeconds": {"type": "number", "minimum": 0},
        },
    }
    preferences = pydantic_schemas([(NotificationPreferences, "validation")])
    for name in ("QuietHours", "ChannelPreference"):
        schemas[name] = preferences[name]
    request = copy.deepcopy(preferences["NotificationPreferences"])
    # a GET answer may be sent back as it is: "available" is accepted and ignored
    request["properties"]["available"] = {"type": "array", "items": {"type": "string"}}
    schemas["NotificationPreferencesRequest"] = request
    response = copy.deepcopy(preferences["NotificationPreferences"])
    response["properties"]["available"] = {
        "type": "array",
        "items": {"type": "string"},
        "description": "the channels preferences apply to (processors delivering per recipient)",
    }
    response["required"] = ["channels", "available"]
    schemas["NotificationPreferencesResponse"] = response
    schemas["Topics"] = {
        "type": "object",
        "required": ["topics"],
        "properties": {"topics": {"type": "array", "items": {"type": "string"}}},
    }
    return schemas


def _as_backstage_input(schema: Any) -> Any:
    """A request schema as Backstage's document states it (and so as its validator words errors).

    An optional field is not nullable (``"topic": null`` is a 400), and a single allowed value is a
    one-item ``enum`` (``must be equal to one of the allowed values: entity``).
    """
    if isinstance(schema, list):
        return [_as_backstage_input(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    result = {key: _as_backstage_input(value) for key, value in schema.items()}
    branches = result.get("anyOf")
    if isinstance(branches, list) and {"type": "null"} in branches and "default" in result:
        kept = [branch for branch in branches if branch != {"type": "null"}]
        del result["anyOf"]
        result = {**kept[0], **result} if len(kept) == 1 else {**result, "anyOf": kept}
        if result.get("default") is None:
            del result["default"]
    if "const" in result:
        result["enum"] = [result.pop("const")]
    return result


def build_openapi_document() -> dict[str, Any]:
    """The OpenAPI document served at ``/api/notifications/openapi.json``."""
    return openapi_document(
        title="Greenroom notifications API",
        description=(
            "Backstage-compatible notifications. Creating needs a service token; every other route needs a "
            "user token and only ever shows the caller's own notifications and the broadcasts."
        ),
        paths=_paths(),
        schemas=_schemas(),
    )
