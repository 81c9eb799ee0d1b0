"""The HTTP API at ``/api/notifications`` (Falcon ASGI resources; spec section 1).

User routes authenticate a *user* principal and only ever touch the
caller's own notifications and the broadcasts; create accepts only a
*service* principal, whose subject becomes the origin.
"""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import falcon

from host import InputError, NotFoundError
from plugin_notifications.delivery_log import delivery_log
from plugin_notifications.idempotency import HEADER as IDEMPOTENCY_HEADER
from plugin_notifications.idempotency import IdempotencyKeys
from plugin_notifications.limits import NotificationLimits
from plugin_notifications.models import (
    DeleteRequest,
    NotificationSettings,
    UpdateRequest,
    notifications_to_wire,
    parse_body,
)
from plugin_notifications.outbox_store import OutboxStore
from plugin_notifications.preferences import NotificationPreferences, PreferencesService, preferences_wire
from plugin_notifications.rich_text import DescriptionFormat, description_format, to_html
from plugin_notifications.sender import NotificationSender
from plugin_notifications.settings import SettingsService
from plugin_notifications.store import (
    ORDER_FIELDS,
    NotificationFilters,
    NotificationQuery,
    NotificationsStore,
    valid_ids,
)
from plugin_notifications.updates import delete_notifications, update_states


def _param(req: falcon.Request, name: str) -> str | None:
    """A single query parameter (the first one when repeated); NUL characters are refused."""
    value = req.params.get(name)
    if isinstance(value, list):
        value = value[0] if value else None
    if value is not None and "\x00" in value:
        raise InputError(f"Invalid {name}, must not contain NUL characters")
    return value


#: Opt-in query parameter of the list and get routes: add ``descriptionHtml`` to Markdown descriptions.
DESCRIPTION_HTML = "descriptionHtml"

#: Larger offsets and limits select the same rows as this one, and would overflow the databases' integers.
_MAX_PAGE_NUMBER = 2**31 - 1


def _non_negative_int(req: falcon.Request, name: str) -> int | None:
    raw = _param(req, name)
    if raw is None or raw == "":
        return None
    try:
        value = int(raw, 10)
    except ValueError:
        # What the OpenAPI validator accepted as an integer, as AJV coerces it ("1e3", "5.0").
        try:
            number = float(raw)
        except ValueError:
            number = -1.0
        value = int(number) if number.is_integer() and number >= 0 else -1
    if value < 0:
        raise InputError(f"Invalid {name}, must be a non-negative integer")
    return min(value, _MAX_PAGE_NUMBER)


def _boolean(req: falcon.Request, name: str) -> bool | None:
    """``true``/``false`` (the OpenAPI document refuses any other value before the handler runs)."""
    return {"true": True, "false": False}.get(_param(req, name) or "")


def _timestamp(raw: str) -> datetime:
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        try:
            value = parsedate_to_datetime(raw)
        except (TypeError, ValueError):
            raise InputError("Unexpected date format") from None
    try:
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00:00+01:00 is before year 1 in UTC
        raise InputError("Unexpected date format") from None


def with_description_html(wire: dict[str, Any], default: DescriptionFormat) -> dict[str, Any]:
    """Add ``descriptionHtml`` (sanitized HTML) to a wire notification whose description is Markdown.

    The payload itself is left exactly as sent; a plain-text description gets no field.
    """
    payload = wire.get("payload") or {}
    description = payload.get("description")
    if description and description_format(payload.get("metadata"), default) == "markdown":
        wire["descriptionHtml"] = to_html(description)
    return wire


def parse_filters(req: falcon.Request, *, with_topic: bool = True) -> NotificationFilters:
    """The common filters: search, read, saved, createdAfter, minimumSeverity, archived (and topic).

    Without ``archived`` (Greenroom only), archived notifications are left out, as with ``archived=false``.
    """
    created_after = _param(req, "createdAfter")
    archived = _boolean(req, "archived")
    return NotificationFilters(
        search=_param(req, "search") or None,
        read=_boolean(req, "read"),
        saved=_boolean(req, "saved"),
        created_after=_timestamp(created_after) if created_after else None,
        minimum_severity=_param(req, "minimumSeverity") or None,
        topic=(_param(req, "topic") or None) if with_topic else None,
        archived=bool(archived),
    )


def parse_order(req: falcon.Request) -> list[tuple[str, str]]:
    """``orderField`` values (repeatable): ``field`` or ``field,asc|desc``; default ``created desc``."""
    raw = req.params.get("orderField")
    if raw is None:
        return [("created", "desc")]
    order = []
    for value in raw if isinstance(raw, list) else [raw]:
        name, _, direction = value.partition(",")
        direction = direction or "asc"
        if direction not in ("asc", "desc"):
            raise InputError("Invalid order field order, must be asc or desc")
        if name not in ORDER_FIELDS:
            raise InputError(f"Invalid order field '{name}', must be one of {', '.join(ORDER_FIELDS)}")
        order.append((name, direction))
    return order


class NotificationsApi:
    """Every route of the plugin; ``register`` mounts it on the plugin router."""

    def __init__(
        self,
        *,
        store: NotificationsStore,
        sender: NotificationSender,
        settings: SettingsService,
        signals: Any,
        http_auth: Any,
        limits: NotificationLimits | None = None,
        idempotency: IdempotencyKeys | None = None,
        outbox: OutboxStore | None = None,
        description_format: DescriptionFormat = "plain",
        preferences: PreferencesService | None = None,
    ) -> None:
        self._description_format = description_format
        self._limits = limits or NotificationLimits()
        self._preferences = preferences
        self._idempotency = idempotency
        self._outbox = outbox
        self._store = store
        self._sender = sender
        self._settings = settings
        self._signals = signals
        self._http_auth = http_auth

    def register(self, router: Any) -> None:
        """Add the routes; literal paths are matched before ``/{id}`` by Falcon."""
        for prefix in ("", "/notifications"):
            router.add_route(prefix or "/", self, suffix="collection")
            router.add_route(f"{prefix}/update", self, suffix="update")
            if prefix:
                router.add_route(f"{prefix}/delete", self, suffix="delete")
            router.add_route(f"{prefix}/{{notification_id}}", self, suffix="item")
            if self._outbox is not None:
                router.add_route(f"{prefix}/{{notification_id}}/deliveries", self, suffix="deliveries")
        if self._outbox is not None:
            router.add_route("/delivery-metrics", self, suffix="metrics")
        router.add_route("/status", self, suffix="status")
        router.add_route("/settings", self, suffix="settings")
        router.add_route("/topics", self, suffix="topics")
        if self._preferences is not None:
            router.add_route("/preferences", self, suffix="preferences")

    async def _user(self, req: falcon.Request) -> str:
        creds = await self._http_auth.credentials(req, allow=("user",))
        return str(creds.principal.user_entity_ref)

    async def on_get_collection(self, req: falcon.Request, resp: falcon.Response) -> None:
        """``GET /notifications``: ``{totalCount, notifications}`` of the caller."""
        user = await self._user(req)
        filters = parse_filters(req)
        self._limits.check_search(filters.search)
        query = NotificationQuery(
            filters=filters,
            order=parse_order(req),
            offset=_non_negative_int(req, "offset"),
            limit=_non_negative_int(req, "limit"),
        )
        notifications, total = await self._store.list_notifications(user, query)
        wire = notifications_to_wire(notifications)
        if _boolean(req, DESCRIPTION_HTML):
            wire = [with_description_html(item, self._description_format) for item in wire]
        resp.media = {"totalCount": total, "notifications": wire}

    async def on_post_collection(self, req: falcon.Request, resp: falcon.Response) -> None:
        """``POST /notifications`` (services only): create, answer the created notifications."""
        creds = await self._http_auth.credentials(req, allow=("service",))
        origin = str(creds.principal.subject)
        key = self._idempotency.parse_header(req.get_header(IDEMPOTENCY_HEADER)) if self._idempotency else None
        body = await req.get_media(default_when_empty=None)
        if key is None or self._idempotency is None:
            resp.media = notifications_to_wire(await self._sender.send(body, origin=origin))
            return

        kept = await self._idempotency.run(
            origin, key, body, lambda record: self._sender.send(body, origin=origin, before_commit=record)
        )
        resp.status = kept.status
        resp.content_type = falcon.MEDIA_JSON
        resp.data = kept.body

    async def on_get_item(self, req: falcon.Request, resp: falcon.Response, notification_id: str) -> None:
        """``GET /notifications/{id}``: one notification the caller can see, else 404."""
        user = await self._user(req)
        found = await self._store.get_notification(user, notification_id)
        if found is None:
            raise NotFoundError("Not found")
        wire = found.to_wire()
        resp.media = with_description_html(wire, self._description_format) if _boolean(req, DESCRIPTION_HTML) else wire

    async def on_delete_item(self, req: falcon.Request, resp: falcon.Response, notification_id: str) -> None:
        """``DELETE /notifications/{id}`` (Greenroom only): delete one of the caller's notifications, else 404.

        A broadcast is deleted for the caller only.
        """
        user = await self._user(req)
        if not await delete_notifications(self._store, self._signals, self._limits, user, [notification_id]):
            raise NotFoundError("Not found")
        resp.status = falcon.HTTP_204

    async def on_post_delete(self, req: falcon.Request, resp: falcon.Response) -> None:
        """``POST /notifications/delete`` (Greenroom only): delete the caller's notifications among ``ids``.

        Answers ``{"deleted": [ids]}``, the ids that were deleted; ids the caller cannot see are ignored.
        """
        user = await self._user(req)
        body = parse_body(DeleteRequest, await req.get_media(default_when_empty=None))
        deleted = await delete_notifications(self._store, self._signals, self._limits, user, body.ids)
        resp.media = {"deleted": deleted}

    async def on_get_deliveries(self, req: falcon.Request, resp: falcon.Response, notification_id: str) -> None:
        """``GET /{id}/deliveries``: how the notification reached the recipient and each channel's status.

        A user reads the log of their own notifications (and of broadcasts); anything
        else is a 404. A service principal reads any, optionally checking ``?user=``.
        """
        assert self._outbox is not None
        creds = await self._http_auth.credentials(req, allow=("user", "service"))
        ids = valid_ids([notification_id])
        if not ids:
            raise NotFoundError("Not found")
        stored = await self._outbox.send_of(ids[0])
        if stored is None:
            raise NotFoundError("Not found")
        if creds.principal.type == "user":
            caller = str(creds.principal.user_entity_ref)
            if await self._store.get_notification(caller, ids[0]) is None:
                raise NotFoundError("Not found")
            recipient = caller if stored.user is not None else None
        else:
            wanted = _param(req, "user")
            if wanted and stored.user is not None and wanted != stored.user:
                raise NotFoundError("Not found")
            recipient = stored.user
        resp.media = await delivery_log(self._outbox, ids[0], recipient, stored.send, created=stored.created)

    async def on_get_metrics(self, req: falcon.Request, resp: falcon.Response) -> None:
        """``GET /delivery-metrics`` (services only): outbox counters, queue depth and lag."""
        assert self._outbox is not None
        await self._http_auth.credentials(req, allow=("service",))
        resp.media = await self._outbox.metrics()

    async def on_post_update(self, req: falcon.Request, resp: falcon.Response) -> None:
        """``POST /notifications/update``: mark read/unread, saved/unsaved, archived or not; signal the changes."""
        user = await self._user(req)
        update = parse_body(UpdateRequest, await req.get_media(default_when_empty=None))
        updated = await update_states(
            self._store,
            self._signals,
            self._limits,
            user,
            update.ids,
            read=update.read,
            saved=update.saved,
            archived=update.archived,
        )
        resp.media = notifications_to_wire(updated)

    async def on_get_status(self, req: falcon.Request, resp: falcon.Response) -> None:
        """``GET /status``: ``{unread, read}`` (archived notifications are in neither)."""
        resp.media = await self._store.get_status(await self._user(req))

    async def on_get_topics(self, req: falcon.Request, resp: falcon.Response) -> None:
        """``GET /topics``: distinct topics of the caller's (filtered) notifications."""
        user = await self._user(req)
        filters = parse_filters(req, with_topic=False)
        self._limits.check_search(filters.search)
        resp.media = {"topics": await self._store.get_topics(user, filters)}

    async def on_get_settings(self, req: falcon.Request, resp: falcon.Response) -> None:
        """``GET /settings``: the effective channel x origin x topic matrix."""
        resp.media = (await self._settings.get(await self._user(req))).to_wire()

    async def on_get_preferences(self, req: falcon.Request, resp: falcon.Response) -> None:
        """``GET /preferences``: the caller's digest and quiet-hours entries and the channels they may set."""
        assert self._preferences is not None  # routed only with preferences
        user = await self._user(req)
        stored = await self._preferences.get(user)
        resp.media = preferences_wire(stored, self._preferences.channels())

    async def on_put_preferences(self, req: falcon.Request, resp: falcon.Response) -> None:
        """``PUT /preferences``: replace the caller's entries; answer them as stored."""
        assert self._preferences is not None
        user = await self._user(req)
        body = await req.get_media(default_when_empty=None)
        if isinstance(body, dict):
            body = {key: value for key, value in body.items() if key != "available"}  # echoing GET is fine
        saved = await self._preferences.put(user, parse_body(NotificationPreferences, body))
        resp.media = preferences_wire(saved, self._preferences.channels())

    async def on_post_settings(self, req: falcon.Request, resp: falcon.Response) -> None:
        """``POST /settings``: replace the caller's settings; answer the new matrix."""
        user = await self._user(req)
        settings = parse_body(NotificationSettings, await req.get_media(default_when_empty=None))
        self._limits.check_settings(settings)
        resp.media = (await self._settings.save(user, settings)).to_wire()
