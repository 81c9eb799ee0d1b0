"""The catalog API answers as a live Backstage (catalog-backend 4.0.5) does; see docs/catalog.md.

Each expectation below was first asked of the real Backstage with curl (the
answers are recorded in docs/catalog.md, "Compatibility with Backstage").
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.catalog.test_api import _error, catalog_host
from tests.conftest import HostHandle

PEOPLE = 250  # more than the default page of 200


def _org() -> list[dict[str, Any]]:
    def user(name: str, display: str | None = None, **spec: Any) -> dict[str, Any]:
        profile = {"profile": {"displayName": display}} if display else {}
        return {
            "apiVersion": "backstage.io/v1alpha1",
            "kind": "User",
            "metadata": {"name": name},
            "spec": {**profile, **spec},
        }

    return [
        {
            "apiVersion": "backstage.io/v1alpha1",
            "kind": "Group",
            "metadata": {"name": "team-a"},
            "spec": {"type": "team", "members": ["alice", "bob"]},
        },
        {
            "apiVersion": "backstage.io/v1alpha1",
            "kind": "Group",
            "metadata": {"name": "team-b"},
            "spec": {"type": "squad"},
        },
        user("alice", "Alice"),
        user("bob", "bob"),
        user("uwe", "Über Uwe"),
        user("a_b", "Under Score"),
        {
            "apiVersion": "backstage.io/v1alpha1",
            "kind": "Component",
            "metadata": {"name": "shop", "tags": ["web", "java"]},
            "spec": {"type": "service", "lifecycle": "production", "owner": "team-a"},
        },
        *(user(f"person-{index:03d}") for index in range(PEOPLE)),
    ]


@pytest.fixture
async def host(db_kind: str, tmp_path: Path) -> AsyncIterator[HostHandle]:
    org = tmp_path / "org.yaml"
    org.write_text(yaml.safe_dump_all(_org()))
    async with catalog_host(db_kind, org) as handle:
        handle.org = org  # type: ignore[attr-defined]
        yield handle


async def _get(host: HostHandle, path: str, params: Any = None) -> Any:
    return await host.client.get(f"/api/catalog{path}", params=params, headers=host.service_headers)


async def _query(host: HostHandle, **params: Any) -> dict[str, Any]:
    response = await _get(host, "/entities/by-query", params)
    assert response.status_code == 200, response.text
    return response.json()


def _names(page: dict[str, Any]) -> list[str]:
    return [item["metadata"]["name"] for item in page["items"]]


async def test_full_text_filter_is_case_insensitive_and_literal(host: HostHandle) -> None:
    page = await _query(host, fullTextFilterTerm="ALI", fullTextFilterFields="METADATA.NAME", fields="metadata.name")
    assert page == {"items": [{"metadata": {"name": "alice"}}], "totalItems": 1, "pageInfo": {}}
    # comma-separated or repeated fields; a term is trimmed
    teams = await _query(host, fullTextFilterTerm=" team ", fullTextFilterFields=["metadata.name", "kind"])
    assert sorted(_names(teams)) == ["team-a", "team-b"]
    assert sorted(_names(await _query(host, fullTextFilterTerm="team", fullTextFilterFields="metadata.name,kind"))) == [
        "team-a",
        "team-b",
    ]
    # non-ASCII letters fold on every database
    assert _names(await _query(host, fullTextFilterTerm="üBER", fullTextFilterFields="spec.profile.displayName")) == [
        "uwe"
    ]
    # without fields the term searches the order field, else metadata.uid (as Backstage)
    assert (await _query(host, fullTextFilterTerm="ali"))["totalItems"] == 0
    assert _names(await _query(host, fullTextFilterTerm="ali", orderField="metadata.name")) == ["alice"]
    # '_' and '%' are literal (Backstage passes them to LIKE as wildcards)
    assert _names(await _query(host, fullTextFilterTerm="a_", fullTextFilterFields="metadata.name")) == ["a_b"]
    assert (await _query(host, fullTextFilterTerm="%", fullTextFilterFields="metadata.name"))["totalItems"] == 0


async def test_default_page_offset_and_no_limit_cap(host: HostHandle) -> None:
    everything = PEOPLE + 7 + 1  # people, the named entities, the generated Location
    first = await _query(host, fields="metadata.name")
    assert len(first["items"]) == 200
    assert first["totalItems"] == everything
    assert "nextCursor" in first["pageInfo"]
    assert len((await _query(host, limit=100_000, fields="kind"))["items"]) == everything
    groups = await _query(host, filter="kind=group", orderField="metadata.name", offset=1, fields="metadata.name")
    assert (_names(groups), groups["totalItems"]) == (["team-b"], 2)
    skipped = await _query(host, filter="kind=user", orderField="metadata.name,desc", offset=2, limit=2)
    assert _names(skipped) == ["person-248", "person-247"]  # after uwe and person-249
    assert "prevCursor" in skipped["pageInfo"]
    nxt = await _query(host, cursor=skipped["pageInfo"]["nextCursor"], limit=2)
    assert _names(nxt) == ["person-246", "person-245"]
    assert (await _query(host, offset=10_000))["items"] == []


async def test_order_by_any_field_leaves_out_entities_without_it(host: HostHandle) -> None:
    page = await _query(host, orderField="spec.profile.displayName,desc", fields="metadata.name")
    # sorted by the lowercase value, as Backstage; the 250 people have no display name
    assert (_names(page), page["totalItems"]) == (["uwe", "a_b", "bob", "alice"], 4)  # "über" > "under"
    by_type = await _query(host, orderField="spec.type", fields="metadata.name,spec.type")
    assert [item["spec"]["type"] for item in by_type["items"]] == ["file", "service", "squad", "team"]
    # a list field sorts by its least value and lists each entity once
    assert _names(await _query(host, orderField="metadata.tags", fields="metadata.name")) == ["shop"]
    # only the first orderField counts; the direction is exactly asc or desc
    assert _names(await _query(host, filter="kind=group", orderField=["metadata.name,desc", "kind"]))[0] == "team-b"
    pages = [await _query(host, filter="kind=user", orderField="spec.profile.displayName", limit=3)]
    pages.append(await _query(host, cursor=pages[0]["pageInfo"]["nextCursor"], limit=3))
    assert [_names(p) for p in pages] == [["alice", "bob", "a_b"], ["uwe"]]


async def test_total_items_exclude(host: HostHandle) -> None:
    page = await _query(host, totalItems="exclude", limit=2, filter="kind=user")
    assert page["totalItems"] == 0 and len(page["items"]) == 2
    following = await _query(host, cursor=page["pageInfo"]["nextCursor"], limit=2)
    assert following["totalItems"] == 0
    assert (await _query(host, totalItems="include", limit=0, filter="kind=group"))["totalItems"] == 2


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"sort": "x"}, "Unknown query parameter 'sort'"),
        ({"offset": "-1"}, "request/query/offset must be >= 0"),
        ({"offset": "1.5"}, "request/query/offset must be integer"),
        ({"limit": "ten"}, "request/query/limit must be integer"),
        ({"limit": ["1", "2"]}, "request/query/limit must be integer"),
        ({"fields": "metadata.tags[0]"}, 'Invalid field "metadata.tags[0]", array type fields are not supported'),
        ({"fields": ""}, "Empty value found for query parameter 'fields'"),
        ({"filter": ""}, "Empty value found for query parameter 'filter'"),
        (
            {"filter": "=x"},
            "Invalid filter, '=x' is not a valid statement (expected a string on the form a=b or a= or a)",
        ),
        (
            {"totalItems": "bad"},
            "request/query/totalItems must be equal to one of the allowed values: include, exclude",
        ),
        ({"orderField": "metadata.name,ASC"}, "Invalid order field order, must be asc or desc"),
        ({"fullTextFilterTerm": ["a", "b"]}, "request/query/fullTextFilterTerm must be string"),
        ({"cursor": ""}, "Empty value found for query parameter 'cursor'"),
    ],
    ids=lambda value: str(value) if isinstance(value, dict) else "",
)
async def test_bad_query_parameters_are_400_with_backstages_message(
    host: HostHandle, params: dict[str, Any], message: str
) -> None:
    body = _error(await _get(host, "/entities/by-query", params), 400, "InputError")
    assert body["error"]["message"] == message


async def test_other_routes_refuse_unknown_parameters(host: HostHandle) -> None:
    for path in ("/entities/by-name/user/default/alice", "/entity-facets?facet=kind&x=1"):
        response = await _get(host, path + ("?x=1" if "?" not in path else ""))
        assert _error(response, 400, "InputError")["error"]["message"] == "Unknown query parameter 'x'"
    missing = _error(await _get(host, "/entity-facets"), 400, "InputError")
    assert missing["error"]["message"] == "request/query must have required property 'facet'"
    refs = await host.client.post(
        "/api/catalog/entities/by-refs?fields=kind", json={"entityRefs": []}, headers=host.service_headers
    )
    assert _error(refs, 400, "InputError")["error"]["message"] == "Unknown query parameter 'fields'"


async def test_by_refs_gives_null_for_malformed_refs_and_applies_the_filter(host: HostHandle) -> None:
    async def by_refs(body: Any, query: str = "") -> Any:
        response = await host.client.post(
            f"/api/catalog/entities/by-refs{query}", json=body, headers=host.service_headers
        )
        assert response.status_code == 200, response.text
        return [item and item["metadata"]["name"] for item in response.json()["items"]]

    refs = ["not a ref!!", "alice", "user:alice", "User:Default/Alice", "group:default/team-a", "", "user:default/"]
    assert await by_refs({"entityRefs": refs, "fields": ["metadata.name"]}) == [
        None,
        None,
        None,
        "alice",
        "team-a",
        None,
        None,
    ]
    pair = {"entityRefs": ["user:default/alice", "group:default/team-a"]}
    assert await by_refs(pair, "?filter=kind=user") == ["alice", None]
    assert await by_refs(pair, "?filter=kind=user&filter=kind=group") == ["alice", "team-a"]
    assert await by_refs(pair, "?filter=relations.memberof=group:default/team-a") == ["alice", None]


async def test_facets_sorted_by_value_and_locations_counted(host: HostHandle) -> None:
    facets = (await _get(host, "/entity-facets", {"facet": ["kind", "spec.type"]})).json()["facets"]
    assert facets["kind"] == [
        {"value": "Component", "count": 1},
        {"value": "Group", "count": 2},
        {"value": "Location", "count": 1},
        {"value": "User", "count": PEOPLE + 4},
    ]
    assert facets["spec.type"] == [
        {"value": "file", "count": 1},
        {"value": "service", "count": 1},
        {"value": "squad", "count": 1},
        {"value": "team", "count": 1},
    ]
    # the facet keeps the spelling asked for
    assert list((await _get(host, "/entity-facets", {"facet": "KIND"})).json()["facets"]) == ["KIND"]


async def test_configured_location_is_a_location_entity(host: HostHandle) -> None:
    target = str(host.org)  # type: ignore[attr-defined]
    page = await _query(host, filter="kind=location")
    (location,) = page["items"]
    assert location["metadata"]["name"] == "generated-" + hashlib.sha1(f"file:{target}".encode()).hexdigest()
    assert location["spec"] == {"type": "file", "target": target}
    assert location["metadata"]["annotations"]["backstage.io/managed-by-location"] == f"file:{target}"
    assert location["relations"] == []


async def test_huge_limit_and_offset_are_clamped_not_a_500(host: HostHandle) -> None:
    """Backstage answers 500 for ``limit=99999999999999999999``; Greenroom reads it as "all"."""
    huge = "9" * 20
    assert len((await _query(host, limit=huge, fields="kind"))["items"]) == PEOPLE + 8
    assert (await _query(host, offset=huge))["items"] == []
    assert len((await _query(host, limit="1e1"))["items"]) == 10  # AJV coercion, as Backstage


async def test_a_full_text_term_longer_than_any_value_matches_nothing(db_kind: str, tmp_path: Path) -> None:
    """SQLite refuses LIKE patterns over 50,000 bytes (a 500 before); no indexed value is over 200 characters."""
    org = tmp_path / "org.yaml"
    org.write_text(yaml.safe_dump_all(_org()[:3]))
    extra = {"backend": {"limits": {"maxHeaderBytes": 131072}}}
    async with catalog_host(db_kind, org, extra=extra) as handle:
        for term in ("a" * 201, "a" * 60_000):
            page = await _query(handle, fullTextFilterTerm=term, fullTextFilterFields="metadata.name")
            assert (page["items"], page["totalItems"]) == ([], 0)
