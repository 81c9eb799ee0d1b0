"""Query parameter parsing: filters, projection, ordering and cursors."""

from __future__ import annotations

from typing import Any

import pytest

from host.errors import InputError
from plugin_catalog import CATALOG_FILTER_EXISTS
from plugin_catalog.query import (
    decode_cursor,
    encode_cursor,
    normalize_filter,
    parse_fields,
    parse_filter_params,
    parse_order_field,
    project,
)


def test_filter_params_and_within_or_across() -> None:
    assert parse_filter_params(["kind=User,metadata.namespace=Default", "kind=group,kind=API,spec.type"]) == [
        {"kind": ["user"], "metadata.namespace": ["default"]},
        {"kind": ["group", "api"], "spec.type": None},
    ]
    assert parse_filter_params([]) is None
    assert parse_filter_params([""]) is None
    with pytest.raises(InputError):
        parse_filter_params(["=user"])


def test_in_process_filters_match_the_query_string_form() -> None:
    assert normalize_filter({"Kind": "User", "spec.profile.email": CATALOG_FILTER_EXISTS}) == [
        {"kind": ["user"], "spec.profile.email": None}
    ]
    assert normalize_filter([{"kind": ["user", "group"]}, {"metadata.name": "x"}]) == [
        {"kind": ["user", "group"]},
        {"metadata.name": ["x"]},
    ]
    assert normalize_filter(None) is None
    for bad in ({"kind": 3}, {"kind": []}, ["kind=user"], {"": "x"}):
        with pytest.raises(InputError):
            normalize_filter(bad)  # type: ignore[arg-type]


def test_projection_keeps_only_requested_paths() -> None:
    entity = {"kind": "User", "metadata": {"name": "a", "uid": "1"}, "spec": {"profile": {"email": "e"}}}
    assert project(entity, parse_fields(["kind,metadata.name", "spec.profile.email,spec.missing"])) == {
        "kind": "User",
        "metadata": {"name": "a"},
        "spec": {"profile": {"email": "e"}},
    }
    assert project(entity, None) is entity
    # a key holding dots is found as Backstage finds it (a part that is no key joins the next one)
    annotated = {"metadata": {"annotations": {"backstage.io/managed-by-location": "file:/x", "a": "b"}}}
    assert project(annotated, ["metadata.annotations.backstage.io/managed-by-location"]) == {
        "metadata": {"annotations": {"backstage.io/managed-by-location": "file:/x"}}
    }
    assert project(annotated, ["metadata.annotations.nope.x"]) == {}


def test_order_field() -> None:
    assert parse_order_field([]) == (None, False)
    assert parse_order_field(["metadata.name"]) == ("metadata.name", False)
    # as Backstage: any field, the first orderField only, the direction exactly asc or desc
    assert parse_order_field(["spec.type"]) == ("spec.type", False)
    assert parse_order_field(["kind,desc", "metadata.name"]) == ("kind", True)
    for bad in (["kind,up"], ["kind,DESC"]):
        with pytest.raises(InputError):
            parse_order_field(bad)


@pytest.mark.parametrize(
    "state",
    [
        {"after": ["a"]},
        {"after": [1, "user:default/a"]},
        {"before": "x"},
        {"after": ["a", "b"], "orderField": 3},
        {"after": ["a", "b"], "filters": [{"kind": "user"}]},
        ["after"],
    ],
)
def test_tampered_cursors_are_input_errors(state: Any) -> None:
    with pytest.raises(InputError, match="Malformed cursor"):
        decode_cursor(encode_cursor(state))


def test_cursor_round_trip() -> None:
    state = {"filters": [{"kind": ["user"], "spec.x": None}], "orderField": "kind", "desc": True, "after": ["a", "b"]}
    assert decode_cursor(encode_cursor(state)) == state
    with pytest.raises(InputError):
        decode_cursor("%%%")
