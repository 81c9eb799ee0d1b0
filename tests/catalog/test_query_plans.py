"""At 100,000 entities the catalog's queries use indexes: no full scan for kind, name and relation filters.

The statements are the ones ``GET /entities/by-query`` and ``by-refs`` run
(built by :class:`CatalogStore`), shown with ``EXPLAIN`` on PostgreSQL and
``EXPLAIN QUERY PLAN`` on SQLite after ``ANALYZE``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, text

from plugin_catalog.store import CatalogStore, Filter, Query, entities

ENTITIES = 100_000
GROUPS = 1_000

_NUMBERS = {
    "postgresql": "SELECT i FROM generate_series(1, {n}) AS i",
    "sqlite": "WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < {n}) SELECT i FROM s",
}


async def _populate(store: CatalogStore) -> None:
    """100,000 users, each a member of one of 1,000 groups, with their search rows and relations."""
    async with store.engine.begin() as conn:
        numbers = _NUMBERS[conn.dialect.name].format(n=ENTITIES)
        ref = "'user:default/u' || i"
        await conn.execute(
            text(
                "INSERT INTO entities (entity_ref, uid, kind, namespace, name, etag, hash, final_entity, updated_at) "
                f"SELECT {ref}, 'uid-' || i, 'user', 'default', 'u' || i, 'e', 'h', '{{}}', CURRENT_TIMESTAMP "
                f"FROM ({numbers}) AS n"
            )
        )
        for key, value in (
            ("kind", "'user'"),
            ("metadata.name", "'u' || i"),
            ("relations.memberof", f"'group:default/g' || (i % {GROUPS})"),
        ):
            await conn.execute(
                text(
                    f"INSERT INTO search (entity_ref, key, value, original_value) "
                    f"SELECT {ref}, '{key}', {value}, {value} FROM ({numbers}) AS n"
                )
            )
        await conn.execute(
            text(
                f"INSERT INTO relations (source_ref, type, target_ref) "
                f"SELECT {ref}, 'memberOf', 'group:default/g' || (i % {GROUPS}) FROM ({numbers}) AS n"
            )
        )
        await conn.execute(text("ANALYZE"))


async def _plan(store: CatalogStore, statement: Any) -> str:
    async with store.engine.connect() as conn:
        sql = str(statement.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
        if conn.dialect.name == "postgresql":
            rows = await conn.execute(text(f"EXPLAIN {sql}"))
            return "\n".join(row[0] for row in rows)
        rows = await conn.execute(text(f"EXPLAIN QUERY PLAN {sql}"))
        return "\n".join(str(row[-1]) for row in rows)


def _full_scans(plan: str) -> list[str]:
    """Plan lines that read a whole catalog table (PostgreSQL ``Seq Scan``, SQLite ``SCAN <table>``)."""
    lines = [line.strip() for line in plan.splitlines()]
    return [
        line
        for line in lines
        if "Seq Scan on entities" in line
        or "Seq Scan on search" in line
        or "Seq Scan on relations" in line
        or line in ("SCAN entities", "SCAN search", "SCAN relations")
    ]


FILTERS: dict[str, Filter] = {
    "kind and name": {"kind": ["user"], "metadata.name": ["u4242"]},
    "name": {"metadata.name": ["u4242", "u77"]},
    "kind, name and relation": {
        "kind": ["user"],
        "metadata.name": ["u4242"],
        "relations.memberof": ["group:default/g242"],
    },
    "relation": {"relations.memberof": ["group:default/g7"]},
}


async def test_queries_use_indexes_at_100k(catalog_store: CatalogStore) -> None:
    await _populate(catalog_store)
    # the check sees a full scan when there is one (hash has no index)
    assert _full_scans(await _plan(catalog_store, select(entities.c.uid).where(entities.c.hash == "x")))
    expected = {"kind and name": 1, "name": 2, "kind, name and relation": 1, "relation": ENTITIES // GROUPS}
    for name, one in FILTERS.items():
        query = Query(filters=[one])
        for statement in (catalog_store.page_statement(query, limit=20), catalog_store.count_statement(query)):
            plan = await _plan(catalog_store, statement)
            assert _full_scans(plan) == [], f"{name}:\n{plan}"
        assert (await catalog_store.query_page(query, limit=20)).total == expected[name], name
    # by-refs reads by primary key
    found = await catalog_store.get_entities(["user:default/u1", "user:default/u99999", "user:default/nope"])
    assert sorted(found) == ["user:default/u1", "user:default/u99999"]
    statement = select(entities.c.final_entity).where(entities.c.entity_ref.in_(["user:default/u1"]))
    assert _full_scans(await _plan(catalog_store, statement)) == []
