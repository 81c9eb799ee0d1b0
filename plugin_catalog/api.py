"""REST routes under ``/api/catalog`` (Backstage's catalog API shapes).

=======  ==========================================  ==============================================
method   path                                        answer
=======  ==========================================  ==============================================
GET      ``/entities/by-name/{kind}/{ns}/{name}``    the entity, or 404
GET      ``/entities/by-uid/{uid}``                  the entity, or 404
GET      ``/entities/by-query``                      ``{items, totalItems, pageInfo}``
POST     ``/entities/by-refs``                       ``{items: [entity | null, ...]}`` in request order
GET      ``/entity-facets?facet=kind``               ``{facets: {kind: [{value, count}]}}``
POST     ``/refresh``                                re-reads every location; returns the report
=======  ==========================================  ==============================================

Every read needs user or service credentials; ``/refresh`` needs a service
principal (a user token gets 403 ``NotAllowedError``).
"""

from __future__ import annotations

from typing import Any

import falcon
from falcon.uri import parse_query_string

from host.errors import InputError, NotFoundError
from plugin_catalog.catalog import DEFAULT_LIMIT, MAX_LIMIT, Catalog
from plugin_catalog.query import parse_fields, parse_filter_params, parse_limit, parse_order_field
from plugin_catalog.refresh import CatalogRefresher
from plugin_catalog.refs import parse_entity_ref, stringify_entity_ref

ALLOWED = ("user", "service")


def _params(req: falcon.Request) -> dict[str, list[str]]:
    """Query parameters as lists, independent of the app's CSV parsing options; NUL characters are refused."""
    parsed = parse_query_string(req.query_string, keep_blank=True, csv=False)
    params = {key: value if isinstance(value, list) else [value] for key, value in parsed.items()}
    if any("\x00" in text for key, values in params.items() for text in (key, *values)):
        raise InputError("Query parameters must not contain NUL characters")
    return params


class _Resource:
    def __init__(self, catalog: Catalog, http_auth: Any) -> None:
        self._catalog = catalog
        self._http_auth = http_auth

    async def _authorize(self, req: falcon.Request) -> None:
        await self._http_auth.credentials(req, allow=ALLOWED)


class EntityByName(_Resource):
    """``GET /entities/by-name/{kind}/{namespace}/{name}``."""

    async def on_get(self, req: falcon.Request, resp: falcon.Response, kind: str, namespace: str, name: str) -> None:
        await self._authorize(req)
        ref = stringify_entity_ref(*parse_entity_ref(f"{kind}:{namespace}/{name}"))
        entity = await self._catalog.get_entity_by_ref(ref)
        if entity is None:
            raise NotFoundError(f"No entity named '{name}' found, with kind '{kind}' in namespace '{namespace}'")
        resp.media = entity


class EntityByUid(_Resource):
    """``GET /entities/by-uid/{uid}``."""

    async def on_get(self, req: falcon.Request, resp: falcon.Response, uid: str) -> None:
        await self._authorize(req)
        entity = None if "\x00" in uid else await self._catalog.get_entity_by_uid(uid)
        if entity is None:
            raise NotFoundError(f"No entity with uid {uid}")
        resp.media = entity


class EntitiesByQuery(_Resource):
    """``GET /entities/by-query?filter=...&limit=...&cursor=...&orderField=...&fields=...``."""

    async def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        await self._authorize(req)
        params = _params(req)
        limits = params.get("limit", [])
        cursors = params.get("cursor", [])
        if len(limits) > 1 or len(cursors) > 1:
            raise InputError("limit and cursor may be given once")
        order_field, descending = parse_order_field(params.get("orderField", []))
        resp.media = await self._catalog.query_entities(
            limit=parse_limit(limits[0] if limits else None, DEFAULT_LIMIT, MAX_LIMIT),
            cursor=cursors[0] if cursors and cursors[0] else None,
            order_field=order_field,
            descending=descending,
            fields=parse_fields(params.get("fields", [])),
            parsed_filters=parse_filter_params(params.get("filter", [])),
        )


class EntitiesByRefs(_Resource):
    """``POST /entities/by-refs`` with ``{entityRefs: [...], fields?: [...]}``."""

    async def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        await self._authorize(req)
        body = await req.get_media(default_when_empty=None)
        if not isinstance(body, dict):
            raise InputError("Request body must be a JSON object with an entityRefs array")
        refs = body.get("entityRefs")
        if not isinstance(refs, list) or not all(isinstance(ref, str) for ref in refs):
            raise InputError("entityRefs must be an array of strings")
        fields = body.get("fields")
        if fields is not None and (not isinstance(fields, list) or not all(isinstance(f, str) for f in fields)):
            raise InputError("fields must be an array of strings")
        fields = fields or parse_fields(_params(req).get("fields", []))
        resp.media = {"items": await self._catalog.get_entities_by_refs(refs, fields)}


class EntityFacets(_Resource):
    """``GET /entity-facets?facet=kind&facet=spec.type&filter=...``."""

    async def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        await self._authorize(req)
        params = _params(req)
        facets = [facet for facet in params.get("facet", []) if facet]
        if not facets:
            raise InputError("At least one facet parameter is required")
        resp.media = await self._catalog.facets(facets, parse_filter_params(params.get("filter", [])))


class Refresh(_Resource):
    """``POST /refresh``: re-read every location now."""

    def __init__(self, catalog: Catalog, http_auth: Any, refresher: CatalogRefresher) -> None:
        super().__init__(catalog, http_auth)
        self._refresher = refresher

    async def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        await self._http_auth.credentials(req, allow=("service",))
        report = await self._refresher.refresh()
        resp.media = report.as_dict()


def add_routes(router: Any, catalog: Catalog, http_auth: Any, refresher: CatalogRefresher) -> None:
    """Mount every catalog route on the plugin router."""
    router.add_route("/entities/by-name/{kind}/{namespace}/{name}", EntityByName(catalog, http_auth))
    router.add_route("/entities/by-uid/{uid}", EntityByUid(catalog, http_auth))
    router.add_route("/entities/by-query", EntitiesByQuery(catalog, http_auth))
    router.add_route("/entities/by-refs", EntitiesByRefs(catalog, http_auth))
    router.add_route("/entity-facets", EntityFacets(catalog, http_auth))
    router.add_route("/refresh", Refresh(catalog, http_auth, refresher))
