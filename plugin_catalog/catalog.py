"""The catalog's read API over its store, shared by the REST routes and the service.

:class:`Catalog` takes and returns plain JSON-ready values in Backstage's
shapes; it raises :class:`host.errors.InputError` for bad input.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from plugin_catalog.query import decode_cursor, encode_cursor, normalize_filter, project
from plugin_catalog.refs import normalize_entity_ref
from plugin_catalog.relations import MEMBER_OF
from plugin_catalog.resolution import resolve_users
from plugin_catalog.store import CatalogStore, Filter

#: Page size of ``query_entities`` when no limit is given.
DEFAULT_LIMIT = 20
#: Largest page ``query_entities`` returns.
MAX_LIMIT = 10_000

FilterSpec = Mapping[str, Any] | Iterable[Mapping[str, Any]] | None


def _as_list(refs: list[str] | str | None) -> list[str]:
    if refs is None:
        return []
    return [refs] if isinstance(refs, str) else list(refs)


class Catalog:
    """Entity look-ups, queries, facets and user resolution."""

    def __init__(self, store: CatalogStore) -> None:
        self.store = store

    async def get_entity_by_ref(self, ref: str) -> dict[str, Any] | None:
        """The entity with this ref (``kind:namespace/name``; namespace defaults to ``default``)."""
        canonical = normalize_entity_ref(ref)
        return (await self.store.get_entities([canonical])).get(canonical)

    async def get_entity_by_uid(self, uid: str) -> dict[str, Any] | None:
        """The entity whose ``metadata.uid`` is ``uid``."""
        return await self.store.get_entity_by_uid(uid)

    async def get_entities_by_refs(
        self, refs: list[str], fields: list[str] | None = None
    ) -> list[dict[str, Any] | None]:
        """Entities in the order of ``refs``, ``None`` where one does not exist."""
        canonical = [normalize_entity_ref(ref) for ref in refs]
        found = await self.store.get_entities(canonical)
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
    ) -> dict[str, Any]:
        """One page of matching entities: ``{items, totalItems, pageInfo}``.

        With ``cursor`` the filter and order come from the cursor; the other
        arguments except ``limit`` and ``fields`` are ignored.
        """
        page_size = DEFAULT_LIMIT if limit is None else limit
        if cursor:
            state = decode_cursor(cursor)
            filters = state.get("filters")
            order_field, descending = state.get("orderField"), bool(state.get("desc"))
            after, before = state.get("after"), state.get("before")
        else:
            filters = parsed_filters if parsed_filters is not None else normalize_filter(filter)
            after = before = None
        page = await self.store.query_page(
            filters,
            order_field=order_field,
            descending=descending,
            limit=page_size,
            after=(after[0], after[1]) if after else None,
            before=(before[0], before[1]) if before else None,
        )
        base = {"filters": filters, "orderField": order_field, "desc": descending}
        page_info: dict[str, str] = {}
        if page.rows:
            first, last = page.rows[0], page.rows[-1]
            more_after = page.has_more if before is None else True
            more_before = page.has_more if before is not None else after is not None
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
        """``{facets: {key: [{value, count}]}}`` over entities matching ``filters``."""
        return {"facets": await self.store.facets(keys, filters)}

    async def resolve_users(
        self, entity_refs: list[str] | str, excluded_entity_refs: list[str] | str | None = None
    ) -> list[str]:
        """Users behind ``entity_refs`` (see :mod:`plugin_catalog.resolution`)."""
        return await resolve_users(self.store, _as_list(entity_refs), _as_list(excluded_entity_refs))

    async def get_user_ownership_refs(self, user_ref: str) -> list[str]:
        """The user's ref followed by every group it is directly a member of."""
        ref = normalize_entity_ref(user_ref, default_kind="user")
        groups = [target for _, _, target in await self.store.relations_from([ref], [MEMBER_OF])]
        return [ref, *groups]

    async def list_users_with_email(self) -> list[tuple[str, str]]:
        """``(user ref, spec.profile.email)`` of every User entity that has an email."""
        return await self.store.field_values("user", "spec.profile.email")
