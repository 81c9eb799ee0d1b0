"""Request validation derived from a plugin's OpenAPI document, as Backstage's OpenAPI validator does it.

Backstage's generated routers check every request with express-openapi-validator (AJV, first error
only) before the handler runs. :class:`RequestValidator` derives the same checks from the document a
plugin serves (``router.add_openapi``), so the document and the behaviour cannot drift. In order:

1. a route with a JSON request body refuses any other media type, and a body without one
   (``unsupported media type text/plain``, ``unsupported media type undefined``);
2. query parameters: an unknown name (``Unknown query parameter 'sort'``), an empty value
   (``Empty value found for query parameter 'topic'``), then each parameter's schema in document
   order, strings coerced as AJV does (``request/query/read must be equal to one of the allowed
   values: true, false``);
3. the JSON body against the operation's schema (``request/body/payload/topic must be string``);
   an empty JSON body is validated as ``{}``, as Express's JSON parser reads it.

Every failure is an :class:`~host.errors.InputError` (400). Operations the document does not list
are not checked here. Valid requests are checked by ``jsonschema_rs`` (microseconds); only a
failing one goes through ``jsonschema``, whose errors come in the (AJV) keyword order the
document was rearranged into, for the message.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import parse_qsl

import jsonschema_rs

from host.errors import InputError

if TYPE_CHECKING:
    from jsonschema import Draft202012Validator, ValidationError

#: Keyword order of AJV's rule groups (untyped, number, string, array, object), so that the first
#: error jsonschema reports is the one AJV would report.
_KEYWORD_ORDER = (
    "$ref", "type", "const", "enum", "not", "anyOf", "oneOf", "allOf",
    "maximum", "minimum", "exclusiveMaximum", "exclusiveMinimum", "multipleOf",
    "maxLength", "minLength", "pattern", "format",
    "maxItems", "minItems", "uniqueItems", "prefixItems", "items", "contains",
    "maxProperties", "minProperties", "required", "propertyNames", "additionalProperties",
    "dependentRequired", "properties", "patternProperties",
)  # fmt: skip
_RANK = {keyword: index for index, keyword in enumerate(_KEYWORD_ORDER)}
_METHODS = ("get", "put", "post", "delete", "patch", "head", "options")
#: The document's URI in each validator's registry; local ``$ref``s are rewritten to point into it.
_DOCUMENT_URI = "urn:greenroom:openapi"


def normalise_template(path: str) -> str:
    """A path template with every parameter written ``{}`` (``/notifications/{id}`` -> ``/notifications/{}``)."""
    return re.sub(r"\{[^}]*\}", "{}", path.rstrip("/") or "/")


def _ajv_order(schema: Any) -> Any:
    """A copy of ``schema`` in AJV's keyword order, recursively, local ``$ref``s made absolute."""
    if isinstance(schema, list):
        return [_ajv_order(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    ordered: dict[str, Any] = {}
    for key in sorted(schema, key=lambda key: _RANK.get(key, len(_RANK))):
        value = schema[key]
        if key == "$ref" and isinstance(value, str) and value.startswith("#"):
            ordered[key] = _DOCUMENT_URI + value
        else:
            ordered[key] = value if key in ("enum", "const", "required", "example", "default") else _ajv_order(value)
    return ordered


@dataclass
class _Parameter:
    name: str
    schema: dict[str, Any]
    is_array: bool
    allow_empty: bool


@dataclass
class _Schema:
    """One schema, compiled twice: a fast validity check and, on the first failure, a validator that explains it.

    ``jsonschema`` is imported only then, so a worker that never sees a bad request never loads it.
    """

    fast: Any
    schema: dict[str, Any]
    document: dict[str, Any]

    @cached_property
    def explain(self) -> Draft202012Validator:
        """The ``jsonschema`` validator of :attr:`schema`, its ``$ref``s resolved in :attr:`document`."""
        from jsonschema import Draft202012Validator
        from referencing import Registry, Resource
        from referencing.jsonschema import DRAFT202012

        resource = Resource.from_contents(self.document, default_specification=DRAFT202012)
        registry: Registry[Any] = Registry().with_resource(_DOCUMENT_URI, resource)
        return Draft202012Validator(self.schema, registry=registry)

    def raise_first(self, instance: Any, prefix: str) -> None:
        """Raise an ``InputError`` with AJV's message for the first failure, if any."""
        if self.fast.is_valid(instance):
            return
        error = next(self.explain.iter_errors(instance), None)
        if error is not None:
            raise InputError(", ".join(_messages(error, prefix)))


@dataclass
class _Operation:
    parameters: dict[str, _Parameter] = field(default_factory=dict)
    body_media: tuple[str, ...] = ()
    body_schema: _Schema | None = None
    query_schema: _Schema | None = None


class RequestValidator:
    """Checks requests against the operations of one OpenAPI 3.1 document."""

    def __init__(self, document: Mapping[str, Any]) -> None:
        ordered = _ajv_order(dict(document))
        self._document = ordered
        self._fast_registry = jsonschema_rs.Registry([(_DOCUMENT_URI, ordered)])
        self._operations: dict[tuple[str, str], _Operation] = {}
        for path, item in ordered.get("paths", {}).items():
            shared = item.get("parameters", [])
            for method in _METHODS:
                if method in item:
                    operation = item[method]
                    parameters = [*shared, *operation.get("parameters", [])]
                    self._operations[(method.upper(), normalise_template(path))] = self._compile(
                        parameters, operation.get("requestBody")
                    )

    @property
    def paths(self) -> set[tuple[str, str]]:
        """Every ``(METHOD, normalised path template)`` the document lists."""
        return set(self._operations)

    def _resolve(self, node: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in node and len(node) == 1:
            target: Any = self._document
            for part in node["$ref"].removeprefix(_DOCUMENT_URI).removeprefix("#/").split("/"):
                target = target[part]
            node = target
        return node

    def _validator(self, schema: dict[str, Any]) -> _Schema:
        return _Schema(
            fast=jsonschema_rs.Draft202012Validator(schema, registry=self._fast_registry, validate_formats=False),
            schema=schema,
            document=self._document,
        )

    def _compile(self, parameters: Iterable[dict[str, Any]], body: dict[str, Any] | None) -> _Operation:
        operation = _Operation()
        properties: dict[str, Any] = {}
        required: list[str] = []
        for raw in parameters:
            parameter = self._resolve(raw)
            if parameter.get("in") != "query":
                continue
            schema = parameter.get("schema", {})
            resolved = self._resolve(schema)
            operation.parameters[parameter["name"]] = _Parameter(
                name=parameter["name"],
                schema=resolved,
                is_array=resolved.get("type") == "array",
                allow_empty=bool(parameter.get("allowEmptyValue")),
            )
            properties[parameter["name"]] = schema
            if parameter.get("required"):
                required.append(parameter["name"])
        operation.query_schema = self._validator({"type": "object", "properties": properties, "required": required})
        if body is not None:
            body = self._resolve(body)
            content = body.get("content", {})
            operation.body_media = tuple(media.lower() for media in content)
            schema = next((entry.get("schema") for entry in content.values() if "schema" in entry), None)
            if schema is not None:
                operation.body_schema = self._validator(schema)
        return operation

    def operation(self, method: str, template: str) -> _Operation | None:
        """The compiled operation of ``method`` on a route template, if the document lists it."""
        return self._operations.get((method.upper(), normalise_template(template)))

    def check_media_type(self, operation: _Operation, content_type: str | None) -> None:
        """Refuse a request body that is not JSON on an operation that takes one."""
        if not operation.body_media:
            return
        media = (content_type or "").split(";")[0].strip().lower()
        if not media or media not in operation.body_media:
            raise InputError(f"unsupported media type {media or 'undefined'}")

    def check_query(self, operation: _Operation, query_string: str) -> None:
        """Unknown names, empty values and each parameter's schema, in that order."""
        values: dict[str, list[str]] = {}
        for name, value in parse_qsl(query_string, keep_blank_values=True):
            values.setdefault(name, []).append(value)
        for name in values:
            if name not in operation.parameters:
                raise InputError(f"Unknown query parameter '{name}'")
        for name, raw in values.items():
            if not operation.parameters[name].allow_empty and any(value == "" for value in raw):
                raise InputError(f"Empty value found for query parameter '{name}'")
        query: dict[str, Any] = {}
        for name, parameter in operation.parameters.items():
            if name in values:
                raw = values[name]
                query[name] = (
                    [_coerce(item, parameter.schema.get("items", {})) for item in raw]
                    if (parameter.is_array)
                    else _coerce(raw[0], parameter.schema)
                    if len(raw) == 1
                    else raw
                )
        assert operation.query_schema is not None
        operation.query_schema.raise_first(query, "request/query")

    def check_body(self, operation: _Operation, body: Any) -> None:
        """Validate a parsed JSON body (``None`` when empty, read as ``{}``)."""
        if operation.body_schema is not None:
            operation.body_schema.raise_first({} if body is None else body, "request/body")


_NUMBER = re.compile(r"^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$")


def _coerce(value: str, schema: dict[str, Any]) -> Any:
    """Coerce a query string to the schema's type as AJV's ``coerceTypes`` does; leave it if it cannot be."""
    kind = schema.get("type")
    if kind in ("integer", "number") and _NUMBER.match(value):
        number = float(value)
        return int(number) if number.is_integer() and abs(number) < 2**63 else number
    if kind == "boolean" and value in ("true", "false"):
        return value == "true"
    return value


def _pointer(prefix: str, path: Iterable[Any]) -> str:
    return "/".join([prefix, *(str(part) for part in path)])


def _messages(error: ValidationError, prefix: str) -> list[str]:
    """AJV's messages for one jsonschema error (several for ``oneOf``/``anyOf``, branch errors first)."""
    where = _pointer(prefix, error.absolute_path)
    keyword, value = error.validator, cast(Any, error.validator_value)
    if keyword in ("oneOf", "anyOf") and error.context:
        first_per_branch: dict[Any, ValidationError] = {}
        for sub in error.context:
            first_per_branch.setdefault(sub.schema_path[0], sub)
        nested = [message for sub in first_per_branch.values() for message in _messages(sub, prefix)]
        suffix = "must match exactly one schema in oneOf" if keyword == "oneOf" else "must match a schema in anyOf"
        return [*nested, f"{where} {suffix}"]
    if keyword == "required":
        missing = next(
            (name for name in value if isinstance(error.instance, dict) and name not in error.instance), value[0]
        )
        return [f"{where} must have required property '{missing}'"]
    text: Callable[[], str] | None = {
        "type": lambda: f"must be {','.join(value) if isinstance(value, list) else value}",
        "enum": lambda: "must be equal to one of the allowed values: " + ", ".join(str(item) for item in value),
        "const": lambda: "must be equal to constant",
        "minimum": lambda: f"must be >= {value}",
        "maximum": lambda: f"must be <= {value}",
        "exclusiveMinimum": lambda: f"must be > {value}",
        "exclusiveMaximum": lambda: f"must be < {value}",
        "minLength": lambda: f"must NOT have fewer than {value} characters",
        "maxLength": lambda: f"must NOT have more than {value} characters",
        "minItems": lambda: f"must NOT have fewer than {value} items",
        "maxItems": lambda: f"must NOT have more than {value} items",
        "pattern": lambda: f'must match pattern "{value}"',
        "additionalProperties": lambda: "must NOT have additional properties",
        "not": lambda: "must NOT be valid",
    }.get(str(keyword))
    return [f"{where} {text() if text else error.message}"]
