"""The catalog's read API over its store, shared by the REST routes and the service.

:class:`Catalog` takes and returns plain JSON-ready values in Backstage's
shapes; it raises :class:`host.errors.InputError` for bad input.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from host import normalize_entity_ref
from plugin_catalog.query import check_filter_size, decode_cursor, encode_cursor, normalize_filter, project
from plugin_catalog.relations import MEMBER_OF
from plugin_catalog.resolution import resolve_users
from plugin_catalog.store import CatalogStore, Filter, Query

#: Page size of ``query_entities`` when no limit is given (Backstage's; there is no maximum, as there).
DEFAULT_LIMIT = 200
#: Default of ``catalog.query.maxFilterConditions``: most conditions one request's filter may hold.
DEFAULT_MAX_FILTER_CONDITIONS = 500

FilterSpec = Mapping[str, Any] | Iterable[Mapping[str, Any]] | None


def _as_list(refs: list[str] | str | None) -> list[str]:
    if refs is None:
        return []
    return [refs] if isinstance(refs, str) else list(refs)


class Catalog:
    """Entity look-ups, queries, facets and user resolution."""

    def __init__(self, store: CatalogStore, max_filter_conditions: int = DEFAULT_MAX_FILTER_CONDITIONS) -> None:
        self.store = store
        self.max_filter_conditions = max_filter_conditions

    async def get_entity_by_ref(self, ref: str) -> dict[str, Any] | None:
        """The entity with this ref (``kind:namespace/name``; namespace defaults to ``default``)."""
        canonical = normalize_entity_ref(ref)
        return (await self.store.get_entities([canonical])).get(canonical)

    async def get_entity_by_uid(self, uid: str) -> dict[str, Any] | None:
        """The entity whose ``metadata.uid`` is ``uid``."""
        return await self.store.get_entity_by_uid(uid)

    async def get_entities_by_refs(
        self,
        refs: list[str],
        fields: list[str] | None = None,
        filters: list[Filter] | None = None,
        *,
        exact: bool = False,
    ) -> list[dict[str, Any] | None]:
        """Entities in the order of ``refs``, ``None`` where one does not exist or fails ``filters``.

        Refs are normalised (``user:alice`` finds ``user:default/alice``);
        with ``exact`` they are only lowercased, as Backstage's ``by-refs``
        does, so a short or malformed ref finds nothing.
        """
        check_filter_size(filters, self.max_filter_conditions)
        if exact:
            canonical = [ref.lower() if "\x00" not in ref else None for ref in refs]
        else:
            canonical = [normalize_entity_ref(ref) for ref in refs]
        found = await self.store.get_entities([ref for ref in canonical if ref is not None], filters)
        return [project(found[ref], fields) if ref in found else None for ref in canonical]

    async def query_entities(
        self,
        filter: FilterSpec = None,
        limit: int | None = None,
        cursor: str | None = None,
        *,
        order_field: str | None = None,
        descending: bool = False,
        fields: list[str] | None = None,
        parsed_filters: list[Filter] | None = None,
        offset: int = 0,
        full_text: str | None = None,
        full_text_fields: list[str] | None = None,
        total_items: bool = True,
    ) -> dict[str, Any]:
        """One page of matching entities: ``{items, totalItems, pageInfo}``.

        With ``cursor`` the filter, order, full-text filter and total mode
        come from the cursor; only ``limit`` and ``fields`` still apply.
        ``offset`` skips rows of a first page; ``total_items=False`` answers
        ``totalItems: 0`` without counting. ``full_text`` (trimmed,
        case-insensitive) must be contained in one of ``full_text_fields``.
        """
        page_size = DEFAULT_LIMIT if limit is None else limit
        if cursor:
            state = decode_cursor(cursor)
            query = Query(
                state.get("filters"),
                state.get("orderField"),
                bool(state.get("desc")),
                state.get("fullText"),
                state.get("fullTextFields"),
            )
            total_items = not state.get("noTotal")
            after, before, offset = state.get("after"), state.get("before"), 0
        else:
            filters = parsed_filters if parsed_filters is not None else normalize_filter(filter)
            term = (full_text or "").strip().lower() or None
            query = Query(filters, order_field, descending, term, full_text_fields)
            after = before = None
        check_filter_size(query.filters, self.max_filter_conditions)
        page = await self.store.query_page(
            query,
            limit=page_size,
            offset=offset,
            count=total_items,
            after=(after[0], after[1]) if after else None,
            before=(before[0], before[1]) if before else None,
        )
        base = {
            "filters": query.filters,
            "orderField": query.order_field,
            "desc": query.descending,
            "fullText": query.full_text,
            "fullTextFields": query.full_text_fields,
            "noTotal": not total_items,
        }
        page_info: dict[str, str] = {}
        if page.rows:
            first, last = page.rows[0], page.rows[-1]
            more_after = page.has_more if before is None else True
            more_before = page.has_more if before is not None else (after is not None or offset > 0)
            if more_after:
                page_info["nextCursor"] = encode_cursor({**base, "after": [last[1], last[0]]})
            if more_before:
                page_info["prevCursor"] = encode_cursor({**base, "before": [first[1], first[0]]})
        return {
            "items": [project(entity, fields) for _, _, entity in page.rows],
            "totalItems": page.total,
            "pageInfo": page_info,
        }

    async def facets(self, keys: list[str], filters: list[Filter] | None = None) -> dict[str, Any]:
        """``{facets: {key: [{value, count}]}}`` over entities matching ``filters``, values sorted."""
        check_filter_size(filters, self.max_filter_conditions)
        return {"facets": await self.store.facets(keys, filters)}

    async def resolve_users(
        self,
        entity_refs: list[str] | str,
        excluded_entity_refs: list[str] | str | None = None,
        via: dict[str, tuple[str, str]] | None = None,
    ) -> list[str]:
        """Users behind ``entity_refs`` (see :mod:`plugin_catalog.resolution`); ``via`` records how."""
        return await resolve_users(self.store, _as_list(entity_refs), _as_list(excluded_entity_refs), via)

    async def get_user_ownership_refs(self, user_ref: str) -> list[str]:
        """The user's ref followed by every group it is directly a member of."""
        ref = normalize_entity_ref(user_ref, default_kind="user")
        groups = [target for _, _, target in await self.store.relations_from([ref], [MEMBER_OF])]
        return [ref, *groups]

    async def list_users_with_email(self) -> list[tuple[str, str]]:
        """``(user ref, spec.profile.email)`` of every User entity that has an email."""
        return await self.store.field_values("user", "spec.profile.email")
