"""Reading locations: multi-document YAML, relative Location targets, error reports."""

from __future__ import annotations

from pathlib import Path

from host.entity_refs import entity_ref_of
from plugin_catalog.ingestion import MANAGED_BY_LOCATION, LocationSpec, location_entity, read_locations
from tests.catalog.conftest import FIXTURES


def test_valid_entities_survive_invalid_neighbours() -> None:
    result = read_locations([LocationSpec("file", "org.yaml")], FIXTURES)
    refs = [entity_ref_of(entity) for entity in result.entities]
    assert "group:default/sre" in refs
    assert "user:default/cora" in refs
    # the Location's relative target was read relative to org.yaml
    assert "component:finance/ledger" in refs
    assert "location:default/more" in refs
    assert len(refs) == len(set(refs)) == 22
    reasons = {(error.entity_ref, error.location.rsplit("/", 1)[-1]): error.reason for error in result.errors}
    assert len(result.errors) == 6
    assert "metadata.name" in reasons[("user:default/not a valid name!", "org.yaml#13")]
    assert "spec.type" in reasons[("group:default/typeless", "org.yaml#14")]
    assert "spec.owner" in reasons[("component:default/broken-owner", "org.yaml#15")]
    assert "mapping" in reasons[(None, "org.yaml#16")]
    assert "duplicate" in reasons[("user:default/ivan", "org.yaml#17")]
    assert "cannot read file" in reasons[(None, "missing.yaml")]


def test_entities_record_where_they_came_from() -> None:
    result = read_locations([LocationSpec("file", "org.yaml")], FIXTURES)
    ledger = next(e for e in result.entities if e["metadata"]["name"] == "ledger")
    assert ledger["metadata"]["annotations"][MANAGED_BY_LOCATION] == f"file:{FIXTURES / 'more' / 'software.yaml'}"
    assert ledger["metadata"]["annotations"]["example.com/tier"] == "1"
    sre = next(e for e in result.entities if e["metadata"]["name"] == "SRE")
    assert sre["metadata"]["namespace"] == "default"


def test_bad_locations_are_reported_not_raised(tmp_path: Path) -> None:
    (tmp_path / "broken.yaml").write_text(
        "apiVersion: backstage.io/v1alpha1\nkind: User\nmetadata: {name: early}\nspec: {}\n---\nkey: [unclosed\n"
    )
    result = read_locations(
        [
            LocationSpec("url", "https://example.com/x.yaml"),
            LocationSpec("file", "broken.yaml"),
            LocationSpec("file", "nope.yaml"),
        ],
        tmp_path,
    )
    # a file that does not parse as a whole gives nothing (its earlier entities are kept by the refresh)
    assert [entity_ref_of(e) for e in result.entities if e["kind"] != "Location"] == []
    assert result.failed_locations == {f"file:{tmp_path / 'broken.yaml'}", f"file:{tmp_path / 'nope.yaml'}"}
    assert result.read == set()
    reasons = [error.reason for error in result.errors]
    assert len(reasons) == 3
    assert "unsupported location type 'url'" in reasons[0]
    assert reasons[1].startswith("invalid YAML")
    assert reasons[2].startswith("cannot read file")


def test_location_loops_are_read_once(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(
        "apiVersion: backstage.io/v1alpha1\nkind: Location\nmetadata: {name: a}\nspec: {targets: [b.yaml]}\n"
    )
    (tmp_path / "b.yaml").write_text(
        "apiVersion: backstage.io/v1alpha1\nkind: Location\nmetadata: {name: b}\nspec: {target: ./a.yaml}\n"
    )
    result = read_locations([LocationSpec("file", "a.yaml")], tmp_path)
    generated = entity_ref_of(location_entity(LocationSpec("file", "a.yaml"), tmp_path))
    assert sorted(entity_ref_of(e) for e in result.entities) == sorted(
        ["location:default/a", "location:default/b", generated]
    )
    assert result.errors == []


def test_exotic_yaml_values_are_rejected_or_converted(tmp_path: Path) -> None:
    (tmp_path / "odd.yaml").write_text(
        'apiVersion: backstage.io/v1alpha1\nkind: User\nmetadata: {name: nul}\nspec: {note: "a\\0b"}\n---\n'
        "apiVersion: backstage.io/v1alpha1\nkind: User\nmetadata: {name: bin}\nspec: {blob: !!binary /w==}\n---\n"
        "apiVersion: backstage.io/v1alpha1\nkind: User\nmetadata: {name: dated}\nspec: {since: 2024-01-31}\n---\n"
        "apiVersion: backstage.io/v1alpha1\nkind: User\nmetadata: {name: labelled, labels: {on-call: yes}}\n"
    )
    result = read_locations([LocationSpec("file", "odd.yaml")], tmp_path)
    users = [e for e in result.entities if e["kind"] == "User"]
    assert [e["metadata"]["name"] for e in users] == ["dated"]
    assert users[0]["spec"]["since"] == "2024-01-31"
    reasons = {error.entity_ref: error.reason for error in result.errors}
    assert reasons["user:default/nul"] == "an entity must not contain NUL characters"
    assert "JSON" in reasons["user:default/bin"]
    assert "metadata.labels.on-call" in reasons["user:default/labelled"]


def test_every_configured_location_is_a_location_entity_named_as_backstage_names_it(tmp_path: Path) -> None:
    """Backstage names it ``generated-`` + sha1("type:absolute target"); checked against a live Backstage."""
    (tmp_path / "org.yaml").write_text("")
    peer_location = location_entity(LocationSpec("file", "./catalog/org.yaml"), Path("/var/tmp/backstage-peer"))
    assert peer_location["metadata"]["name"] == "generated-e5c845ca3ba5c241bf5ba2080a98e75e5d04d548"
    result = read_locations(
        [LocationSpec("file", "org.yaml"), LocationSpec("url", "https://example.com/a.yaml")], tmp_path
    )
    target = str(tmp_path / "org.yaml")
    assert [(e["kind"], e["spec"]) for e in result.entities] == [
        ("Location", {"type": "file", "target": target}),
        ("Location", {"type": "url", "target": "https://example.com/a.yaml"}),
    ]
    assert result.entities[0]["metadata"]["annotations"] == {
        MANAGED_BY_LOCATION: f"file:{target}",
        "backstage.io/managed-by-origin-location": f"file:{target}",
    }
    assert result.read == {f"file:{target}"}
