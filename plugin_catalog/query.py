"""Query parameters of the catalog API: filters, field projection, ordering and cursors.

Filters follow Backstage: ``filter=kind=user,metadata.namespace=default``
ANDs its conditions, repeated ``filter`` parameters are ORed, a key given
twice in one filter matches any of its values, and a bare key
(``filter=spec.profile.email``) means "the field exists". Matching is
case-insensitive. In-process callers pass the same thing as dicts::

    {"kind": "user", "metadata.namespace": ["default", "ops"], "spec.profile.email": CATALOG_FILTER_EXISTS}
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable, Mapping
from typing import Any

from host import InputError
from plugin_catalog.store import Filter


class _Exists:
    def __repr__(self) -> str:
        return "CATALOG_FILTER_EXISTS"


#: Filter value meaning "the field is present, with any value".
CATALOG_FILTER_EXISTS: Any = _Exists()


def normalize_filter(spec: Mapping[str, Any] | Iterable[Mapping[str, Any]] | None) -> list[Filter] | None:
    """Turn an in-process filter (a dict, or a list of dicts ORed) into store filters."""
    if spec is None:
        return None
    items = [spec] if isinstance(spec, Mapping) else list(spec)
    filters: list[Filter] = []
    for item in items:
        if not isinstance(item, Mapping):
            raise InputError("A catalog filter must be a mapping of field to value(s)")
        one: Filter = {}
        for key, value in item.items():
            if not isinstance(key, str) or not key.strip():
                raise InputError("Catalog filter keys must be non-empty strings")
            if value is CATALOG_FILTER_EXISTS or value is True:
                _merge(one, key, None)
                continue
            values = value if isinstance(value, (list, tuple, set)) else [value]
            if not values or not all(isinstance(v, str) for v in values):
                raise InputError(f"Catalog filter values for '{key}' must be strings")
            for text in values:
                _merge(one, key, text)
        filters.append(one)
    return filters or None


def parse_filter_params(params: list[str]) -> list[Filter] | None:
    """Parse repeated ``filter`` query parameters into store filters."""
    filters: list[Filter] = []
    for param in params:
        one: Filter = {}
        for statement in param.split(","):
            statement = statement.strip()
            if not statement:
                continue
            key, sep, value = statement.partition("=")
            key = key.strip()
            if not key:
                raise InputError(
                    f"Invalid filter, '{statement}' is not a valid statement "
                    "(expected a string on the form a=b or a= or a)"
                )
            _merge(one, key, value.strip() if sep else None)
        if one:
            filters.append(one)
    return filters or None


def _merge(target: Filter, key: str, value: str | None) -> None:
    """Add a condition; ``None`` (exists) on a key absorbs any specific values."""
    key = key.strip().lower()
    if value is None or (key in target and target[key] is None):
        target[key] = None
        return
    values = target.setdefault(key, [])
    assert values is not None
    if value.lower() not in values:
        values.append(value.lower())


def filter_size(filters: list[Filter] | None) -> int:
    """How many conditions ``filters`` holds (each value, or each bare key, is one)."""
    return sum(len(values) if values else 1 for one in filters or [] for values in one.values())


def check_filter_size(filters: list[Filter] | None, limit: int) -> None:
    """Refuse filters with more than ``limit`` conditions (``catalog.query.maxFilterConditions``)."""
    size = filter_size(filters)
    if size > limit:
        raise InputError(f"The filter has {size} conditions, more than the {limit} allowed")


def parse_fields(params: list[str]) -> list[str] | None:
    """Parse ``fields=a.b,c`` (repeatable) into a list of dotted paths; array indexes are refused."""
    fields = list(dict.fromkeys(part.strip() for param in params for part in param.split(",") if part.strip()))
    for path in fields:
        if "[" in path:
            raise InputError(f'Invalid field "{path}", array type fields are not supported')
    return fields or None


def project(entity: dict[str, Any], fields: list[str] | None) -> dict[str, Any]:
    """Keep only ``fields`` (dotted paths) of ``entity``; all of it when ``fields`` is empty.

    As in Backstage, a part that is not a key is joined with the next one, so
    ``metadata.annotations.backstage.io/managed-by-location`` finds the
    annotation whose name holds dots.
    """
    if not fields:
        return entity
    out: dict[str, Any] = {}
    for path in fields:
        found = _lookup(entity, path.split("."))
        if found is None:
            continue
        keys, node = found
        target = out
        for key in keys[:-1]:
            target = target.setdefault(key, {})
        target[keys[-1]] = node
    return out


def _lookup(node: Any, parts: list[str]) -> tuple[list[str], Any] | None:
    keys: list[str] = []
    pending = ""
    for index, part in enumerate(parts):
        name = f"{pending}.{part}" if pending else part
        if isinstance(node, dict) and name in node:
            keys.append(name)
            node = node[name]
            pending = ""
        elif index + 1 < len(parts):
            pending = name
        else:
            return None
    return (keys, node) if keys and not pending else None


def parse_order_field(params: list[str]) -> tuple[str | None, bool]:
    """Parse ``orderField=field[,asc|desc]``; returns ``(field or None, descending)``.

    Any field path may be given; only the first ``orderField`` is used, as in
    Backstage.
    """
    if not params:
        return None, False
    field, *rest = params[0].split(",")
    direction = rest[0] if rest else "asc"
    if direction not in ("asc", "desc"):
        raise InputError("Invalid order field order, must be asc or desc")
    return field.strip(), direction == "desc"


def encode_cursor(state: dict[str, Any]) -> str:
    """Encode paging state as an opaque URL-safe string."""
    return base64.urlsafe_b64encode(json.dumps(state, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> dict[str, Any]:
    """Decode a cursor made by :func:`encode_cursor`; raise ``InputError`` when malformed."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        state = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise InputError("Malformed cursor") from None
    if _has_nul(state):  # PostgreSQL text cannot hold NUL characters
        raise InputError("Malformed cursor")
    if not isinstance(state, dict) or not any(_is_key(state.get(side)) for side in ("after", "before")):
        raise InputError("Malformed cursor")
    if not all(state.get(key) is None or isinstance(state.get(key), str) for key in ("orderField", "fullText")):
        raise InputError("Malformed cursor")
    text_fields = state.get("fullTextFields")
    if text_fields is not None and not (isinstance(text_fields, list) and all(isinstance(f, str) for f in text_fields)):
        raise InputError("Malformed cursor")
    filters = state.get("filters")
    if filters is not None and not (
        isinstance(filters, list)
        and all(isinstance(f, dict) and all(v is None or isinstance(v, list) for v in f.values()) for f in filters)
    ):
        raise InputError("Malformed cursor")
    return state


def _has_nul(value: Any) -> bool:
    """Whether a decoded JSON value holds a NUL character in any string."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(key) or _has_nul(item) for key, item in value.items())
    return isinstance(value, list) and any(_has_nul(item) for item in value)


def _is_key(value: Any) -> bool:
    """Whether ``value`` is a ``[sort value, entity ref]`` pair as cursors store them."""
    return isinstance(value, list) and len(value) == 2 and all(isinstance(part, str) for part in value)


def parse_full_text_fields(params: list[str]) -> list[str] | None:
    """``fullTextFilterFields`` (repeatable or comma-separated), lowercase; ``None`` when absent."""
    fields = [part.strip().lower() for param in params for part in param.split(",") if part.strip()]
    return fields or None
