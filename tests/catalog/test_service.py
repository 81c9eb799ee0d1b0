"""The in-process catalog service, its readiness rules, and the auth sign-in module."""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path
from typing import Any

import pytest

from host import user_directory_ref
from host.errors import ServiceUnavailableError
from host.features import create_backend_plugin
from plugin_catalog import CatalogService, catalog_service_ref
from tests.catalog.test_api import CATALOG_PLUGINS, catalog_host
from tests.conftest import start_host, startup_error

EXAMPLE_ORG = Path(__file__).resolve().parents[2] / "examples" / "catalog" / "org.yaml"
TEAM_A = ["user:default/alice", "user:default/bob", "user:default/dave", "user:default/guest"]


def consumer_plugin(seen: dict[str, Any], *, call_in_init: bool = False, ref: Any = catalog_service_ref) -> Any:
    """A plugin that depends on the catalog service (and may use it during its own init)."""

    def register(reg: Any) -> None:
        async def init(catalog: Any) -> None:
            seen["service"] = catalog
            if call_in_init:
                seen["team-a"] = await catalog.resolve_users("group:default/team-a")

        reg.register_init(deps={"catalog": ref}, init=init)

    return create_backend_plugin("consumer", register)


def _claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


async def test_service_works_for_a_plugin_initialising_alongside_the_catalog(db_kind: str) -> None:
    seen: dict[str, Any] = {}
    async with catalog_host(db_kind, EXAMPLE_ORG, features=[consumer_plugin(seen, call_in_init=True)]) as host:
        assert seen["team-a"] == TEAM_A
        catalog = seen["service"]
        # the Backstage wire example: both teams except alice
        both = await catalog.resolve_users(["group:default/team-a", "group:default/team-b"], "user:default/alice")
        assert both == ["user:default/bob", "user:default/dave", "user:default/guest", "user:default/carol"]
        assert await catalog.resolve_users("group:engineering") == [*TEAM_A, "user:default/carol"]
        assert await catalog.resolve_users("component:checkout-service") == TEAM_A
        assert await catalog.resolve_users("component:guest-playground") == ["user:default/guest"]

        guest = await catalog.get_entity_by_ref("user:guest")
        assert guest["spec"]["profile"]["displayName"] == "Guest"
        assert [e and e["kind"] for e in await catalog.get_entities_by_refs(["api:checkout-api", "user:nope"])] == [
            "API",
            None,
        ]
        page = await catalog.query_entities({"kind": "component"}, limit=2)
        assert page["totalItems"] == 3 and len(page["items"]) == 2
        rest = await catalog.query_entities(cursor=page["pageInfo"]["nextCursor"], limit=2)
        assert len(rest["items"]) == 1
        assert ("user:default/carol", "carol@example.com") in await catalog.list_users_with_email()
        assert await catalog.get_user_ownership_refs("user:default/dave") == [
            "user:default/dave",
            "group:default/team-a",
            "group:default/team-b",
        ]

        # the sign-in module: the guest owns itself and team-a (memberOf in the example org)
        response = await host.client.get("/api/auth/guest/refresh")
        assert response.status_code == 200, response.text
        identity = response.json()["backstageIdentity"]
        assert identity["identity"]["ownershipEntityRefs"] == ["user:default/guest", "group:default/team-a"]
        assert _claims(identity["token"])["ent"] == ["user:default/guest", "group:default/team-a"]


async def test_the_user_directory_is_the_catalog_service() -> None:
    seen: dict[str, Any] = {}
    async with catalog_host("sqlite", EXAMPLE_ORG, features=[consumer_plugin(seen, ref=user_directory_ref)]):
        assert isinstance(seen["service"], CatalogService)
        assert await seen["service"].resolve_users("group:default/team-a") == TEAM_A


async def test_user_directory_fails_fast_without_the_catalog_plugin() -> None:
    seen: dict[str, Any] = {}
    features = [consumer_plugin(seen, ref=user_directory_ref)]
    async with start_host("sqlite", features=features, plugins=["auth"]):
        with pytest.raises(ServiceUnavailableError, match=r"No installed plugin provides the user directory"):
            await asyncio.wait_for(seen["service"].resolve_users("group:team-a"), 2)


async def test_catalog_service_needs_the_catalog_plugin_at_startup(tmp_path: Path) -> None:
    error = await startup_error(tmp_path, features=[consumer_plugin({})], plugins=["auth"])
    assert (
        "dependencies of plugin 'consumer' are missing for the following ref(s): serviceRef{catalog.service}" in error
    )


async def test_service_fails_fast_when_the_catalog_plugin_failed_to_start() -> None:
    seen: dict[str, Any] = {}
    config = {
        "catalog": {"locations": [{"type": "file"}]},  # no target: the catalog plugin's init fails
        "backend": {"startup": {"plugins": {"catalog": {"onPluginBootFailure": "continue"}}}},
    }
    async with start_host("sqlite", config, [consumer_plugin(seen)], plugins=CATALOG_PLUGINS):
        with pytest.raises(ServiceUnavailableError, match="The catalog plugin failed to start: .*target"):
            await asyncio.wait_for(seen["service"].get_entity_by_ref("user:x"), 2)
