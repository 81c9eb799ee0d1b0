"""Users behind an entity ref (notifications spec section 3), for every kind, at scale."""

from __future__ import annotations

import pytest
from sqlalchemy import event

from host.errors import InputError
from plugin_catalog.catalog import Catalog
from plugin_catalog.relations import build_relations
from plugin_catalog.store import CatalogStore

ALL_ORG_USERS = ["user:default/olga", "user:default/pat", "user:default/ivan", "user:default/sam"]


@pytest.mark.parametrize(
    ("refs", "expected"),
    [
        # users are accepted as they are, without a lookup, in canonical form
        (["User:Nobody"], ["user:default/nobody"]),
        # a group: direct members, then child groups breadth first; parents never followed
        (["group:default/org"], ALL_ORG_USERS),
        (["group:infra"], ["user:default/ivan"]),
        (["group:default/sre"], ["user:default/ivan", "user:default/sam"]),
        # a cycle of child groups ends
        (["group:cycle-a"], ["user:default/cyril", "user:default/cora"]),
        # other kinds: the owner, expanded next round
        (["component:finance/ledger"], ["user:default/ivan", "user:default/sam"]),
        (["component:pat-tool"], ["user:default/pat"]),
        (["api:ledger-api"], ["user:default/ivan", "user:default/sam"]),
        (["system:payments"], ["user:default/ivan", "user:default/sam"]),
        (["domain:commerce"], ALL_ORG_USERS),
        (["component:cyclic-tool"], ["user:default/cyril", "user:default/cora"]),
        # owner missing from the catalog, entity missing, entity without owner
        (["resource:orphan-db"], []),
        (["component:does-not-exist"], []),
        (["location:more"], []),
        # several refs: unique users, first-reached order
        (
            ["group:sre", "user:sam", "group:infra", "user:zed"],
            ["user:default/sam", "user:default/zed", "user:default/ivan"],
        ),
    ],
)
async def test_resolve_users_per_kind(org_catalog: Catalog, refs: list[str], expected: list[str]) -> None:
    assert await org_catalog.resolve_users(refs) == expected


@pytest.mark.parametrize(
    ("refs", "excluded", "expected"),
    [
        # an excluded user is removed even when reached through a group
        ("group:org", "user:ivan", ["user:default/olga", "user:default/pat", "user:default/sam"]),
        # an excluded group is not expanded
        ("group:org", ["group:default/platform"], ["user:default/olga", "user:default/pat"]),
        # an excluded entity's owner is not followed
        (["component:finance/ledger", "user:x"], "component:finance/ledger", ["user:default/x"]),
        # an excluded user given directly
        (["user:a", "user:b"], ["User:Default/A"], ["user:default/b"]),
    ],
)
async def test_resolve_users_exclusions(
    org_catalog: Catalog, refs: str | list[str], excluded: str | list[str], expected: list[str]
) -> None:
    assert await org_catalog.resolve_users(refs, excluded) == expected


async def test_resolve_users_rejects_malformed_refs(org_catalog: Catalog) -> None:
    with pytest.raises(InputError):
        await org_catalog.resolve_users(["group:org", "no-kind"])


async def test_ownership_refs_are_the_user_and_direct_groups(org_catalog: Catalog) -> None:
    assert await org_catalog.get_user_ownership_refs("user:default/ivan") == [
        "user:default/ivan",
        "group:default/infra",
        "group:default/sre",
    ]
    assert await org_catalog.get_user_ownership_refs("Pat") == ["user:default/pat", "group:default/product"]
    assert await org_catalog.get_user_ownership_refs("user:stranger") == ["user:default/stranger"]


async def test_users_with_email(org_catalog: Catalog) -> None:
    assert await org_catalog.list_users_with_email() == [
        ("user:default/ivan", "ivan@example.com"),
        ("user:default/olga", "olga@example.com"),
        ("user:default/pat", "Pat@Example.com"),
    ]


def _big_org(users_per_team: int = 100, branches: int = 10) -> list[dict]:
    def entity(kind: str, name: str, spec: dict) -> dict:
        return {
            "apiVersion": "backstage.io/v1alpha1",
            "kind": kind,
            "metadata": {"name": name, "namespace": "default", "annotations": {}, "labels": {}},
            "spec": spec,
        }

    entities = [entity("Group", "root", {"type": "org", "children": [f"d{i}" for i in range(branches)]})]
    for d in range(branches):
        entities.append(
            entity(
                "Group", f"d{d}", {"type": "dept", "parent": "root", "children": [f"t{d}-{t}" for t in range(branches)]}
            )
        )
        for t in range(branches):
            team = f"t{d}-{t}"
            entities.append(entity("Group", team, {"type": "team", "parent": f"d{d}"}))
            for u in range(users_per_team):
                entities.append(
                    entity("User", f"u{d}-{t}-{u}", {"memberOf": [team], "profile": {"email": f"u{d}-{t}-{u}@x.org"}})
                )
    entities.append(entity("Component", "big-app", {"type": "service", "lifecycle": "production", "owner": "root"}))
    return entities


async def test_resolution_at_10000_users_uses_a_few_queries_per_round(catalog_store: CatalogStore) -> None:
    entities = _big_org()
    await catalog_store.replace_all(entities, build_relations)
    catalog = Catalog(catalog_store)
    statements: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany) -> None:
        statements.append(statement)

    event.listen(catalog_store.engine.sync_engine, "before_cursor_execute", count)
    try:
        users = await catalog.resolve_users("component:big-app", "user:u0-0-0")
    finally:
        event.remove(catalog_store.engine.sync_engine, "before_cursor_execute", count)
    assert len(users) == 9_999
    assert len(set(users)) == 9_999
    assert "user:default/u0-0-0" not in users
    assert users[0] == "user:default/u0-0-1"
    # 5 rounds (component, root, departments, teams, -) with 2 batched queries each, teams in 1 chunk
    assert len(statements) <= 10, statements
