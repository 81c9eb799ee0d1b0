"""SQL storage of the catalog: entities, relations and a search index.

Tables (created by ``migrations/versions/0001_initial.py``):

* ``entities``: one row per entity, keyed by canonical ref, holding the final
  JSON served to clients (with ``metadata.uid``, ``metadata.etag`` and
  ``relations``).
* ``relations``: ``(source_ref, type, target_ref)``, indexed both ways.
* ``search``: one ``(entity_ref, key, value)`` row per leaf field (lowercase),
  which every filter and facet query runs on.
* ``refresh_state``: a single row; updating it first serialises concurrent
  refreshes across workers and instances (a row lock on PostgreSQL, the write
  lock on SQLite).

All reads are batched: callers pass lists and get one query per chunk.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    ColumnElement,
    DateTime,
    Index,
    Integer,
    MetaData,
    Select,
    String,
    Table,
    Text,
    and_,
    bindparam,
    delete,
    false,
    func,
    or_,
    select,
    text,
    true,
    tuple_,
    update,
)
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.ext.compiler import compiles

from host import ServiceUnavailableError, entity_ref_of, parse_entity_ref
from plugin_catalog.models import MANAGED_BY_LOCATION
from plugin_catalog.relations import Relation

metadata = MetaData()

entities = Table(
    "entities",
    metadata,
    Column("entity_ref", String(255), primary_key=True),
    Column("uid", String(36), nullable=False, unique=True),
    Column("kind", String(63), nullable=False, index=True),
    Column("namespace", String(63), nullable=False, index=True),
    Column("name", String(63), nullable=False, index=True),
    Column("etag", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    Column("final_entity", Text, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("location", Text, nullable=True),
    Index("entities_location_idx", "location"),
)

relations = Table(
    "relations",
    metadata,
    Column("source_ref", String(255), primary_key=True),
    Column("type", String(63), primary_key=True),
    Column("target_ref", String(255), primary_key=True),
    Index("relations_target_type_idx", "target_ref", "type"),
)

search = Table(
    "search",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("entity_ref", String(255), nullable=False, index=True),
    Column("key", String(255), nullable=False),
    Column("value", String(255), nullable=True),
    Column("original_value", String(255), nullable=True),
    Index("search_key_value_idx", "key", "value"),
)

refresh_state = Table(
    "refresh_state",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("generation", Integer, nullable=False),
    Column("refreshed_at", DateTime(timezone=True), nullable=True),
)

#: Longest value kept in the search index (longer ones are indexed as present only).
MAX_SEARCH_VALUE = 200
#: Rows per ``IN (...)`` list, well below SQLite's and asyncpg's parameter limits.
CHUNK = 900
#: PostgreSQL's SQLSTATE for a statement cancelled by ``statement_timeout`` (or a cancel request).
QUERY_CANCELED = "57014"

#: Fields every entity has, kept (lowercase) in indexed entity columns: filters and
#: ``orderField`` on them skip the search table.
ENTITY_COLUMNS = {
    "kind": entities.c.kind,
    "metadata.namespace": entities.c.namespace,
    "metadata.name": entities.c.name,
    "metadata.uid": entities.c.uid,
}

Filter = dict[str, list[str] | None]
"""One filter: field -> accepted lowercase values (any of), or ``None`` for "exists"."""


@dataclass
class RefreshStats:
    """What one :meth:`CatalogStore.replace_all` changed."""

    added: int = 0
    updated: int = 0
    removed: int = 0
    unchanged: int = 0
    kept: int = 0
    """Entities kept from locations that could not be read this time."""


@dataclass
class KeepLastGood:
    """Locations whose stored entities a refresh keeps, because they could not be read."""

    failed: set[str]
    """``file:/abs/path`` of each location that failed to read or parse."""
    read: set[str]
    """Locations read successfully (their stored entities are replaced, never kept)."""
    targets_of: Callable[[dict[str, Any]], Iterable[str]]
    """The locations a kept ``Location`` entity points at (kept too, unless they were read)."""
    invalid: dict[str, str] = field(default_factory=dict)
    """Refs whose document failed validation -> its location: a stored version from there stays."""


@dataclass(frozen=True)
class Query:
    """What a page of ``by-query`` selects and how it sorts (the part a cursor carries)."""

    filters: list[Filter] | None = None
    order_field: str | None = None
    """Any dotted field path (case-insensitive); entities without it are left out. ``None``: by ref."""
    descending: bool = False
    full_text: str | None = None
    """Lowercase term that one of ``full_text_fields`` must contain."""
    full_text_fields: list[str] | None = None
    """Lowercase fields searched by ``full_text``; default the order field, else ``metadata.uid``."""


@dataclass
class Page:
    """Rows of one :meth:`CatalogStore.query_page` call, in display order."""

    rows: list[tuple[str, Any, dict[str, Any]]]
    """``(entity_ref, sort value, entity)`` per item."""
    has_more: bool
    total: int


def _chunks(items: Sequence[Any], size: int = CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _now() -> datetime:
    return datetime.now(UTC)


class CatalogStore:
    """Reads and writes the catalog tables through one SQLAlchemy engine."""

    def __init__(self, engine: AsyncEngine, statement_timeout_ms: int | None = None) -> None:
        self.engine = engine
        self.statement_timeout_ms = statement_timeout_ms

    # -- writes ----------------------------------------------------------------

    async def replace_all(
        self,
        bodies: list[dict[str, Any]],
        derive_relations: Callable[[list[dict[str, Any]]], set[Relation]],
        keep: KeepLastGood | None = None,
    ) -> RefreshStats:
        """Make the catalog hold exactly ``bodies`` (plus what ``keep`` keeps), in one transaction.

        Relations come from ``derive_relations`` over every entity stored.
        Unchanged entities keep their row, ``uid`` and ``etag``; only added,
        changed and removed entities touch the entity and search tables.
        """
        async with self.engine.begin() as conn:
            # NOTE(catalog): a write first, so the transaction owns the lock before it reads.
            await conn.execute(update(refresh_state).where(refresh_state.c.id == 1).values(refreshed_at=_now()))
            kept = await _kept_bodies(conn, keep, {entity_ref_of(body) for body in bodies}) if keep else []
            bodies = bodies + kept
            new_relations = derive_relations(bodies)
            existing = {
                row.entity_ref: (row.uid, row.hash)
                for row in await conn.execute(select(entities.c.entity_ref, entities.c.uid, entities.c.hash))
            }
            old_relations: set[Relation] = {
                (s, t, g)
                for s, t, g in await conn.execute(
                    select(relations.c.source_ref, relations.c.type, relations.c.target_ref)
                )
            }
            plan = _plan(bodies, new_relations, existing)
            plan.stats.kept = len(kept)
            for chunk in _chunks(plan.removed + [row["b_ref"] for row in plan.updates]):
                await conn.execute(delete(search).where(search.c.entity_ref.in_(chunk)))
            for chunk in _chunks(plan.removed):
                await conn.execute(delete(entities).where(entities.c.entity_ref.in_(chunk)))
            if plan.updates:
                await conn.execute(update(entities).where(entities.c.entity_ref == bindparam("b_ref")), plan.updates)
            if plan.inserts:
                await conn.execute(entities.insert(), plan.inserts)
            if plan.search_rows:
                await conn.execute(search.insert(), plan.search_rows)
            await _apply_relations(conn, old_relations, new_relations)
            await conn.execute(
                update(refresh_state).where(refresh_state.c.id == 1).values(generation=refresh_state.c.generation + 1)
            )
        return plan.stats

    # -- point reads -------------------------------------------------------------

    async def get_entities(self, refs: Sequence[str], filters: list[Filter] | None = None) -> dict[str, dict[str, Any]]:
        """Entities by canonical ref (and matching ``filters``); the others are absent from the result."""
        found: dict[str, dict[str, Any]] = {}
        unique = list(dict.fromkeys(refs))
        condition = _filter_condition(filters)
        async with self.engine.connect() as conn:
            await self._limit_statement_time(conn)
            for chunk in _chunks(unique):
                statement = select(entities.c.entity_ref, entities.c.final_entity).where(
                    entities.c.entity_ref.in_(chunk)
                )
                rows = await self._run(conn, statement if condition is None else statement.where(condition))
                found.update((ref, json.loads(body)) for ref, body in rows)
        return found

    async def get_entity_by_uid(self, uid: str) -> dict[str, Any] | None:
        """The entity with ``metadata.uid == uid``, if any."""
        async with self.engine.connect() as conn:
            body = await conn.scalar(select(entities.c.final_entity).where(entities.c.uid == uid))
        return json.loads(body) if body is not None else None

    async def existing_refs(self, refs: Sequence[str]) -> set[str]:
        """Which of ``refs`` exist in the catalog."""
        found: set[str] = set()
        unique = list(dict.fromkeys(refs))
        async with self.engine.connect() as conn:
            for chunk in _chunks(unique):
                found.update(await conn.scalars(select(entities.c.entity_ref).where(entities.c.entity_ref.in_(chunk))))
        return found

    async def relations_from(self, sources: Sequence[str], types: Iterable[str]) -> list[Relation]:
        """Relations of the given types whose source is one of ``sources``, ordered by source, type, target."""
        type_list = list(types)
        out: list[Relation] = []
        unique = list(dict.fromkeys(sources))
        async with self.engine.connect() as conn:
            for chunk in _chunks(unique):
                rows = await conn.execute(
                    select(relations.c.source_ref, relations.c.type, relations.c.target_ref)
                    .where(relations.c.source_ref.in_(chunk), relations.c.type.in_(type_list))
                    .order_by(relations.c.source_ref, relations.c.type, relations.c.target_ref)
                )
                out.extend((s, t, g) for s, t, g in rows)
        return out

    async def field_values(self, kind: str, key: str) -> list[tuple[str, str]]:
        """``(entity_ref, original value)`` of field ``key`` for every entity of ``kind``."""
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                select(search.c.entity_ref, search.c.original_value)
                .join(entities, entities.c.entity_ref == search.c.entity_ref)
                .where(entities.c.kind == kind, search.c.key == key, search.c.original_value.is_not(None))
                .order_by(search.c.entity_ref)
            )
            return [(ref, value) for ref, value in rows]

    # -- queries -----------------------------------------------------------------

    async def query_page(
        self,
        query: Query,
        *,
        limit: int,
        offset: int = 0,
        count: bool = True,
        after: tuple[Any, str] | None = None,
        before: tuple[Any, str] | None = None,
    ) -> Page:
        """One keyset page of entities matching ``query``.

        Sorted by the order field's (lowercase) value, then ref. ``after``
        pages forward from a sort key, ``before`` pages backward; ``has_more``
        says whether more rows exist in the paging direction. ``total`` is 0
        when ``count`` is false.
        """
        statement = self.page_statement(query, limit=limit, offset=offset, after=after, before=before)
        async with self.engine.connect() as conn:
            await self._limit_statement_time(conn)
            rows = [(r, v, json.loads(body)) for r, v, body in await self._run(conn, statement)]
            total = int(await self._scalar(conn, self.count_statement(query)) or 0) if count else 0
        has_more = len(rows) > limit
        rows = rows[:limit]
        if before is not None:
            rows.reverse()
        return Page(rows=rows, has_more=has_more, total=total)

    def page_statement(
        self,
        query: Query,
        *,
        limit: int,
        offset: int = 0,
        after: tuple[Any, str] | None = None,
        before: tuple[Any, str] | None = None,
    ) -> Select[Any]:
        """The ``SELECT`` of one page (``limit + 1`` rows: ref, sort value, entity JSON)."""
        source, column = _sorted_source(query.order_field)
        ref = entities.c.entity_ref
        backwards = before is not None
        reverse = query.descending != backwards
        sort = [column.desc(), ref.desc()] if reverse else [column.asc(), ref.asc()]
        statement = select(ref, column, entities.c.final_entity).select_from(source).order_by(*sort)
        statement = statement.limit(limit + 1)
        condition = _query_condition(query)
        if condition is not None:
            statement = statement.where(condition)
        anchor = before if backwards else after
        if anchor is not None:
            value, anchor_ref = anchor
            if reverse:
                statement = statement.where(or_(column < value, and_(column == value, ref < anchor_ref)))
            else:
                statement = statement.where(or_(column > value, and_(column == value, ref > anchor_ref)))
        elif offset:
            statement = statement.offset(offset)
        return statement

    def count_statement(self, query: Query) -> Select[Any]:
        """The ``SELECT count(*)`` of every entity ``query`` matches."""
        source, _ = _sorted_source(query.order_field)
        statement = select(func.count()).select_from(source)
        condition = _query_condition(query)
        return statement if condition is None else statement.where(condition)

    async def facets(self, keys: Sequence[str], filters: list[Filter] | None) -> dict[str, list[dict[str, Any]]]:
        """For each key, its distinct original values with entity counts, sorted by value as Backstage sorts."""
        condition = _filter_condition(filters)
        result: dict[str, list[dict[str, Any]]] = {}
        async with self.engine.connect() as conn:
            await self._limit_statement_time(conn)
            # NOTE(catalog): by code point, as SQLite's BINARY and Backstage's PostgreSQL in C collation sort.
            by_value: Any = search.c.original_value
            if conn.dialect.name == "postgresql":
                by_value = by_value.collate("C")
            for key in keys:
                count = func.count(func.distinct(search.c.entity_ref)).label("count")
                statement = (
                    select(search.c.original_value, count)
                    .where(search.c.key == key.lower(), search.c.original_value.is_not(None))
                    .group_by(search.c.original_value)
                    .order_by(by_value)
                )
                if condition is not None:
                    statement = statement.where(search.c.entity_ref.in_(select(entities.c.entity_ref).where(condition)))
                rows = await self._run(conn, statement)
                result[key] = [{"value": value, "count": int(n)} for value, n in rows]
        return result

    # -- statement time ----------------------------------------------------------

    async def _limit_statement_time(self, conn: AsyncConnection) -> None:
        """On PostgreSQL, cancel this connection's statements after ``statement_timeout`` (this transaction)."""
        if self.statement_timeout_ms and conn.dialect.name == "postgresql":
            await conn.execute(text(f"SET LOCAL statement_timeout = {int(self.statement_timeout_ms)}"))

    async def _run(self, conn: AsyncConnection, statement: Any) -> Any:
        try:
            return await conn.execute(statement)
        except DBAPIError as error:
            raise self._timed_out(error) from None

    async def _scalar(self, conn: AsyncConnection, statement: Any) -> Any:
        try:
            return await conn.scalar(statement)
        except DBAPIError as error:
            raise self._timed_out(error) from None

    def _timed_out(self, error: DBAPIError) -> BaseException:
        """A statement timeout as a clear 503; any other database error unchanged."""
        if _sqlstate(error) != QUERY_CANCELED:
            return error
        return ServiceUnavailableError(
            f"The catalog query took longer than {self.statement_timeout_ms} ms and was cancelled; "
            "narrow the filter or ask for fewer items"
        )


@dataclass
class _Plan:
    """Row changes one refresh makes to the entity and search tables."""

    inserts: list[dict[str, Any]] = field(default_factory=list)
    updates: list[dict[str, Any]] = field(default_factory=list)
    search_rows: list[dict[str, Any]] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    stats: RefreshStats = field(default_factory=RefreshStats)


def _plan(bodies: list[dict[str, Any]], new_relations: set[Relation], existing: dict[str, tuple[str, str]]) -> _Plan:
    """Compare the entities read with the stored ``{ref: (uid, hash)}`` and list the row changes."""
    by_source: dict[str, list[dict[str, str]]] = {}
    for source, kind, target in sorted(new_relations):
        by_source.setdefault(source, []).append({"type": kind, "targetRef": target})
    plan = _Plan()
    seen: set[str] = set()
    now = _now()
    for body in bodies:
        ref = entity_ref_of(body)
        seen.add(ref)
        entity_relations = by_source.get(ref, [])
        digest = hashlib.sha256(json.dumps([body, entity_relations], sort_keys=True).encode()).hexdigest()
        old = existing.get(ref)
        if old is not None and old[1] == digest:
            plan.stats.unchanged += 1
            continue
        uid = old[0] if old else str(uuid.uuid4())
        final = _finalise(body, uid, digest[:40], entity_relations)
        kind, namespace, name = parse_entity_ref(ref)
        location = (body["metadata"].get("annotations") or {}).get(MANAGED_BY_LOCATION)
        row = {
            "uid": uid,
            "kind": kind,
            "namespace": namespace,
            "name": name,
            "etag": digest[:40],
            "hash": digest,
            "final_entity": json.dumps(final),
            "updated_at": now,
            "location": location,
        }
        if old is None:
            plan.inserts.append({"entity_ref": ref, **row})
            plan.stats.added += 1
        else:
            plan.updates.append({"b_ref": ref, **row})
            plan.stats.updated += 1
        plan.search_rows.extend(
            {"entity_ref": ref, "key": key, "value": value, "original_value": original}
            for key, value, original in search_entries(final)
        )
    plan.removed = [ref for ref in existing if ref not in seen]
    plan.stats.removed = len(plan.removed)
    return plan


async def _kept_bodies(conn: AsyncConnection, keep: KeepLastGood, fresh_refs: set[str]) -> list[dict[str, Any]]:
    """Stored entities of the failed locations (and of locations only they lead to), as bodies.

    Also the stored version of an entity whose document now fails validation
    in the same location. An entity read fresh this time is not kept.
    """
    kept: list[dict[str, Any]] = []
    seen: set[str] = set()
    pending = set(keep.failed)
    while pending:
        seen |= pending
        batch, pending = sorted(pending), set()
        for chunk in _chunks(batch):
            rows = await conn.execute(
                select(entities.c.entity_ref, entities.c.final_entity).where(entities.c.location.in_(chunk))
            )
            for ref, stored in rows:
                if ref in fresh_refs:
                    continue
                body = _unfinalise(json.loads(stored))
                kept.append(body)
                pending.update(t for t in keep.targets_of(body) if t not in keep.read and t not in seen)
    kept_refs = {entity_ref_of(body) for body in kept}
    invalid = [ref for ref in keep.invalid if ref not in fresh_refs and ref not in kept_refs]
    for chunk in _chunks(invalid):
        versions = await conn.execute(
            select(entities.c.entity_ref, entities.c.final_entity, entities.c.location).where(
                entities.c.entity_ref.in_(chunk)
            )
        )
        kept.extend(
            _unfinalise(json.loads(stored)) for ref, stored, location in versions if location == keep.invalid[ref]
        )
    return kept


def _unfinalise(final: dict[str, Any]) -> dict[str, Any]:
    """The body a stored entity was made from (without ``uid``, ``etag`` and ``relations``)."""
    final.pop("relations", None)
    final["metadata"].pop("uid", None)
    final["metadata"].pop("etag", None)
    return final


async def _apply_relations(conn: AsyncConnection, old: set[Relation], new: set[Relation]) -> None:
    """Delete the relations that are gone and insert the new ones."""
    gone = old - new
    if gone:
        await conn.execute(
            delete(relations).where(
                relations.c.source_ref == bindparam("s"),
                relations.c.type == bindparam("t"),
                relations.c.target_ref == bindparam("g"),
            ),
            [{"s": s, "t": t, "g": g} for s, t, g in gone],
        )
    fresh = new - old
    if fresh:
        await conn.execute(
            relations.insert(), [{"source_ref": s, "type": t, "target_ref": g} for s, t, g in sorted(fresh)]
        )


def _sorted_source(order_field: str | None) -> tuple[Any, ColumnElement[Any]]:
    """The FROM clause and sort column for ``order_field`` (entities lacking the field drop out)."""
    if order_field is None:
        return entities, entities.c.entity_ref
    key = order_field.lower()
    if key in ENTITY_COLUMNS:
        return entities, ENTITY_COLUMNS[key]
    # NOTE(catalog): one row per entity (its least value), so list fields do not repeat entities.
    values = (
        select(search.c.entity_ref, func.min(search.c.value).label("value"))
        .where(search.c.key == key, search.c.value.is_not(None))
        .group_by(search.c.entity_ref)
        .subquery("sort_values")
    )
    return entities.join(values, values.c.entity_ref == entities.c.entity_ref), values.c.value


def _query_condition(query: Query) -> ColumnElement[bool] | None:
    condition = _filter_condition(query.filters)
    if not query.full_text:
        return condition
    fields = query.full_text_fields or [(query.order_field or "metadata.uid").lower()]
    pattern = "%" + query.full_text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    text_match: ColumnElement[bool] = entities.c.entity_ref.in_(
        select(search.c.entity_ref).where(search.c.key.in_(fields), search.c.value.like(pattern, escape="\\"))
    )
    if len(query.full_text) > MAX_SEARCH_VALUE:  # no indexed value is that long (and SQLite caps LIKE patterns)
        text_match = false()
    return text_match if condition is None else and_(condition, text_match)


def _filter_condition(filters: list[Filter] | None) -> ColumnElement[bool] | None:
    """Filters (an OR of ANDs) as one condition whose size grows linearly with the filter.

    ``kind``, ``metadata.name``, ``metadata.namespace`` and ``metadata.uid``
    test indexed entity columns; the other conditions of one filter become a
    single search-table subquery (rows matching any condition, grouped by
    entity, kept when every key matched), not one join per condition.
    Filters of a single condition are merged into one ``IN`` (entity column)
    or one search subquery, and the rest are ORed as a balanced tree, so
    SQLite's expression depth limit is never near.
    """
    if not filters:
        return None
    alternatives: list[ColumnElement[bool]] = []
    any_column: dict[str, list[str]] = {}
    any_search: Filter = {}
    for one in filters:
        columns = {key: values for key, values in one.items() if key in ENTITY_COLUMNS and values is not None}
        searched = {key: values for key, values in one.items() if key not in ENTITY_COLUMNS}
        if not columns and not searched:  # only "exists" on fields every entity has
            return true()
        if not columns and len(searched) == 1:
            ((key, values),) = searched.items()
            _merge_values(any_search, key, values)
        elif not searched and len(columns) == 1:
            ((key, values),) = columns.items()
            any_column[key] = list(dict.fromkeys([*any_column.get(key, []), *values]))
        else:
            parts = [ENTITY_COLUMNS[key].in_(values) for key, values in columns.items()]
            if searched:
                parts.append(entities.c.entity_ref.in_(_search_match(searched)))
            alternatives.append(and_(*parts))
    alternatives.extend(ENTITY_COLUMNS[key].in_(values) for key, values in any_column.items())
    if any_search:
        alternatives.append(entities.c.entity_ref.in_(select(search.c.entity_ref).where(_search_terms(any_search))))
    return _balanced_or(alternatives)


def _merge_values(target: Filter, key: str, values: list[str] | None) -> None:
    """OR one more condition on ``key`` into ``target`` ("exists" absorbs values)."""
    if key in target and target[key] is None:
        return
    target[key] = None if values is None else list(dict.fromkeys([*(target.get(key) or []), *values]))


def _search_terms(conditions: Filter) -> ColumnElement[bool]:
    """Search rows matching any of ``conditions``: one ``(key, value) IN`` list and one ``key IN`` list."""
    if len(conditions) == 1:
        ((key, values),) = conditions.items()
        return search.c.key == key if values is None else and_(search.c.key == key, search.c.value.in_(values))
    pairs = [(key, value) for key, values in conditions.items() if values is not None for value in values]
    present = [key for key, values in conditions.items() if values is None]
    terms = []
    if pairs:
        terms.append(tuple_(search.c.key, search.c.value).in_(pairs))
    if present:
        terms.append(search.c.key.in_(present))
    return or_(*terms)


def _search_match(conditions: Filter) -> Select[Any]:
    """Refs of the entities that match every condition, in one pass over the search index."""
    match = select(search.c.entity_ref).where(_search_terms(conditions))
    if len(conditions) == 1:
        return match
    return match.group_by(search.c.entity_ref).having(func.count(func.distinct(search.c.key)) == len(conditions))


class _Parenthesized(ColumnElement[bool]):
    """A boolean expression always rendered in parentheses (SQLAlchemy flattens nested ``OR`` groups)."""

    inherit_cache = False
    type = Boolean()
    _is_implicitly_boolean = True

    def __init__(self, inner: ColumnElement[bool]) -> None:
        self.inner = inner


@compiles(_Parenthesized)
def _render_parenthesized(element: _Parenthesized, compiler: Any, **kw: Any) -> str:
    return f"({compiler.process(element.inner, **kw)})"


def _balanced_or(terms: list[ColumnElement[bool]]) -> ColumnElement[bool]:
    """``OR`` of ``terms`` as nested groups: SQLite's parse tree is then log n deep, not n (limit 1000)."""
    if len(terms) <= 2:
        return or_(*terms)
    middle = len(terms) // 2
    return or_(_Parenthesized(_balanced_or(terms[:middle])), _Parenthesized(_balanced_or(terms[middle:])))


def _sqlstate(error: DBAPIError) -> str | None:
    """The SQLSTATE of a driver error, when the driver reports one."""
    orig = error.orig
    return getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)


def _finalise(body: dict[str, Any], uid: str, etag: str, entity_relations: list[dict[str, str]]) -> dict[str, Any]:
    final: dict[str, Any] = json.loads(json.dumps(body))
    final["metadata"]["uid"] = uid
    final["metadata"]["etag"] = etag
    final["relations"] = entity_relations
    return final


def search_entries(entity: dict[str, Any]) -> list[tuple[str, str | None, str | None]]:
    """Flatten an entity into ``(key, lowercase value, original value)`` search rows.

    Keys are lowercase dotted paths; list items share their list's key;
    relations become ``relations.<type>`` keys holding target refs. Values
    longer than :data:`MAX_SEARCH_VALUE` are kept as presence only.
    """
    out: _SearchRows = {}
    for key, value in entity.items():
        if key == "relations":
            for relation in value:
                _add_search_row(out, f"relations.{relation['type']}", relation["targetRef"])
        elif key == "metadata":
            _walk_search_rows(out, "metadata", {k: v for k, v in value.items() if k != "etag"})
        else:
            _walk_search_rows(out, key, value)
    return [(key, value, original) for (key, value), original in out.items()]


#: ``(key, lowercase value or None) -> original value``, in the order first found.
_SearchRows = dict[tuple[str, str | None], str | None]


def _add_search_row(out: _SearchRows, key: str, value: Any) -> None:
    """Add one scalar; values of other types, and keys over 255 characters, are left out."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, (int, float, str)):
        text = str(value)
    else:
        return
    key = key.lower()
    if len(key) > 255:
        return
    if len(text) > MAX_SEARCH_VALUE:
        out.setdefault((key, None), None)
    else:
        out.setdefault((key, text.lower()), text)


def _walk_search_rows(out: _SearchRows, prefix: str, node: Any) -> None:
    """Add every scalar under ``node``; a list's scalar items share the list's key."""
    if isinstance(node, dict):
        for key, value in node.items():
            _walk_search_rows(out, f"{prefix}.{key}" if prefix else str(key), value)
    elif isinstance(node, list):
        for item in node:
            if not isinstance(item, (dict, list)):
                _add_search_row(out, prefix, item)
    else:
        _add_search_row(out, prefix, node)
