"""Keyset pagination walks every order forwards and backwards without gaps or repeats."""

from __future__ import annotations

import pytest

from plugin_catalog.catalog import Catalog


@pytest.mark.parametrize(
    ("order_field", "descending"),
    [(None, False), ("metadata.name", False), ("metadata.name", True), ("kind", True), ("metadata.namespace", False)],
)
async def test_pages_forward_and_back(org_catalog: Catalog, order_field: str | None, descending: bool) -> None:
    everything = await org_catalog.query_entities(limit=100, order_field=order_field, descending=descending)
    expected = [e["metadata"]["uid"] for e in everything["items"]]
    assert len(expected) == 22

    pages = [await org_catalog.query_entities(limit=4, order_field=order_field, descending=descending)]
    while "nextCursor" in pages[-1]["pageInfo"]:
        pages.append(await org_catalog.query_entities(limit=4, cursor=pages[-1]["pageInfo"]["nextCursor"]))
    assert [e["metadata"]["uid"] for page in pages for e in page["items"]] == expected
    assert len(pages) == 6

    backwards = [pages[-1]]
    while "prevCursor" in backwards[-1]["pageInfo"]:
        backwards.append(await org_catalog.query_entities(limit=4, cursor=backwards[-1]["pageInfo"]["prevCursor"]))
    assert [page["items"] for page in reversed(backwards)] == [page["items"] for page in pages]
