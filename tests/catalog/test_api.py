"""The REST API under /api/catalog, through a real host, in Backstage's shapes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from host.config import deep_merge
from tests.catalog.conftest import FIXTURES
from tests.conftest import HostHandle, start_host

CATALOG_PLUGINS = ["auth", "catalog", "catalog-auth-resolver"]


@asynccontextmanager
async def catalog_host(
    db: str,
    *targets: Path,
    features: list[Any] | None = None,
    extra: dict[str, Any] | None = None,
    plugins: list[str] | None = None,
) -> AsyncIterator[HostHandle]:
    """A host running auth + catalog (or ``plugins``), reading ``targets``."""
    config = deep_merge({"catalog": {"locations": [{"type": "file", "target": str(t)} for t in targets]}}, extra or {})
    async with start_host(db, config, features or [], plugins=plugins or CATALOG_PLUGINS) as host:
        yield host


def _error(response: Any, status: int, name: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"]["name"] == name
    assert body["response"] == {"statusCode": status}
    assert body["request"]["method"] in ("GET", "POST")
    return body


async def test_entity_by_name(db_kind: str) -> None:
    async with catalog_host(db_kind, FIXTURES / "org.yaml") as host:
        headers = host.service_headers
        response = await host.client.get("/api/catalog/entities/by-name/Group/Default/SRE", headers=headers)
        assert response.status_code == 200
        entity = response.json()
        assert entity["apiVersion"] == "backstage.io/v1alpha1"
        assert entity["kind"] == "Group"
        assert entity["metadata"]["name"] == "SRE"
        assert entity["metadata"]["namespace"] == "default"
        assert entity["metadata"]["labels"] == {"on-call": "yes"}
        assert len(entity["metadata"]["uid"]) == 36
        assert entity["metadata"]["etag"]
        assert entity["spec"]["type"] == "team"
        assert {"type": "hasMember", "targetRef": "user:default/sam"} in entity["relations"]
        assert {"type": "childOf", "targetRef": "group:default/platform"} in entity["relations"]
        assert all(set(relation) == {"type", "targetRef"} for relation in entity["relations"])

        by_uid = await host.client.get(f"/api/catalog/entities/by-uid/{entity['metadata']['uid']}", headers=headers)
        assert by_uid.json() == entity

        user_headers = await host.user_headers("user:default/ivan")
        ledger = await host.client.get("/api/catalog/entities/by-name/component/finance/ledger", headers=user_headers)
        assert ledger.status_code == 200
        assert ledger.json()["metadata"]["namespace"] == "finance"

        missing = await host.client.get("/api/catalog/entities/by-name/group/default/nope", headers=headers)
        body = _error(missing, 404, "NotFoundError")
        assert body["error"]["message"] == "No entity named 'nope' found, with kind 'group' in namespace 'default'"
        assert body["request"]["url"] == "/entities/by-name/group/default/nope"
        _error(await host.client.get("/api/catalog/entities/by-name/group/default/sre"), 401, "AuthenticationError")
        _error(await host.client.get("/api/catalog/entities/by-uid/nope", headers=headers), 404, "NotFoundError")


async def test_by_query_filters_fields_and_ordering(db_kind: str) -> None:
    async with catalog_host(db_kind, FIXTURES / "org.yaml") as host:

        async def query(**params: Any) -> Any:
            return await host.client.get("/api/catalog/entities/by-query", params=params, headers=host.service_headers)

        users = (await query(filter="kind=user", limit=100)).json()
        assert set(users) == {"items", "totalItems", "pageInfo"}
        assert users["totalItems"] == 6
        assert users["pageInfo"] == {}
        assert [e["metadata"]["name"] for e in users["items"]] == ["cora", "cyril", "ivan", "olga", "pat", "sam"]

        # conditions in one filter are ANDed, values are case-insensitive
        sre_members = (await query(filter="kind=User,relations.memberOf=group:default/SRE")).json()
        assert [e["metadata"]["name"] for e in sre_members["items"]] == ["ivan", "sam"]
        # repeated filter params are ORed; a key repeated in one filter matches any value
        either = (await query(filter=["kind=domain", "kind=system,metadata.name=payments"])).json()
        assert sorted(e["kind"] for e in either["items"]) == ["Domain", "System"]
        any_of = (await query(filter="kind=api,kind=resource")).json()
        assert any_of["totalItems"] == 2
        # a bare key means "present"; nested fields and annotations are searchable
        with_email = (await query(filter="kind=user,spec.profile.email")).json()
        assert with_email["totalItems"] == 3
        tier = (await query(filter="metadata.annotations.example.com/tier=1")).json()
        assert [e["metadata"]["name"] for e in tier["items"]] == ["ledger"]
        assert (await query(filter="kind=user,metadata.namespace=finance")).json()["totalItems"] == 0

        projected = (await query(filter="kind=group", fields="kind,metadata.name", limit=1)).json()
        assert projected["items"] == [{"kind": "Group", "metadata": {"name": "cycle-a"}}]

        ordered = (await query(filter="kind=user", orderField="metadata.name,desc", limit=3)).json()
        assert [e["metadata"]["name"] for e in ordered["items"]] == ["sam", "pat", "olga"]

        everything = (await query(limit=1000)).json()
        assert everything["totalItems"] == len(everything["items"]) == 22

        _error(await query(limit="-1"), 400, "InputError")
        _error(await query(limit="ten"), 400, "InputError")
        _error(await query(cursor="not-a-cursor"), 400, "InputError")
        assert (await query(orderField="spec.nope")).json() == {"items": [], "totalItems": 0, "pageInfo": {}}
        _error(await query(orderField="metadata.name,sideways"), 400, "InputError")


async def test_by_query_cursor_pagination(db_kind: str) -> None:
    async with catalog_host(db_kind, FIXTURES / "org.yaml") as host:

        async def query(**params: Any) -> dict[str, Any]:
            response = await host.client.get(
                "/api/catalog/entities/by-query", params=params, headers=host.service_headers
            )
            assert response.status_code == 200, response.text
            return response.json()

        pages = [await query(filter="kind=user", orderField="metadata.name,asc", limit=4)]
        assert "prevCursor" not in pages[0]["pageInfo"]
        while "nextCursor" in pages[-1]["pageInfo"]:
            pages.append(await query(cursor=pages[-1]["pageInfo"]["nextCursor"], limit=4))
        assert [[e["metadata"]["name"] for e in p["items"]] for p in pages] == [
            ["cora", "cyril", "ivan", "olga"],
            ["pat", "sam"],
        ]
        assert all(p["totalItems"] == 6 for p in pages)
        back = await query(cursor=pages[1]["pageInfo"]["prevCursor"], limit=4)
        assert back["items"] == pages[0]["items"]
        assert "prevCursor" not in back["pageInfo"]
        assert "nextCursor" in back["pageInfo"]

        # a cursor keeps its filter; fields may still be chosen per page
        small = [await query(filter="kind=group", limit=3, fields="metadata.name")]
        while "nextCursor" in small[-1]["pageInfo"]:
            small.append(await query(cursor=small[-1]["pageInfo"]["nextCursor"], limit=3, fields="metadata.name"))
        names = [e["metadata"]["name"] for p in small for e in p["items"]]
        assert names == ["cycle-a", "cycle-b", "infra", "org", "platform", "product", "SRE"]


async def test_by_refs(db_kind: str) -> None:
    async with catalog_host(db_kind, FIXTURES / "org.yaml") as host:

        async def by_refs(body: Any) -> Any:
            return await host.client.post("/api/catalog/entities/by-refs", json=body, headers=host.service_headers)

        response = await by_refs({"entityRefs": ["user:default/sam", "group:default/missing", "Group:Default/SRE"]})
        assert response.status_code == 200
        items = response.json()["items"]
        assert [item and item["metadata"]["name"] for item in items] == ["sam", None, "SRE"]
        projected = await by_refs({"entityRefs": ["user:default/sam"], "fields": ["metadata.name", "spec.profile"]})
        sam = {"metadata": {"name": "sam"}, "spec": {"profile": {"displayName": "Sam"}}}
        assert projected.json() == {"items": [sam]}
        assert (await by_refs({"entityRefs": []})).json() == {"items": []}

        # as in Backstage, short and malformed refs are null slots, not a failed batch
        short = await by_refs({"entityRefs": ["no-kind", "user:sam", "not a ref!!", "", "user:default/sam"]})
        assert [item and item["metadata"]["name"] for item in short.json()["items"]] == [None] * 4 + ["sam"]
        _error(await by_refs({"entityRefs": "user:sam"}), 400, "InputError")
        _error(await by_refs({"entityRefs": ["user:sam"], "fields": "kind"}), 400, "InputError")
        _error(await by_refs([1, 2]), 400, "InputError")
        bad_json = await host.client.post(
            "/api/catalog/entities/by-refs",
            content=b"{nope",
            headers={**host.service_headers, "Content-Type": "application/json"},
        )
        _error(bad_json, 400, "InputError")


async def test_entity_facets(db_kind: str) -> None:
    async with catalog_host(db_kind, FIXTURES / "org.yaml") as host:

        async def facets(**params: Any) -> Any:
            return await host.client.get("/api/catalog/entity-facets", params=params, headers=host.service_headers)

        kinds = (await facets(facet="kind")).json()
        assert [item["value"] for item in kinds["facets"]["kind"]] == [
            "API",
            "Component",
            "Domain",
            "Group",
            "Location",
            "Resource",
            "System",
            "User",
        ]
        assert {"value": "Group", "count": 7} in kinds["facets"]["kind"]
        assert {"value": "Location", "count": 2} in kinds["facets"]["kind"]
        assert sum(item["count"] for item in kinds["facets"]["kind"]) == 22
        typed = (await facets(facet=["spec.type", "spec.lifecycle"], filter="kind=component")).json()
        assert typed == {
            "facets": {
                "spec.type": [{"value": "library", "count": 2}, {"value": "service", "count": 1}],
                "spec.lifecycle": [{"value": "experimental", "count": 1}, {"value": "production", "count": 2}],
            }
        }
        _error(await facets(), 400, "InputError")


async def test_refresh_endpoint_reingests(db_kind: str, tmp_path: Path) -> None:
    location = tmp_path / "catalog.yaml"
    location.write_text("apiVersion: backstage.io/v1alpha1\nkind: User\nmetadata: {name: first}\nspec: {}\n")
    async with catalog_host(db_kind, location) as host:
        headers = host.service_headers
        first = await host.client.get("/api/catalog/entities/by-name/user/default/first", headers=headers)
        assert first.status_code == 200
        location.write_text(
            "apiVersion: backstage.io/v1alpha1\nkind: User\nmetadata: {name: second}\nspec: {}\n---\n"
            "apiVersion: backstage.io/v1alpha1\nkind: Group\nmetadata: {name: no-type}\nspec: {}\n"
        )
        _error(await host.client.post("/api/catalog/refresh"), 401, "AuthenticationError")
        user = await host.user_headers("user:default/first")
        denied = _error(await host.client.post("/api/catalog/refresh", headers=user), 403, "NotAllowedError")
        assert denied["error"]["message"] == "This endpoint does not allow 'user' credentials"
        response = await host.client.post("/api/catalog/refresh", headers=headers)
        assert response.status_code == 200
        report = response.json()
        assert (report["entities"], report["added"], report["removed"]) == (2, 1, 1)  # with its Location
        assert report["errors"] == [
            {
                "location": f"file:{location}#1",
                "reason": "spec.type: Field required",
                "entityRef": "group:default/no-type",
            }
        ]
        gone = await host.client.get("/api/catalog/entities/by-name/user/default/first", headers=headers)
        assert gone.status_code == 404
        second = await host.client.get("/api/catalog/entities/by-name/user/default/second", headers=headers)
        assert second.status_code == 200


async def test_scheduled_refresh_with_a_target_relative_to_the_working_directory(
    db_kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    location = tmp_path / "catalog.yaml"
    location.write_text("apiVersion: backstage.io/v1alpha1\nkind: User\nmetadata: {name: early}\nspec: {}\n")
    monkeypatch.chdir(tmp_path)
    extra = {"catalog": {"refresh": {"frequency": {"milliseconds": 300}}}}
    async with catalog_host(db_kind, Path("catalog.yaml"), extra=extra) as host:
        early = await host.client.get("/api/catalog/entities/by-name/user/default/early", headers=host.service_headers)
        assert early.status_code == 200
        location.write_text("apiVersion: backstage.io/v1alpha1\nkind: User\nmetadata: {name: late}\nspec: {}\n")
        for _ in range(100):
            response = await host.client.get(
                "/api/catalog/entities/by-name/user/default/late", headers=host.service_headers
            )
            if response.status_code == 200:
                break
            await asyncio.sleep(0.1)
        assert response.status_code == 200
