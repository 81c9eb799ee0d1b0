"""Entity refs: lenient parsing with defaults, canonical lowercase output."""

from __future__ import annotations

import pytest

from host.errors import InputError
from plugin_catalog import parse_entity_ref, stringify_entity_ref


@pytest.mark.parametrize(
    ("ref", "kwargs", "expected"),
    [
        ("user:default/alice", {}, ("user", "default", "alice")),
        ("User:Default/Alice", {}, ("user", "default", "alice")),
        ("group:team-a", {}, ("group", "default", "team-a")),
        ("ops/team-a", {"default_kind": "group"}, ("group", "ops", "team-a")),
        ("team-a", {"default_kind": "Group", "default_namespace": "Ops"}, ("group", "ops", "team-a")),
        ("component:ns/my.svc_1", {}, ("component", "ns", "my.svc_1")),
    ],
)
def test_parse_entity_ref_applies_defaults_and_lowercases(ref: str, kwargs: dict, expected: tuple) -> None:
    assert parse_entity_ref(ref, **kwargs) == expected


@pytest.mark.parametrize("ref", ["", "   ", "alice", "user:", "user:/alice", "a:b:c", "user:ns/a/b", ":x"])
def test_parse_entity_ref_rejects_malformed_refs(ref: str) -> None:
    with pytest.raises(InputError):
        parse_entity_ref(ref)


def test_parse_entity_ref_without_namespace_default_requires_one() -> None:
    with pytest.raises(InputError, match="namespace"):
        parse_entity_ref("user:alice", default_namespace=None)


def test_stringify_entity_ref_is_canonical() -> None:
    assert stringify_entity_ref("Group", "Default", "Team-A") == "group:default/team-a"
    assert stringify_entity_ref("User", None, "x") == "user:default/x"
