"""Query-parameter validation derived from the catalog's OpenAPI document.

Each route reads its query string through :func:`read_query` with the
``parameters`` of its operation in :mod:`plugin_catalog.openapi`, so the
document and the behaviour cannot drift. The rules and messages are those of
Backstage's OpenAPI request validator (checked against a live Backstage)::

    ?sort=x              Unknown query parameter 'sort'
    ?filter=             Empty value found for query parameter 'filter'
    ?offset=-1           request/query/offset must be >= 0
    ?limit=ten           request/query/limit must be integer
    ?limit=1&limit=2     request/query/limit must be integer
    ?totalItems=some     request/query/totalItems must be equal to one of the allowed values: include, exclude
    (no facet)           request/query must have required property 'facet'
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from falcon.uri import parse_query_string

from host.errors import InputError

_INTEGER = re.compile(r"^\s*[+-]?\d+\s*$")

QueryValue = str | int | list[str]


def operation_parameters(document: Mapping[str, Any], path: str, method: str) -> list[dict[str, Any]]:
    """The query parameters of one operation of an OpenAPI document."""
    operation = document["paths"][path][method]
    return [param for param in operation.get("parameters", []) if param.get("in") == "query"]


def raw_query(query_string: str) -> dict[str, list[str]]:
    """Query parameters as lists of strings; NUL characters are refused."""
    parsed = parse_query_string(query_string, keep_blank=True, csv=False)
    params = {key: value if isinstance(value, list) else [value] for key, value in parsed.items()}
    if any("\x00" in text for key, values in params.items() for text in (key, *values)):
        raise InputError("Query parameters must not contain NUL characters")
    return params


def read_query(query_string: str, parameters: Sequence[Mapping[str, Any]]) -> dict[str, QueryValue]:
    """Validate ``query_string`` against OpenAPI ``parameters``; return the values by name.

    Arrays come back as lists of strings, integers as ``int``, strings as
    ``str``. Absent parameters are absent from the result.
    """
    given = raw_query(query_string)
    specs = {param["name"]: param for param in parameters}
    for name in given:
        if name not in specs:
            raise InputError(f"Unknown query parameter '{name}'")
    out: dict[str, QueryValue] = {}
    for name, spec in specs.items():
        values = given.get(name)
        if values is None:
            if spec.get("required"):
                raise InputError(f"request/query must have required property '{name}'")
            continue
        if values == [""]:
            raise InputError(f"Empty value found for query parameter '{name}'")
        out[name] = _coerce(name, values, spec["schema"])
    return out


def _coerce(name: str, values: list[str], schema: Mapping[str, Any]) -> QueryValue:
    where = f"request/query/{name}"
    kind = schema.get("type")
    if kind == "array":
        if "minItems" in schema and len(values) < schema["minItems"]:
            raise InputError(f"{where} must NOT have fewer than {schema['minItems']} items")
        return list(values)
    if len(values) > 1:
        raise InputError(f"{where} must be {kind}")
    value = values[0]
    if kind == "integer":
        if not _INTEGER.match(value):
            raise InputError(f"{where} must be integer")
        number = int(value)
        if "minimum" in schema and number < schema["minimum"]:
            raise InputError(f"{where} must be >= {schema['minimum']}")
        if "maximum" in schema and number > schema["maximum"]:
            raise InputError(f"{where} must be <= {schema['maximum']}")
        return number
    if "enum" in schema and value not in schema["enum"]:
        raise InputError(f"{where} must be equal to one of the allowed values: {', '.join(schema['enum'])}")
    if "minLength" in schema and len(value) < schema["minLength"]:
        raise InputError(f"{where} must NOT have fewer than {schema['minLength']} characters")
    return value
