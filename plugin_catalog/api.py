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
from collections.abc import Awaitable
from typing import Any

import falcon
from falcon.uri import parse_query_string

from host import InputError, NotFoundError, cancel_and_wait, parse_entity_ref, stringify_entity_ref
from plugin_catalog.catalog import Catalog
from plugin_catalog.query import parse_fields, parse_filter_params, parse_full_text_fields, parse_order_field
from plugin_catalog.refresh import CatalogRefresher

ALLOWED = ("user", "service")


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
        await cancel_and_wait(task)
        resp.status = falcon.HTTP_204  # nobody is listening; the server drops it
        return
    resp.media = task.result()


def _params(req: falcon.Request) -> dict[str, list[str]]:
    """Query parameters as lists of strings; NUL characters are refused.

    The host has already validated them against this plugin's OpenAPI
    document (unknown names, empty values, types: :mod:`host.request_validation`).
    """
    parsed = parse_query_string(req.query_string, keep_blank=True, csv=False)
    params = {key: value if isinstance(value, list) else [value] for key, value in parsed.items()}
    if any("\x00" in text for key, values in params.items() for text in (key, *values)):
        raise InputError("Query parameters must not contain NUL characters")
    return params


#: Larger ``limit``/``offset`` values mean "all" / "none left" and are clamped to this (Backstage answers 500).
MAX_ROWS = 2**31 - 1


def _integer(params: dict[str, list[str]], name: str) -> int | None:
    """An integer parameter the document's schema has checked (AJV coercion accepts ``1e2`` and `` 7``)."""
    return min(int(float(params[name][0])), MAX_ROWS) if name in params else None


class _Resource:
    def __init__(self, catalog: Catalog, http_auth: Any) -> None:
        self._catalog = catalog
        self._http_auth = http_auth


class EntityByName(_Resource):
    """``GET /entities/by-name/{kind}/{namespace}/{name}``."""

    async def on_get(self, req: falcon.Request, resp: falcon.Response, kind: str, namespace: str, name: str) -> None:
        await self._http_auth.credentials(req, allow=ALLOWED)
        ref = stringify_entity_ref(*parse_entity_ref(f"{kind}:{namespace}/{name}"))
        entity = await self._catalog.get_entity_by_ref(ref)
        if entity is None:
            raise NotFoundError(f"No entity named '{name}' found, with kind '{kind}' in namespace '{namespace}'")
        resp.media = entity


class EntityByUid(_Resource):
    """``GET /entities/by-uid/{uid}``."""

    async def on_get(self, req: falcon.Request, resp: falcon.Response, uid: str) -> None:
        await self._http_auth.credentials(req, allow=ALLOWED)
        entity = None if "\x00" in uid else await self._catalog.get_entity_by_uid(uid)
        if entity is None:
            raise NotFoundError(f"No entity with uid {uid}")
        resp.media = entity


class EntitiesByQuery(_Resource):
    """``GET /entities/by-query`` (parameters as Backstage's: see the OpenAPI document)."""

    async def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        params = _params(req)
        fields = parse_fields(params.get("fields", []))
        if "cursor" in params:
            await answer(
                req,
                resp,
                self._catalog.query_entities(
                    limit=_integer(params, "limit"), cursor=params["cursor"][0], fields=fields
                ),
            )
            return
        order_field, descending = parse_order_field(params.get("orderField", []))
        await answer(
            req,
            resp,
            self._catalog.query_entities(
                limit=_integer(params, "limit"),
                offset=_integer(params, "offset") or 0,
                order_field=order_field,
                descending=descending,
                fields=fields,
                parsed_filters=parse_filter_params(params.get("filter", [])),
                full_text=params.get("fullTextFilterTerm", [""])[0],
                full_text_fields=parse_full_text_fields(params.get("fullTextFilterFields", [])),
                total_items=params.get("totalItems", ["include"])[0] == "include",
            ),
        )


class EntitiesByRefs(_Resource):
    """``POST /entities/by-refs?filter=...`` with ``{entityRefs: [...], fields?: [...]}``.

    As in Backstage, each ref is only lowercased: a malformed or short ref
    (``user:guest``) gives ``null`` in its slot, as does an entity the filter
    leaves out.
    """

    async def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        params = _params(req)
        body = await req.get_media()  # its shape was checked against EntitiesByRefsRequest
        await answer(req, resp, self._by_refs(body["entityRefs"], body.get("fields"), params))

    async def _by_refs(self, refs: list[str], fields: list[str] | None, params: dict[str, Any]) -> dict[str, Any]:
        filters = parse_filter_params(params.get("filter", []))
        items = await self._catalog.get_entities_by_refs(refs, parse_fields(fields or []), filters, exact=True)
        return {"items": items}


class EntityFacets(_Resource):
    """``GET /entity-facets?facet=kind&facet=spec.type&filter=...``."""

    async def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        params = _params(req)
        facets = list(dict.fromkeys(facet for facet in params["facet"] if facet))
        await answer(req, resp, self._catalog.facets(facets, parse_filter_params(params.get("filter", []))))


class Refresh(_Resource):
    """``POST /refresh``: re-read every location now (service principals only)."""

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
