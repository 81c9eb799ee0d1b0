"""Helpers for writing a plugin's OpenAPI 3.1 document (served by ``router.add_openapi``).

Every document gets ``bearerAuth`` on every operation and Backstage's error
body as the ``Error`` schema, so fuzzers can check error responses too.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

OPENAPI_VERSION = "3.1.0"
JSON = "application/json"

#: Backstage's error body, as :func:`host.errors.error_body` builds it.
ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error", "request", "response"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["name", "message"],
            "properties": {
                "name": {"type": "string"},
                "message": {"type": "string"},
                "cause": {
                    "type": "object",
                    "properties": {"name": {"type": "string"}, "message": {"type": "string"}},
                },
            },
        },
        "request": {
            "type": "object",
            "required": ["method", "url"],
            "properties": {"method": {"type": "string"}, "url": {"type": "string"}},
        },
        "response": {
            "type": "object",
            "required": ["statusCode"],
            "properties": {"statusCode": {"type": "integer"}},
        },
    },
}

_ERROR_DESCRIPTIONS = {
    400: "InputError: the request is malformed",
    401: "AuthenticationError: missing or invalid credentials",
    403: "NotAllowedError: this principal type may not call the route",
    404: "NotFoundError: no such resource, or not visible to the caller",
}


def json_body(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    """A response (or request body) object with a JSON ``schema``."""
    return {"description": description, "content": {JSON: {"schema": schema}}}


def ref(name: str) -> dict[str, str]:
    """``{"$ref": "#/components/schemas/<name>"}``."""
    return {"$ref": f"#/components/schemas/{name}"}


def responses(ok: dict[str, Any], *errors: int) -> dict[str, Any]:
    """``200`` with the ``ok`` schema plus the listed error statuses, each with the error body."""
    out: dict[str, Any] = {"200": json_body(ok)}
    for status in errors:
        out[str(status)] = json_body(ref("Error"), _ERROR_DESCRIPTIONS[status])
    return out


def query_param(name: str, schema: dict[str, Any], description: str, *, required: bool = False) -> dict[str, Any]:
    """A query parameter; arrays are repeated (``?a=1&a=2``)."""
    param: dict[str, Any] = {
        "name": name,
        "in": "query",
        "required": required,
        "schema": schema,
        "description": description,
    }
    if schema.get("type") == "array":
        param.update(style="form", explode=True)
    return param


def path_param(name: str, description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    """A required path parameter (a string unless ``schema`` says otherwise)."""
    schema = schema or {"type": "string"}
    return {"name": name, "in": "path", "required": True, "schema": schema, "description": description}


def pydantic_schemas(models: Iterable[tuple[type[BaseModel], JsonSchemaMode]]) -> dict[str, Any]:
    """Component schemas of pydantic ``models`` (and the models they use), ``$ref``s pointing at components."""
    _, defs = models_json_schema(list(models), ref_template="#/components/schemas/{model}")
    return dict(defs.get("$defs", {}))


def _with_input_error(operation: Any) -> Any:
    if not isinstance(operation, dict) or "responses" not in operation or "400" in operation["responses"]:
        return operation
    return {
        **operation,
        "responses": {**operation["responses"], "400": json_body(ref("Error"), _ERROR_DESCRIPTIONS[400])},
    }


def openapi_document(*, title: str, description: str, paths: dict[str, Any], schemas: dict[str, Any]) -> dict[str, Any]:
    """A complete OpenAPI 3.1 document: ``bearerAuth`` on every operation, the shared ``Error`` schema.

    Every operation documents the 400 the host's request validator may answer (an unknown query
    parameter, a bad value, a body that is not JSON; :mod:`host.request_validation`).
    """
    return {
        "openapi": OPENAPI_VERSION,
        "info": {"title": title, "version": "1", "description": description},
        "security": [{"bearerAuth": []}],
        "paths": {
            path: {method: _with_input_error(operation) for method, operation in item.items()}
            for path, item in paths.items()
        },
        "components": {
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}},
            "schemas": {"Error": ERROR_SCHEMA, **schemas},
        },
    }
