"""The OpenAPI 3.1 document of ``/api/catalog``.

The document describes what the routes in :mod:`plugin_catalog.api` put on
the wire; the entity metadata schema comes from the pydantic model.
``tests/fuzz`` runs schemathesis against it, so a route that answers
something this document does not allow is a failing test. The host
validates every request against it (:mod:`host.request_validation`): a
query parameter not listed here is a 400, as in Backstage.
"""

from __future__ import annotations

from typing import Any

from host import json_body, openapi_document, path_param, pydantic_schemas, query_param, ref, responses
from plugin_catalog.models import Metadata

# -- the catalog document ------------------------------------------------------------

_RELATION = {
    "type": "object",
    "required": ["type", "targetRef"],
    "properties": {"type": {"type": "string"}, "targetRef": {"type": "string"}},
}

_ENTITY_PROPERTIES = {
    "apiVersion": {"type": "string"},
    "kind": {"type": "string"},
    "metadata": ref("Metadata"),
    "spec": {"type": "object"},
    "relations": {"type": "array", "items": ref("Relation")},
}

_FILTER = query_param(
    "filter",
    {"type": "array", "items": {"type": "string"}},
    "`key=value,key2=value2` (ANDed); repeated parameters are ORed; a bare key means the field exists",
)
_FIELDS = query_param("fields", {"type": "array", "items": {"type": "string"}}, "project to these dotted fields")


def _paths() -> dict[str, Any]:
    return {
        "/entities/by-name/{kind}/{namespace}/{name}": {
            "get": {
                "operationId": "getEntityByName",
                "summary": "One entity by kind, namespace and name",
                "parameters": [
                    path_param("kind", "entity kind"),
                    path_param("namespace", "entity namespace"),
                    path_param("name", "entity name"),
                ],
                "responses": responses(ref("Entity"), 400, 401, 404),
            }
        },
        "/entities/by-uid/{uid}": {
            "get": {
                "operationId": "getEntityByUid",
                "summary": "One entity by metadata.uid",
                "parameters": [path_param("uid", "metadata.uid")],
                "responses": responses(ref("Entity"), 400, 401, 404),
            }
        },
        "/entities/by-query": {
            "get": {
                "operationId": "queryEntities",
                "summary": "A page of matching entities",
                "parameters": [
                    _FIELDS,
                    query_param("limit", {"type": "integer", "minimum": 0}, "page size (default 200, no maximum)"),
                    query_param("offset", {"type": "integer", "minimum": 0}, "rows of the first page to skip"),
                    query_param(
                        "orderField",
                        {"type": "array", "items": {"type": "string"}},
                        "`field` or `field,asc|desc`, any field path; entities without it are left "
                        "out; only the first is used",
                    ),
                    query_param(
                        "cursor",
                        {"type": "string", "minLength": 1},
                        "opaque cursor of a previous page (carries filter, order and full-text filter)",
                    ),
                    _FILTER,
                    query_param(
                        "totalItems",
                        {"type": "string", "enum": ["include", "exclude"]},
                        "`exclude` answers `totalItems: 0` without counting",
                    ),
                    query_param(
                        "fullTextFilterTerm",
                        {"type": "string"},
                        "case-insensitive substring one of `fullTextFilterFields` must contain",
                    ),
                    query_param(
                        "fullTextFilterFields",
                        {"type": "array", "items": {"type": "string"}},
                        "fields `fullTextFilterTerm` searches (comma-separated or repeated); default "
                        "the order field, else `metadata.uid`",
                    ),
                ],
                "responses": responses(ref("EntityPage"), 400, 401),
            }
        },
        "/entities/by-refs": {
            "post": {
                "operationId": "getEntitiesByRefs",
                "summary": "Entities by ref, in request order (null where missing, malformed or filtered out)",
                "parameters": [_FILTER],
                "requestBody": {"required": True, **json_body(ref("EntitiesByRefsRequest"), "refs to look up")},
                "responses": responses(
                    {
                        "type": "object",
                        "required": ["items"],
                        "properties": {
                            "items": {"type": "array", "items": {"anyOf": [ref("EntityFields"), {"type": "null"}]}}
                        },
                    },
                    400,
                    401,
                ),
            }
        },
        "/entity-facets": {
            "get": {
                "operationId": "getEntityFacets",
                "summary": "Distinct values of fields, with entity counts",
                "parameters": [
                    query_param(
                        "facet",
                        {"type": "array", "items": {"type": "string"}, "minItems": 1},
                        "dotted field name (repeatable)",
                        required=True,
                    ),
                    _FILTER,
                ],
                "responses": responses(ref("EntityFacets"), 400, 401),
            }
        },
        "/refresh": {
            "post": {
                "operationId": "refreshCatalog",
                "summary": "Re-read every location now (service principals only)",
                "responses": responses(ref("RefreshReport"), 400, 401, 403),
            }
        },
    }


def _schemas() -> dict[str, Any]:
    return {
        **pydantic_schemas([(Metadata, "serialization")]),
        "Relation": _RELATION,
        "EntityFields": {
            "type": "object",
            "description": "An entity, possibly projected by `fields`",
            "properties": _ENTITY_PROPERTIES,
        },
        "Entity": {
            "type": "object",
            "required": ["apiVersion", "kind", "metadata", "spec", "relations"],
            "properties": _ENTITY_PROPERTIES,
        },
        "EntityPage": {
            "type": "object",
            "required": ["items", "totalItems", "pageInfo"],
            "properties": {
                "items": {"type": "array", "items": ref("EntityFields")},
                "totalItems": {"type": "integer", "minimum": 0},
                "pageInfo": {
                    "type": "object",
                    "properties": {"nextCursor": {"type": "string"}, "prevCursor": {"type": "string"}},
                    "additionalProperties": False,
                },
            },
        },
        "EntitiesByRefsRequest": {
            "type": "object",
            "required": ["entityRefs"],
            "properties": {
                "entityRefs": {"type": "array", "items": {"type": "string"}},
                "fields": {"type": "array", "items": {"type": "string"}},
            },
        },
        "EntityFacets": {
            "type": "object",
            "required": ["facets"],
            "properties": {
                "facets": {
                    "type": "object",
                    "additionalProperties": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["value", "count"],
                            "properties": {"value": {"type": "string"}, "count": {"type": "integer", "minimum": 1}},
                        },
                    },
                }
            },
        },
        "RefreshReport": {
            "type": "object",
            "required": ["entities", "added", "updated", "removed", "kept", "errors"],
            "properties": {
                "entities": {"type": "integer", "minimum": 0},
                "added": {"type": "integer", "minimum": 0},
                "updated": {"type": "integer", "minimum": 0},
                "removed": {"type": "integer", "minimum": 0},
                "kept": {
                    "type": "integer",
                    "minimum": 0,
                    "description": "entities kept from locations that could not be read or parsed",
                },
                "errors": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["location", "reason"],
                        "properties": {
                            "location": {"type": "string"},
                            "reason": {"type": "string"},
                            "entityRef": {"type": "string"},
                        },
                    },
                },
            },
        },
    }


def build_openapi_document() -> dict[str, Any]:
    """The OpenAPI document served at ``/api/catalog/openapi.json``."""
    return openapi_document(
        title="Greenroom catalog API",
        description="Backstage-compatible catalog reads. Every route needs a user or service token.",
        paths=_paths(),
        schemas=_schemas(),
    )
