"""Ingestion into the database: entities, relations both ways, and re-refresh behaviour."""

from __future__ import annotations

import asyncio
from pathlib import Path

import yaml

from plugin_catalog.catalog import Catalog
from plugin_catalog.store import CatalogStore
from tests.catalog.conftest import FIXTURES, RecordingLogger, make_refresher


def _relations(entity: dict) -> set[tuple[str, str]]:
    return {(relation["type"], relation["targetRef"]) for relation in entity["relations"]}


async def test_org_ingests_valid_entities_and_reports_invalid_ones(
    catalog_store: CatalogStore, logger: RecordingLogger
) -> None:
    report = await make_refresher(catalog_store, logger, FIXTURES / "org.yaml").refresh()
    assert report.entities == 22
    assert report.stats.added == 22
    assert len(report.errors) == 6
    warnings = [fields for level, _, fields in logger.records if level == "warning"]
    assert len(warnings) == 6
    assert all(fields["location"] for fields in warnings)
    catalog = Catalog(catalog_store)
    sre = await catalog.get_entity_by_ref("group:default/sre")
    assert sre is not None
    assert sre["metadata"]["name"] == "SRE"
    assert sre["metadata"]["uid"] and sre["metadata"]["etag"]
    assert await catalog.get_entity_by_ref("group:default/typeless") is None


async def test_relations_are_kept_both_ways(org_catalog: Catalog) -> None:
    entities = await org_catalog.get_entities_by_refs(
        [
            "user:default/ivan",
            "group:default/infra",
            "group:default/sre",
            "group:default/platform",
            "user:default/pat",
            "group:default/product",
            "component:finance/ledger",
            "system:default/payments",
        ]
    )
    ivan, infra, sre, platform, pat, product, ledger, payments = entities
    # memberOf from User.spec.memberOf and from Group.spec.members, mirrored as hasMember
    assert _relations(ivan) == {("memberOf", "group:default/infra"), ("memberOf", "group:default/sre")}
    assert ("hasMember", "user:default/ivan") in _relations(infra)
    assert {("hasMember", "user:default/sam"), ("hasMember", "user:default/ivan")} <= _relations(sre)
    assert ("hasMember", "user:default/pat") in _relations(product)
    assert ("memberOf", "group:default/product") in _relations(pat)
    # childOf/parentOf from spec.parent and spec.children
    assert {("childOf", "group:default/platform")} <= _relations(infra)
    assert {
        ("parentOf", "group:default/infra"),
        ("parentOf", "group:default/sre"),
        ("childOf", "group:default/org"),
    } <= _relations(platform)
    # ownedBy/ownerOf and partOf/hasPart
    assert {("ownedBy", "group:default/sre"), ("partOf", "system:default/payments")} <= _relations(ledger)
    assert {("ownerOf", "component:finance/ledger"), ("ownerOf", "api:default/ledger-api")} <= _relations(sre)
    assert ("hasPart", "component:finance/ledger") in _relations(payments)
    # a relation appears once even when declared from both sides
    assert [r["targetRef"] for r in ivan["relations"]].count("group:default/infra") == 1


async def test_refresh_keeps_uid_and_etag_of_unchanged_entities(
    catalog_store: CatalogStore, logger: RecordingLogger, tmp_path: Path
) -> None:
    docs = [
        {
            "apiVersion": "backstage.io/v1alpha1",
            "kind": "Group",
            "metadata": {"name": "g"},
            "spec": {"type": "team", "members": ["u1"]},
        },
        {"apiVersion": "backstage.io/v1alpha1", "kind": "User", "metadata": {"name": "u1"}, "spec": {}},
        {"apiVersion": "backstage.io/v1alpha1", "kind": "User", "metadata": {"name": "u2"}, "spec": {}},
    ]
    path = tmp_path / "org.yaml"
    path.write_text(yaml.safe_dump_all(docs))
    refresher = make_refresher(catalog_store, logger, path)
    await refresher.refresh()
    catalog = Catalog(catalog_store)
    before = {e["metadata"]["name"]: e for e in await catalog.get_entities_by_refs(["group:g", "user:u1", "user:u2"])}

    docs[0]["spec"]["members"] = ["u2"]  # u1 leaves, u2 joins: both users' relations change
    docs[0]["metadata"]["title"] = "G"
    docs.pop(1)
    docs.append({"apiVersion": "backstage.io/v1alpha1", "kind": "User", "metadata": {"name": "u3"}, "spec": {}})
    path.write_text(yaml.safe_dump_all(docs))
    report = await refresher.refresh()
    assert (report.stats.added, report.stats.updated, report.stats.removed) == (1, 2, 1)

    group, u1, u2 = await catalog.get_entities_by_refs(["group:g", "user:u1", "user:u2"])
    assert u1 is None
    assert group["metadata"]["uid"] == before["g"]["metadata"]["uid"]
    assert group["metadata"]["etag"] != before["g"]["metadata"]["etag"]
    assert group["metadata"]["title"] == "G"
    assert _relations(group) == {("hasMember", "user:default/u2")}
    assert u2["metadata"]["uid"] == before["u2"]["metadata"]["uid"]
    assert _relations(u2) == {("memberOf", "group:default/g")}

    again = await refresher.refresh()
    # four unchanged: the three entities and the configured location's Location entity
    assert (again.stats.added, again.stats.updated, again.stats.removed, again.stats.unchanged) == (0, 0, 0, 4)
    assert (await catalog.get_entity_by_ref("group:g"))["metadata"]["etag"] == group["metadata"]["etag"]
    page = await catalog.query_entities({"relations.hasmember": "user:default/u1"})
    assert page["totalItems"] == 0


async def test_concurrent_refreshes_serialise(catalog_store: CatalogStore, logger: RecordingLogger) -> None:
    """Two refreshers (as on two workers) writing at once both succeed and leave one consistent catalog."""
    first = make_refresher(catalog_store, logger, FIXTURES / "org.yaml")
    second = make_refresher(catalog_store, logger, FIXTURES / "org.yaml")
    reports = await asyncio.gather(first.refresh(), second.refresh(), first.refresh())
    assert sorted(report.stats.added for report in reports) == [0, 0, 22]
    page = await Catalog(catalog_store).query_entities(limit=100)
    assert page["totalItems"] == 22
    uids = {entity["metadata"]["uid"] for entity in page["items"]}
    assert len(uids) == 22
