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

import asyncio
import contextlib
from collections.abc import Awaitable
from typing import Any, cast

import falcon

from host.errors import InputError, NotFoundError
from plugin_catalog.catalog import Catalog
from plugin_catalog.openapi import build_openapi_document
from plugin_catalog.params import operation_parameters, read_query
from plugin_catalog.query import parse_fields, parse_filter_params, parse_full_text_fields, parse_order_field
from plugin_catalog.refresh import CatalogRefresher
from plugin_catalog.refs import parse_entity_ref, stringify_entity_ref

ALLOWED = ("user", "service")
_DOCUMENT = build_openapi_document()


async def answer(req: falcon.Request, resp: falcon.Response, work: Awaitable[Any]) -> None:
    """Await ``work`` and send its result, cancelling it (and its database query) if the client disconnects first.

    On PostgreSQL a cancelled asyncpg query sends the server a cancel
    request, so an abandoned catalog query stops using a backend at once.
    """
    # NOTE(catalog): Falcon keeps the ASGI receive callable privately; after the body it only yields a disconnect.
    receive = getattr(req, "_receive", None)
    task = asyncio.ensure_future(work)
    if receive is None:
        resp.media = await task
        return

    async def disconnected() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    watcher = asyncio.ensure_future(disconnected())
    try:
        await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watcher.cancel()
    if not task.done():
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        resp.status = falcon.HTTP_204  # nobody is listening; the server drops it
        return
    resp.media = task.result()


def _query(req: falcon.Request, path: str) -> dict[str, Any]:
    """The query parameters of ``req``, validated against the operation of ``path`` in the served document."""
    return read_query(req.query_string, operation_parameters(_DOCUMENT, path, req.method.lower()))


class _Resource:
    path = ""
    """The route's path in the OpenAPI document (its query parameters come from there)."""

    def __init__(self, catalog: Catalog, http_auth: Any) -> None:
        self._catalog = catalog
        self._http_auth = http_auth

    async def _authorize(self, req: falcon.Request, allow: tuple[str, ...] = ALLOWED) -> dict[str, Any]:
        """Authenticate, then validate the query string; returns the query parameters."""
        await self._http_auth.credentials(req, allow=allow)
        return _query(req, self.path)


class EntityByName(_Resource):
    """``GET /entities/by-name/{kind}/{namespace}/{name}``."""

    path = "/entities/by-name/{kind}/{namespace}/{name}"

    async def on_get(self, req: falcon.Request, resp: falcon.Response, kind: str, namespace: str, name: str) -> None:
        await self._authorize(req)
        ref = stringify_entity_ref(*parse_entity_ref(f"{kind}:{namespace}/{name}"))
        entity = await self._catalog.get_entity_by_ref(ref)
        if entity is None:
            raise NotFoundError(f"No entity named '{name}' found, with kind '{kind}' in namespace '{namespace}'")
        resp.media = entity


class EntityByUid(_Resource):
    """``GET /entities/by-uid/{uid}``."""

    path = "/entities/by-uid/{uid}"

    async def on_get(self, req: falcon.Request, resp: falcon.Response, uid: str) -> None:
        await self._authorize(req)
        entity = None if "\x00" in uid else await self._catalog.get_entity_by_uid(uid)
        if entity is None:
            raise NotFoundError(f"No entity with uid {uid}")
        resp.media = entity


class EntitiesByQuery(_Resource):
    """``GET /entities/by-query`` (parameters as Backstage's: see the OpenAPI document)."""

    path = "/entities/by-query"

    async def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        params = await self._authorize(req)
        fields = parse_fields(params.get("fields", []))
        if "cursor" in params:
            await answer(req, resp, self._catalog.query_entities(
                limit=params.get("limit"), cursor=params["cursor"], fields=fields))
            return
        order_field, descending = parse_order_field(params.get("orderField", []))
        await answer(req, resp, self._catalog.query_entities(
            limit=params.get("limit"),
            offset=params.get("offset", 0),
            order_field=order_field,
            descending=descending,
            fields=fields,
            parsed_filters=parse_filter_params(params.get("filter", [])),
            full_text=params.get("fullTextFilterTerm"),
            full_text_fields=parse_full_text_fields(params.get("fullTextFilterFields", [])),
            total_items=params.get("totalItems", "include") == "include",
        ))


class EntitiesByRefs(_Resource):
    """``POST /entities/by-refs?filter=...`` with ``{entityRefs: [...], fields?: [...]}``.

    As in Backstage, each ref is only lowercased: a malformed or short ref
    (``user:guest``) gives ``null`` in its slot, as does an entity the filter
    leaves out.
    """

    path = "/entities/by-refs"

    async def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        params = await self._authorize(req)
        body = await req.get_media(default_when_empty=None)
        if not isinstance(body, dict):
            raise InputError("Request body must be a JSON object with an entityRefs array")
        if "entityRefs" not in body:
            raise InputError("request/body must have required property 'entityRefs'")
        refs = body["entityRefs"]
        if not isinstance(refs, list):
            raise InputError("request/body/entityRefs must be array")
        for index, ref in enumerate(refs):
            if not isinstance(ref, str):
                raise InputError(f"request/body/entityRefs/{index} must be string")
        fields = body.get("fields")
        if fields is not None and not isinstance(fields, list):
            raise InputError("request/body/fields must be array")
        for index, field in enumerate(fields or []):
            if not isinstance(field, str):
                raise InputError(f"request/body/fields/{index} must be string")
        await answer(req, resp, self._by_refs(cast(list[str], refs), fields, params))

    async def _by_refs(self, refs: list[str], fields: list[str] | None, params: dict[str, Any]) -> dict[str, Any]:
        filters = parse_filter_params(params.get("filter", []))
        return {"items": await self._catalog.get_entities_by_refs(refs, parse_fields(fields or []), filters, exact=True)}


class EntityFacets(_Resource):
    """``GET /entity-facets?facet=kind&facet=spec.type&filter=...``."""

    path = "/entity-facets"

    async def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        params = await self._authorize(req)
        facets = list(dict.fromkeys(facet for facet in params["facet"] if facet))
        await answer(req, resp, self._catalog.facets(facets, parse_filter_params(params.get("filter", []))))


class Refresh(_Resource):
    """``POST /refresh``: re-read every location now (service principals only)."""

    path = "/refresh"

    def __init__(self, catalog: Catalog, http_auth: Any, refresher: CatalogRefresher) -> None:
        super().__init__(catalog, http_auth)
        self._refresher = refresher

    async def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        await self._authorize(req, allow=("service",))
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
