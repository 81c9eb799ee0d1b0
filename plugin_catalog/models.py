"""The entity envelope and per-kind spec checks (pydantic).

An entity is Backstage's envelope::

    apiVersion: backstage.io/v1alpha1
    kind: Group
    metadata: {name, namespace?, title?, description?, labels?, annotations?, tags?}
    spec: {...}

:func:`validate_entity` returns the normalised envelope as a plain dict (the
namespace filled in, ``uid``/``etag``/``relations`` stripped because the
catalog owns them) or raises :class:`EntityValidationError` with a reason fit
for an operator.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from host import DEFAULT_NAMESPACE

# Backstage's name rules: 1-63 chars of [a-zA-Z0-9], separated by [-_.].
_NAME = re.compile(r"^[a-zA-Z0-9]+(?:[-_.][a-zA-Z0-9]+)*$")
_NAMESPACE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$", re.IGNORECASE)
_API_VERSION = re.compile(r"^[a-z0-9.-]+/[a-z0-9.-]+$", re.IGNORECASE)

#: Annotation: the location an entity was read from (``file:/abs/path``).
MANAGED_BY_LOCATION = "backstage.io/managed-by-location"
#: Annotation: the configured location that led to it.
MANAGED_BY_ORIGIN_LOCATION = "backstage.io/managed-by-origin-location"

#: The kinds this catalog accepts (lowercase).
KNOWN_KINDS = ("user", "group", "component", "system", "api", "domain", "resource", "location")


class EntityValidationError(ValueError):
    """An entity document is not a valid catalog entity."""


def _check_name(value: str, label: str, pattern: re.Pattern[str]) -> str:
    if not isinstance(value, str) or not value or len(value) > 63 or not pattern.match(value):
        raise ValueError(f"{label} {value!r} is not valid; expected 1-63 characters of letters, digits and [-_.]")
    return value


class Metadata(BaseModel):
    """``metadata``: names, display text and free-form labels/annotations."""

    model_config = ConfigDict(extra="allow")

    name: str
    namespace: str = DEFAULT_NAMESPACE
    title: str | None = None
    description: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    tags: list[str] = Field(default_factory=list)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return _check_name(value, "metadata.name", _NAME)

    @field_validator("namespace")
    @classmethod
    def _namespace(cls, value: str) -> str:
        return _check_name(value, "metadata.namespace", _NAMESPACE)


class _Spec(BaseModel):
    model_config = ConfigDict(extra="allow")


class UserProfile(BaseModel):
    """``spec.profile`` of a User."""

    model_config = ConfigDict(extra="allow")

    displayName: str | None = None
    email: str | None = None
    picture: str | None = None


class UserSpec(_Spec):
    """User: ``memberOf`` group refs and a profile."""

    memberOf: list[str] = Field(default_factory=list)
    profile: UserProfile | None = None


class GroupSpec(_Spec):
    """Group: ``type``, optional ``parent``, ``children`` and ``members`` refs."""

    type: str
    parent: str | None = None
    children: list[str] = Field(default_factory=list)
    members: list[str] = Field(default_factory=list)
    profile: dict[str, Any] | None = None


class ComponentSpec(_Spec):
    """Component: ``type``, ``lifecycle`` and an ``owner``; optional ``system``."""

    type: str
    lifecycle: str
    owner: str
    system: str | None = None


class ApiSpec(_Spec):
    """API: like a Component, plus its ``definition``."""

    type: str
    lifecycle: str
    owner: str
    definition: Any
    system: str | None = None


class SystemSpec(_Spec):
    """System: an ``owner`` and an optional ``domain``."""

    owner: str
    domain: str | None = None


class DomainSpec(_Spec):
    """Domain: an ``owner``."""

    owner: str


class ResourceSpec(_Spec):
    """Resource: ``type`` and ``owner``; optional ``system``."""

    type: str
    owner: str
    system: str | None = None


class LocationSpec(_Spec):
    """Location: more files to read (``target`` and/or ``targets``)."""

    type: str | None = None
    target: str | None = None
    targets: list[str] = Field(default_factory=list)


_SPECS: dict[str, type[_Spec]] = {
    "user": UserSpec,
    "group": GroupSpec,
    "component": ComponentSpec,
    "api": ApiSpec,
    "system": SystemSpec,
    "domain": DomainSpec,
    "resource": ResourceSpec,
    "location": LocationSpec,
}


class Envelope(BaseModel):
    """The outer shape every entity shares."""

    model_config = ConfigDict(extra="allow")

    apiVersion: str
    kind: str
    metadata: Metadata
    spec: dict[str, Any] = Field(default_factory=dict)

    @field_validator("apiVersion")
    @classmethod
    def _api_version(cls, value: str) -> str:
        if not _API_VERSION.match(value):
            raise ValueError(f"apiVersion {value!r} is not of the form group/version")
        return value

    @field_validator("kind")
    @classmethod
    def _kind(cls, value: str) -> str:
        if value.lower() not in _SPECS:
            raise ValueError(f"kind {value!r} is not supported; expected one of {', '.join(KNOWN_KINDS)}")
        return value


def _format(error: ValidationError, prefix: str = "") -> str:
    parts = []
    for item in error.errors():
        where = prefix + (".".join(str(p) for p in item["loc"]) or "entity")
        message = str(item["msg"]).removeprefix("Value error, ")
        parts.append(f"{where}: {message}")
    return "; ".join(parts)


def _has_nul(node: Any) -> bool:
    """Whether a NUL character hides anywhere in ``node`` (PostgreSQL text cannot store one)."""
    if isinstance(node, str):
        return "\x00" in node
    if isinstance(node, dict):
        return any(_has_nul(key) or _has_nul(value) for key, value in node.items())
    if isinstance(node, list):
        return any(_has_nul(item) for item in node)
    return False


def validate_entity(document: Any) -> dict[str, Any]:
    """Validate one YAML document and return the normalised entity dict.

    Raises :class:`EntityValidationError` naming every problem found.
    """
    if not isinstance(document, dict):
        raise EntityValidationError(f"an entity must be a mapping, got {type(document).__name__}")
    if _has_nul(document):
        raise EntityValidationError("an entity must not contain NUL characters")
    try:
        envelope = Envelope.model_validate(document)
    except ValidationError as error:
        raise EntityValidationError(_format(error)) from None
    try:
        _SPECS[envelope.kind.lower()].model_validate(envelope.spec)
    except ValidationError as error:
        raise EntityValidationError(_format(error, "spec.")) from None
    try:
        entity = envelope.model_dump(mode="json", exclude_unset=True)
    except ValueError as error:  # e.g. YAML !!binary that is not text
        raise EntityValidationError(f"the entity cannot be represented as JSON: {error}") from None
    metadata = entity["metadata"]
    metadata["namespace"] = envelope.metadata.namespace
    for owned in ("uid", "etag", "generation"):
        metadata.pop(owned, None)
    entity.setdefault("spec", {})
    entity.pop("relations", None)
    entity.pop("status", None)
    return entity
