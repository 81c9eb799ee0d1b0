"""Wire models of the notifications API (pydantic), and their validation errors.

The JSON field names, defaults and error messages follow Backstage's
``@backstage/plugin-notifications-backend`` so that its clients work
unchanged. Validation errors are reported in the style of Backstage's
OpenAPI validator (``request/body/payload must have required property
'title'``) as a 400 ``InputError``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, overload

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    StrictBool,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    field_serializer,
    field_validator,
)
from pydantic_core import PydanticCustomError

from host import InputError

#: Severities from the most to the least severe (Backstage's ``notificationSeverities``).
SEVERITIES: tuple[str, ...] = ("critical", "high", "normal", "low")
Severity = Literal["critical", "high", "normal", "low"]

#: The built-in channel: the in-app inbox.
WEB_CHANNEL = "Web"

ShortText = Annotated[str, StringConstraints(max_length=255)]


def _ref_or_refs(value: Any) -> str | list[str]:
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return value
    raise PydanticCustomError("ref_or_refs", "must be string or array of strings")


#: An entity ref or a list of them (``entityRef``, ``excludeEntityRef``).
RefOrRefs = Annotated[str | list[str], PlainValidator(_ref_or_refs)]


def normalize_severity(value: Any) -> str:
    """Lower-case ``value``; anything that is not a known severity becomes ``normal``."""
    lowered = value.lower() if isinstance(value, str) else None
    return lowered if lowered in SEVERITIES else "normal"


def severities_at_least(minimum: str) -> tuple[str, ...]:
    """Return ``minimum`` and every more severe level (``high`` -> critical, high)."""
    return SEVERITIES[: SEVERITIES.index(normalize_severity(minimum)) + 1]


def format_timestamp(value: datetime) -> str:
    """Format like JavaScript's ``Date.toISOString()``: UTC, milliseconds, ``Z``."""
    value = value.astimezone(UTC) if value.tzinfo else value
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def utc_now() -> datetime:
    """The current UTC time truncated to milliseconds (what JavaScript would store)."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


class NotificationPayload(BaseModel):
    """What a notification says: ``title`` is required, everything else optional."""

    model_config = ConfigDict(extra="ignore")

    #: Required; an empty title passes the schema (as in Backstage's document) and the send refuses it.
    title: ShortText
    description: str | None = None
    link: str | None = None
    severity: Severity = "normal"
    topic: ShortText | None = None
    scope: ShortText | None = None
    icon: ShortText | None = None
    metadata: dict[str, Any] | None = None

    @field_validator("severity", mode="before")
    @classmethod
    def _lower_case_severity(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value

    @field_validator("title", "description", "link", "topic", "scope", "icon")
    @classmethod
    def _no_nul(cls, value: str | None) -> str | None:
        # PostgreSQL text cannot hold NUL characters.
        if value is not None and "\x00" in value:
            raise PydanticCustomError("nul_character", "must not contain NUL characters")
        return value


class Notification(BaseModel):
    """A notification as stored and as returned on the wire.

    Rows read from the database have every field set (unset values
    serialise as ``null``); notifications built by a send only carry the
    fields actually supplied, as Backstage returns them from create.
    """

    id: str
    user: str | None
    created: datetime
    saved: datetime | None = None
    read: datetime | None = None
    updated: datetime | None = None
    origin: str
    #: Greenroom only: when the caller archived it. On the wire only while it is archived (Backstage has no archive).
    archived: datetime | None = None
    payload: NotificationPayload

    @field_serializer("created", "saved", "read", "updated", "archived", when_used="json")
    def _timestamp(self, value: datetime | None) -> str | None:
        return None if value is None else format_timestamp(value)

    def to_wire(self) -> dict[str, Any]:
        """The JSON-ready dict: set fields only, timestamps as ISO strings."""
        return self.model_dump(mode="json", exclude_unset=True)


_WIRE_FIELDS = ("id", "user", "created", "saved", "read", "updated", "origin", "archived")
_TIMESTAMP_FIELDS = frozenset({"created", "saved", "read", "updated", "archived"})


def notifications_to_wire(items: Sequence[Notification]) -> list[dict[str, Any]]:
    """``[item.to_wire() for item in items]``, fast for large fan-outs.

    A send to N users gives N notifications sharing one payload object, so
    each distinct payload (and timestamp) is serialised once.
    """
    if isinstance(items, FanOut):
        return items.to_wire()
    payloads: dict[int, dict[str, Any]] = {}
    stamps: dict[datetime, str] = {}
    result = []
    for item in items:
        fields = item.model_fields_set
        entry: dict[str, Any] = {}
        for name in _WIRE_FIELDS:
            if name in fields:
                value = getattr(item, name)
                if name in _TIMESTAMP_FIELDS and value is not None:
                    text = stamps.get(value)
                    if text is None:
                        text = stamps[value] = format_timestamp(value)
                    value = text
                entry[name] = value
        if "payload" in fields:
            key = id(item.payload)
            payload = payloads.get(key)
            if payload is None:
                payload = payloads[key] = item.payload.model_dump(mode="json", exclude_unset=True)
            entry["payload"] = payload
        result.append(entry)
    return result


class FanOut(Sequence[Notification]):
    """The notifications of one unscoped send to many users: one template, users and ids side by side.

    A group send creates N notifications that differ only in ``id`` and ``user``; holding them as
    two lists and one template costs two strings per user instead of a pydantic model each. Indexing
    builds a :class:`Notification` on demand, so code that wants objects still gets them.
    """

    def __init__(self, template: Notification, users: Sequence[str], ids: Sequence[str]) -> None:
        if len(users) != len(ids):
            raise ValueError("a fan-out needs one id per user")
        self.template = template
        self.users = users
        self.ids = ids

    def __len__(self) -> int:
        return len(self.users)

    @overload
    def __getitem__(self, index: int) -> Notification: ...

    @overload
    def __getitem__(self, index: slice) -> FanOut: ...

    def __getitem__(self, index: int | slice) -> Notification | FanOut:
        if isinstance(index, slice):
            return FanOut(self.template, self.users[index], self.ids[index])
        return self.template.model_copy(update={"id": self.ids[index], "user": self.users[index]})

    def __iter__(self) -> Iterator[Notification]:
        for user, notification_id in zip(self.users, self.ids, strict=True):
            yield self.template.model_copy(update={"id": notification_id, "user": user})

    def to_wire(self) -> list[dict[str, Any]]:
        """Every notification's wire form: the template serialised once, ``id`` and ``user`` per item."""
        [shared] = notifications_to_wire([self.template])
        rest = {name: value for name, value in shared.items() if name not in ("id", "user")}
        return [
            {"id": notification_id, "user": user, **rest}
            for user, notification_id in zip(self.users, self.ids, strict=True)
        ]


class _EntityRefsMixin:
    """Normalised access to the referenced and excluded entities of a recipient spec."""

    def entity_refs(self) -> list[str]:  # pragma: no cover - overridden
        """The refs to resolve into users."""
        raise NotImplementedError

    def excluded_entity_refs(self) -> list[str]:  # pragma: no cover - overridden
        """The refs whose users must not receive the notification."""
        raise NotImplementedError


def _as_list(value: str | list[str] | None) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


class EntityRecipients(BaseModel, _EntityRefsMixin):
    """``{type: 'entity', entityRef: ref | [refs], excludeEntityRef?: ref | [refs]}``."""

    model_config = ConfigDict(populate_by_name=True)

    type: Literal["entity"]
    entity_ref: RefOrRefs = Field(alias="entityRef")
    exclude_entity_ref: RefOrRefs | None = Field(default=None, alias="excludeEntityRef")

    def entity_refs(self) -> list[str]:
        return _as_list(self.entity_ref)

    def excluded_entity_refs(self) -> list[str]:
        return _as_list(self.exclude_entity_ref)


class EntitiesRecipients(BaseModel, _EntityRefsMixin):
    """``{type: 'entities', entityRefs: [refs], excludedEntityRefs?: [refs]}`` (newer alias of ``entity``)."""

    model_config = ConfigDict(populate_by_name=True)

    type: Literal["entities"]
    entity_refs_: list[str] = Field(alias="entityRefs")
    excluded_entity_refs_: list[str] | None = Field(default=None, alias="excludedEntityRefs")

    def entity_refs(self) -> list[str]:
        return list(self.entity_refs_)

    def excluded_entity_refs(self) -> list[str]:
        return list(self.excluded_entity_refs_ or [])


class BroadcastRecipients(BaseModel):
    """``{type: 'broadcast'}``: every user sees it."""

    type: Literal["broadcast"]


Recipients = Annotated[EntityRecipients | EntitiesRecipients | BroadcastRecipients, Field(discriminator="type")]
RECIPIENT_TYPES = ("entity", "entities", "broadcast")


class NotificationSendOptions(BaseModel):
    """The body of ``POST /notifications``: whom to notify and what to say."""

    recipients: Recipients
    payload: NotificationPayload


class UpdateRequest(BaseModel):
    """The body of ``POST /notifications/update``."""

    ids: list[str]
    read: StrictBool | None = None
    saved: StrictBool | None = None
    #: Greenroom only: archive (``true``) or bring back (``false``).
    archived: StrictBool | None = None


class DeleteRequest(BaseModel):
    """The body of ``POST /notifications/delete`` (Greenroom only): the caller's notifications to delete."""

    ids: list[str]


class TopicSetting(BaseModel):
    """Whether one topic of an origin is enabled."""

    id: str
    enabled: StrictBool


class OriginSetting(BaseModel):
    """Whether an origin (and each of its topics) is enabled."""

    id: str
    enabled: StrictBool
    topics: list[TopicSetting] = Field(default_factory=list)


class ChannelSetting(BaseModel):
    """The settings of one channel (``Web`` or a processor name)."""

    id: str
    enabled: StrictBool | None = None
    origins: list[OriginSetting] = Field(default_factory=list)

    def to_wire(self) -> dict[str, Any]:
        """JSON dict; ``enabled`` is left out when unknown, as Backstage does."""
        data = self.model_dump(exclude_none=True)
        data.setdefault("origins", [])
        return data


class NotificationSettings(BaseModel):
    """``{channels: [...]}``: the body of ``GET``/``POST /settings``."""

    channels: list[ChannelSetting]

    def to_wire(self) -> dict[str, Any]:
        """JSON dict of the whole matrix."""
        return {"channels": [channel.to_wire() for channel in self.channels]}


# -- validation -------------------------------------------------------------

_send_options_adapter = TypeAdapter(NotificationSendOptions)


def parse_body(model: type[BaseModel], body: Any) -> Any:
    """Validate ``body`` into ``model`` or raise an ``InputError`` naming the bad fields."""
    if not isinstance(body, dict):
        raise InputError("request/body must be object")
    try:
        return model.model_validate(body)
    except ValidationError as error:
        raise InputError(describe_validation_error(error, body)) from None


def parse_send_options(body: Any) -> NotificationSendOptions:
    """Validate a create body; unknown recipient types get Backstage's exact message."""
    if not isinstance(body, dict):
        raise InputError("request/body must be object")
    recipients = body.get("recipients")
    if isinstance(recipients, dict) and recipients.get("type") not in RECIPIENT_TYPES:
        raise InputError(_bad_recipients_message(recipients))
    try:
        return _send_options_adapter.validate_python(body)
    except ValidationError as error:
        raise InputError(describe_validation_error(error, body)) from None


def _bad_recipients_message(recipients: dict[str, Any]) -> str:
    entity_error = (
        "request/body/recipients must have required property 'entityRef'"
        if "entityRef" not in recipients
        else "request/body/recipients/type must be equal to one of the allowed values: entity"
    )
    return (
        f"{entity_error}, "
        "request/body/recipients/type must be equal to one of the allowed values: broadcast, "
        "request/body/recipients must match exactly one schema in oneOf"
    )


_TYPE_NAMES = {
    "string_type": "string",
    "bool_type": "boolean",
    "list_type": "array",
    "dict_type": "object",
    "model_type": "object",
    "model_attributes_type": "object",
}


def describe_validation_error(error: ValidationError, body: Any = None) -> str:
    """Turn pydantic errors into Backstage-style messages, comma separated."""
    messages: list[str] = []
    for item in error.errors():
        loc = [str(part) for part in item["loc"] if not (isinstance(part, str) and part in RECIPIENT_TYPES)]
        kind = item["type"]
        ctx = item.get("ctx") or {}
        if kind == "missing":
            parent = "/".join(["request/body", *loc[:-1]])
            messages.append(f"{parent} must have required property '{loc[-1]}'")
            continue
        path = "/".join(["request/body", *loc])
        if kind in _TYPE_NAMES:
            messages.append(f"{path} must be {_TYPE_NAMES[kind]}")
        elif kind == "string_too_short":
            messages.append(f"{path} must NOT have fewer than {ctx.get('min_length')} characters")
        elif kind == "string_too_long":
            messages.append(f"{path} must NOT have more than {ctx.get('max_length')} characters")
        elif kind == "literal_error":
            allowed = ctx.get("expected", "").replace("'", "").replace(" or ", ", ")
            messages.append(f"{path} must be equal to one of the allowed values: {allowed}")
        elif kind == "union_tag_not_found":
            messages.append(f"{path} must have required property 'type'")
        else:
            messages.append(f"{path} {item['msg']}")
    return ", ".join(messages)
