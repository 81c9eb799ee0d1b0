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
    Column,
    ColumnElement,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    and_,
    bindparam,
    delete,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from plugin_catalog.models import MANAGED_BY_LOCATION
from plugin_catalog.refs import entity_ref_of, parse_entity_ref
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

#: Columns ``orderField`` may sort on, by field name.
ORDER_COLUMNS = {
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

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

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
            existing = {row.entity_ref: (row.uid, row.hash) for row in await conn.execute(
                select(entities.c.entity_ref, entities.c.uid, entities.c.hash))}
            old_relations: set[Relation] = {(s, t, g) for s, t, g in await conn.execute(
                select(relations.c.source_ref, relations.c.type, relations.c.target_ref))}
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

    async def get_entities(self, refs: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Entities by canonical ref; missing refs are absent from the result."""
        found: dict[str, dict[str, Any]] = {}
        unique = list(dict.fromkeys(refs))
        async with self.engine.connect() as conn:
            for chunk in _chunks(unique):
                rows = await conn.execute(
                    select(entities.c.entity_ref, entities.c.final_entity).where(entities.c.entity_ref.in_(chunk))
                )
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
        filters: list[Filter] | None,
        *,
        order_field: str | None,
        descending: bool,
        limit: int,
        after: tuple[Any, str] | None = None,
        before: tuple[Any, str] | None = None,
    ) -> Page:
        """One keyset page of entities matching ``filters`` (OR of ANDs).

        Sorted by ``order_field`` (one of :data:`ORDER_COLUMNS`, default the
        entity ref) then ref. ``after`` pages forward from a sort key,
        ``before`` pages backward; ``has_more`` says whether more rows exist
        in the paging direction.
        """
        column = ORDER_COLUMNS[order_field] if order_field else entities.c.entity_ref
        ref = entities.c.entity_ref
        condition = _filter_condition(filters)
        backwards = before is not None
        reverse = descending != backwards
        sort = [column.desc(), ref.desc()] if reverse else [column.asc(), ref.asc()]
        statement = select(ref, column, entities.c.final_entity).order_by(*sort).limit(limit + 1)
        if condition is not None:
            statement = statement.where(condition)
        anchor = before if backwards else after
        if anchor is not None:
            value, anchor_ref = anchor
            if reverse:
                statement = statement.where(or_(column < value, and_(column == value, ref < anchor_ref)))
            else:
                statement = statement.where(or_(column > value, and_(column == value, ref > anchor_ref)))
        count = select(func.count()).select_from(entities)
        if condition is not None:
            count = count.where(condition)
        async with self.engine.connect() as conn:
            rows = [(r, v, json.loads(body)) for r, v, body in await conn.execute(statement)]
            total = int(await conn.scalar(count) or 0)
        has_more = len(rows) > limit
        rows = rows[:limit]
        if backwards:
            rows.reverse()
        return Page(rows=rows, has_more=has_more, total=total)

    async def facets(self, keys: Sequence[str], filters: list[Filter] | None) -> dict[str, list[dict[str, Any]]]:
        """For each key, its distinct original values with entity counts (count desc, value asc)."""
        condition = _filter_condition(filters)
        result: dict[str, list[dict[str, Any]]] = {}
        async with self.engine.connect() as conn:
            for key in keys:
                count = func.count(func.distinct(search.c.entity_ref)).label("count")
                statement = (
                    select(search.c.original_value, count)
                    .where(search.c.key == key.lower(), search.c.original_value.is_not(None))
                    .group_by(search.c.original_value)
                    .order_by(count.desc(), search.c.original_value)
                )
                if condition is not None:
                    statement = statement.where(search.c.entity_ref.in_(select(entities.c.entity_ref).where(condition)))
                rows = await conn.execute(statement)
                result[key] = [{"value": value, "count": int(n)} for value, n in rows]
        return result


@dataclass
class _Plan:
    """Row changes one refresh makes to the entity and search tables."""

    inserts: list[dict[str, Any]] = field(default_factory=list)
    updates: list[dict[str, Any]] = field(default_factory=list)
    search_rows: list[dict[str, Any]] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    stats: RefreshStats = field(default_factory=RefreshStats)


def _plan(
    bodies: list[dict[str, Any]], new_relations: set[Relation], existing: dict[str, tuple[str, str]]
) -> _Plan:
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
        row = {"uid": uid, "kind": kind, "namespace": namespace, "name": name, "etag": digest[:40],
               "hash": digest, "final_entity": json.dumps(final), "updated_at": now, "location": location}
        if old is None:
            plan.inserts.append({"entity_ref": ref, **row})
            plan.stats.added += 1
        else:
            plan.updates.append({"b_ref": ref, **row})
            plan.stats.updated += 1
        plan.search_rows.extend({"entity_ref": ref, "key": key, "value": value, "original_value": original}
                                for key, value, original in search_entries(final))
    plan.removed = [ref for ref in existing if ref not in seen]
    plan.stats.removed = len(plan.removed)
    return plan


async def _kept_bodies(conn: AsyncConnection, keep: KeepLastGood, fresh_refs: set[str]) -> list[dict[str, Any]]:
    """Stored entities of the failed locations (and of locations only they lead to), as bodies.

    An entity read fresh from another location this time is not kept.
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
            for ref, text in rows:
                if ref in fresh_refs:
                    continue
                body = _unfinalise(json.loads(text))
                kept.append(body)
                pending.update(t for t in keep.targets_of(body) if t not in keep.read and t not in seen)
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


def _filter_condition(filters: list[Filter] | None) -> ColumnElement[bool] | None:
    if not filters:
        return None
    alternatives = []
    for one in filters:
        parts = []
        for key, values in one.items():
            matches = select(search.c.entity_ref).where(search.c.key == key)
            if values is not None:
                matches = matches.where(search.c.value.in_(values))
            parts.append(entities.c.entity_ref.in_(matches))
        alternatives.append(and_(*parts))
    return or_(*alternatives)


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
    out: dict[tuple[str, str | None], str | None] = {}

    def add(key: str, value: Any) -> None:
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

    def walk(prefix: str, node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                walk(f"{prefix}.{key}" if prefix else str(key), value)
        elif isinstance(node, list):
            for item in node:
                if not isinstance(item, (dict, list)):
                    add(prefix, item)
        else:
            add(prefix, node)

    for key, value in entity.items():
        if key == "relations":
            for relation in value:
                add(f"relations.{relation['type']}", relation["targetRef"])
        elif key == "metadata":
            walk("metadata", {k: v for k, v in value.items() if k != "etag"})
        else:
            walk(key, value)
    return [(key, value, original) for (key, value), original in out.items()]
