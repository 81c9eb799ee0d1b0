"""Core services through real plugins: plugin-to-plugin auth, discovery, lifecycle, errors."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import falcon
import httpx

from host import core_services, create_backend_plugin
from tests.conftest import PG_DSN, start_host
from tests.host.test_http_auth import whoami_plugin


def caller_plugin() -> Any:
    """Calls the whoami plugin over HTTP with plugin-to-plugin tokens, as itself and on behalf of a user."""

    class Call:
        def __init__(self, auth: Any, http_auth: Any, discovery: Any) -> None:
            self._auth, self._http_auth, self._discovery = auth, http_auth, discovery

        async def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
            creds = await self._http_auth.credentials(req, allow=("user",))
            base = await self._discovery.get_base_url("whoami")
            as_self = await self._auth.get_plugin_request_token(
                on_behalf_of=self._auth.get_own_service_credentials(), target_plugin_id="whoami"
            )
            as_user = await self._auth.get_plugin_request_token(on_behalf_of=creds, target_plugin_id="whoami")
            wrong_target = await self._auth.get_plugin_request_token(
                on_behalf_of=self._auth.get_own_service_credentials(), target_plugin_id="somewhere-else"
            )
            async with httpx.AsyncClient() as client:
                results = [
                    await client.get(f"{base}/me", headers={"Authorization": f"Bearer {token}"})
                    for token in (as_self, as_user, wrong_target)
                ]
            resp.media = {"base": base, "results": [[r.status_code, r.json()] for r in results]}

    def register(reg: Any) -> None:
        def init(router: Any, auth: Any, http_auth: Any, discovery: Any) -> None:
            router.add_route("/call", Call(auth, http_auth, discovery))

        reg.register_init(
            deps={
                "router": core_services.http_router,
                "auth": core_services.auth,
                "http_auth": core_services.http_auth,
                "discovery": core_services.discovery,
            },
            init=init,
        )

    return create_backend_plugin("caller", register)


async def test_plugin_to_plugin_credentials() -> None:
    async with start_host(plugins=["auth"], features=[whoami_plugin(), caller_plugin()]) as host:
        response = await host.client.get("/api/caller/call", headers=await host.user_headers("user:default/jane"))
        body = response.json()
        assert body["base"] == f"{host.url}/api/whoami"
        as_self, as_user, wrong_target = body["results"]
        assert as_self == [200, {"type": "service", "who": "plugin:caller"}]
        assert as_user == [200, {"type": "user", "who": "user:default/jane"}]
        assert wrong_target[0] == 401


async def test_discovery_overrides() -> None:
    config = {
        "discovery": {
            "endpoints": [
                {
                    "target": {
                        "internal": "http://internal.example/{{pluginId}}",
                        "external": "https://example.com/api/{{pluginId}}",
                    },
                    "plugins": ["catalog"],
                }
            ]
        }
    }
    async with start_host(plugins=["auth"], config=config) as host:
        discovery = await host.backend.get_service(core_services.discovery, "auth")
        assert await discovery.get_base_url("catalog") == "http://internal.example/catalog"
        assert await discovery.get_external_base_url("catalog") == "https://example.com/api/catalog"
        assert await discovery.get_base_url("notifications") == f"{host.url}/api/notifications"


async def test_internal_errors_hide_details_and_lifecycle_hooks_run() -> None:
    events: list[str] = []

    class Boom:
        async def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
            raise RuntimeError("database password is hunter2")

    def register(reg: Any) -> None:
        def init(router: Any, lifecycle: Any, root_lifecycle: Any) -> None:
            router.add_route("/boom", Boom())
            router.add_auth_policy("/boom")
            lifecycle.add_startup_hook(lambda: events.append("plugin startup"))
            lifecycle.add_shutdown_hook(lambda: events.append("plugin shutdown"))
            root_lifecycle.add_startup_hook(lambda: events.append("root startup"))
            root_lifecycle.add_before_shutdown_hook(lambda: events.append("root before shutdown"))
            root_lifecycle.add_shutdown_hook(lambda: events.append("root shutdown"))

        reg.register_init(
            deps={
                "router": core_services.http_router,
                "lifecycle": core_services.lifecycle,
                "root_lifecycle": core_services.root_lifecycle,
            },
            init=init,
        )

    async with start_host(plugins=["auth"], features=[create_backend_plugin("boom", register)]) as host:
        response = await host.client.get("/api/boom/boom")
        assert response.status_code == 500
        assert response.json() == {
            "error": {"name": "Error", "message": "Internal Server Error"},
            "request": {"method": "GET", "url": "/boom"},
            "response": {"statusCode": 500},
        }
        assert "hunter2" not in response.text and "Traceback" not in response.text
        assert events == ["plugin startup", "root startup"]
    assert events[2:] == ["root before shutdown", "plugin shutdown", "root shutdown"]


async def test_feature_added_by_import_path() -> None:
    async with start_host(plugins=["auth"], features=["tests.host.fixtures.import_path_plugin:plugin"]) as host:
        assert (await host.client.get("/api/by-path/ping")).json() == {"pong": True}


async def test_postgres_database_per_plugin_mode() -> None:
    prefix = f"gr_db_{uuid.uuid4().hex[:6]}_"
    config = {"backend": {"database": {"pluginDivisionMode": "database", "prefix": prefix}}}
    try:
        async with start_host("postgres", plugins=["auth"], config=config) as host:
            assert (await host.client.get("/api/auth/guest/refresh")).status_code == 200
        conn = await asyncpg.connect(PG_DSN)
        try:
            names = {
                r["datname"]
                for r in await conn.fetch("SELECT datname FROM pg_database WHERE datname LIKE $1", prefix + "%")
            }
        finally:
            await conn.close()
        assert names == {f"{prefix}auth"}
    finally:
        conn = await asyncpg.connect(PG_DSN)
        try:
            for row in await conn.fetch("SELECT datname FROM pg_database WHERE datname LIKE $1", prefix + "%"):
                await conn.execute(f'DROP DATABASE IF EXISTS "{row["datname"]}" WITH (FORCE)')
        finally:
            await conn.close()
