"""A location that cannot be read keeps its last good entities; only a location read successfully removes any."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from tests.catalog.test_api import catalog_host

EXAMPLE_ORG = Path(__file__).resolve().parents[2] / "examples" / "catalog" / "org.yaml"
TEAM_A = ["user:default/alice", "user:default/bob", "user:default/dave", "user:default/guest"]


async def _send_to_team_a(host: Any) -> list[str]:
    response = await host.client.post(
        "/api/notifications",
        json={"recipients": {"type": "entity", "entityRef": "group:default/team-a"}, "payload": {"title": "Hi"}},
        headers=host.service_headers,
    )
    assert response.status_code == 200, response.text
    return sorted(item["user"] for item in response.json())


async def test_moved_org_file_keeps_group_members_until_it_is_back(db_kind: str, tmp_path: Path) -> None:
    shutil.copytree(EXAMPLE_ORG.parent, tmp_path, dirs_exist_ok=True)
    org = tmp_path / "org.yaml"
    async with catalog_host(db_kind, org, plugins=["auth", "catalog", "notifications"]) as host:
        assert await _send_to_team_a(host) == TEAM_A

        org.rename(tmp_path / "org.yaml.away")
        report = (await host.client.post("/api/catalog/refresh", headers=host.service_headers)).json()
        assert report["removed"] == 0
        assert report["kept"] > 0
        assert report["errors"][0]["location"] == f"file:{org}"
        assert report["errors"][0]["reason"].startswith("cannot read file")
        assert await _send_to_team_a(host) == TEAM_A

        # a file that does not parse keeps them too
        org.write_text("apiVersion: backstage.io/v1alpha1\nkind: [unclosed\n")
        report = (await host.client.post("/api/catalog/refresh", headers=host.service_headers)).json()
        assert (report["removed"], report["errors"][0]["reason"][:12]) == (0, "invalid YAML")
        assert await _send_to_team_a(host) == TEAM_A

        # back, without bob: the location was read, so removals apply again
        documents = (tmp_path / "org.yaml.away").read_text().split("\n---\n")
        kept = [
            doc.replace("members: [alice, bob, dave]", "members: [alice, dave]")
            for doc in documents
            if "name: bob\n" not in doc
        ]
        org.write_text("\n---\n".join(kept))
        report = (await host.client.post("/api/catalog/refresh", headers=host.service_headers)).json()
        assert (report["removed"], report["kept"], report["errors"]) == (1, 0, [])
        bob = await host.client.get("/api/catalog/entities/by-name/user/default/bob", headers=host.service_headers)
        assert bob.status_code == 404
        assert await _send_to_team_a(host) == [user for user in TEAM_A if user != "user:default/bob"]


async def test_an_entity_that_becomes_invalid_keeps_its_last_valid_version(db_kind: str, tmp_path: Path) -> None:
    org = tmp_path / "org.yaml"
    group = "apiVersion: backstage.io/v1alpha1\nkind: Group\nmetadata: {name: team, title: %s}\nspec: {%s}\n"
    user = "apiVersion: backstage.io/v1alpha1\nkind: User\nmetadata: {name: ann}\nspec: {memberOf: [team]}\n"
    org.write_text(group % ("Team", "type: team") + "---\n" + user)
    async with catalog_host(db_kind, org) as host:

        async def team() -> Any:
            response = await host.client.get(
                "/api/catalog/entities/by-name/group/default/team", headers=host.service_headers
            )
            return response.json() if response.status_code == 200 else None

        before = await team()
        org.write_text(group % ("Renamed", "") + "---\n" + user)  # spec.type gone: invalid
        report = (await host.client.post("/api/catalog/refresh", headers=host.service_headers)).json()
        assert (report["removed"], report["kept"]) == (0, 1)
        assert report["errors"] == [
            {"location": f"file:{org}#0", "reason": "spec.type: Field required", "entityRef": "group:default/team"}
        ]
        assert await team() == before  # the last valid version, relations included

        org.write_text(group % ("Renamed", "type: team") + "---\n" + user)
        report = (await host.client.post("/api/catalog/refresh", headers=host.service_headers)).json()
        assert (report["updated"], report["kept"], report["errors"]) == (1, 0, [])
        assert (await team())["metadata"]["title"] == "Renamed"

        org.write_text(user)  # gone from a file that was read: removed
        report = (await host.client.post("/api/catalog/refresh", headers=host.service_headers)).json()
        assert (report["removed"], report["kept"]) == (1, 0)
        assert await team() is None
