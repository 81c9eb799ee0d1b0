"""The plugin router, the credentials barrier and the auth plugin, over real HTTP."""

from __future__ import annotations

import re
from typing import Any

import falcon

from host import core_services, create_backend_plugin
from tests.conftest import SERVICE_SUBJECT, start_host


class WhoAmI:
    """Echoes the caller's principal."""

    def __init__(self, http_auth: Any) -> None:
        self._http_auth = http_auth

    async def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        creds = await self._http_auth.credentials(req, allow=("user", "service", "none"))
        resp.media = {"type": creds.principal.type, "who": creds.principal.display}


def whoami_plugin(plugin_id: str = "whoami") -> Any:
    def register(reg: Any) -> None:
        async def init(router: Any, http_auth: Any) -> None:
            router.add_route("/me", WhoAmI(http_auth))
            router.add_route("/public/me", WhoAmI(http_auth))
            router.add_auth_policy("/public/*", allow="unauthenticated")

        reg.register_init(deps={"router": core_services.http_router, "http_auth": core_services.http_auth}, init=init)

    return create_backend_plugin(plugin_id, register)


async def test_principals_and_401(db_kind: str) -> None:
    async with start_host(db_kind, features=[whoami_plugin()], plugins=["auth"]) as host:
        anonymous = await host.client.get("/api/whoami/me")
        assert anonymous.status_code == 401
        assert anonymous.json() == {
            "error": {"name": "AuthenticationError", "message": "Missing credentials"},
            "request": {"method": "GET", "url": "/me"},
            "response": {"statusCode": 401},
        }
        public = await host.client.get("/api/whoami/public/me")
        assert public.json() == {"type": "none", "who": "anonymous"}

        service = await host.client.get("/api/whoami/me", headers=host.service_headers)
        assert service.json() == {"type": "service", "who": SERVICE_SUBJECT}

        bad = await host.client.get("/api/whoami/me", headers={"Authorization": "Bearer not-a-valid-token"})
        assert bad.status_code == 401

        user = await host.client.get("/api/whoami/me", headers=await host.user_headers("user:default/jane"))
        assert user.json() == {"type": "user", "who": "user:default/jane"}


async def test_guest_sign_in_matches_backstage_shape() -> None:
    async with start_host(plugins=["auth"], features=[whoami_plugin()]) as host:
        for method in ("GET", "POST"):
            response = await host.client.request(method, "/api/auth/guest/refresh")
            assert response.status_code == 200
            body = response.json()
            assert body["profile"] == {}
            identity = body["backstageIdentity"]
            assert identity["expiresInSeconds"] == 3600
            assert identity["identity"] == {
                "type": "user",
                "userEntityRef": "user:default/guest",
                "ownershipEntityRefs": ["user:default/guest"],
            }
        token = identity["token"]
        me = await host.client.get("/api/whoami/me", headers={"Authorization": f"Bearer {token}"})
        assert me.json()["who"] == "user:default/guest"
        info = await host.client.get("/api/auth/v1/userinfo", headers={"Authorization": f"Bearer {token}"})
        assert info.json() == {"claims": {"sub": "user:default/guest", "ent": ["user:default/guest"]}}
        assert (await host.client.get("/api/auth/v1/userinfo")).status_code == 401


async def test_proxy_provider_requires_the_shared_secret() -> None:
    config = {"auth": {"providers": {"proxy": {"secret": "proxy-shared-secret", "allowUnknownUsers": True}}}}
    async with start_host(plugins=["auth"], config=config) as host:
        spoofed = await host.client.get("/api/auth/proxy/refresh", headers={"x-forwarded-user": "mallory"})
        assert spoofed.status_code == 401
        ok = await host.client.get(
            "/api/auth/proxy/refresh",
            headers={"x-forwarded-user": "Jane", "x-greenroom-proxy-secret": "proxy-shared-secret"},
        )
        assert ok.status_code == 200
        assert ok.json()["backstageIdentity"]["identity"]["userEntityRef"] == "user:default/jane"
        unknown = await host.client.get("/api/auth/nope/refresh", headers=host.service_headers)
        assert unknown.status_code == 404


async def test_access_restrictions_keep_a_token_out_of_other_plugins() -> None:
    config = {
        "backend": {
            "auth": {
                "externalAccess": [
                    {
                        "type": "static",
                        "options": {"token": "restricted-token-1", "subject": "ci"},
                        "accessRestrictions": [{"plugin": "whoami"}],
                    },
                ]
            }
        }
    }
    async with start_host(plugins=["auth"], features=[whoami_plugin(), whoami_plugin("other")], config=config) as host:
        headers = {"Authorization": "Bearer restricted-token-1"}
        assert (await host.client.get("/api/whoami/me", headers=headers)).json()["who"] == "ci"
        denied = await host.client.get("/api/other/me", headers=headers)
        assert denied.status_code == 403
        assert denied.json()["error"] == {
            "name": "NotAllowedError",
            "message": "This token's access is restricted to plugin(s) 'whoami'",
        }


async def test_health_and_unknown_routes() -> None:
    async with start_host(plugins=["auth"], features=[whoami_plugin()]) as host:
        assert (await host.client.get("/.backstage/health/v1/liveness")).json() == {"status": "ok"}
        assert (await host.client.get("/.backstage/health/v1/readiness")).json() == {"status": "ok"}
        # As Backstage's notFound handler: 404 with an empty body, for unknown paths, methods and plugins.
        for method, path in [
            ("GET", "/api/whoami/nothing-here"),
            ("PUT", "/api/whoami/whoami"),
            ("GET", "/api/unknown-plugin/x"),
        ]:
            missing = await host.client.request(method, path, headers=host.service_headers)
            assert (missing.status_code, missing.content) == (404, b""), (method, path)


class Echo:
    """Echoes the parsed JSON body."""

    async def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = {"got": await req.get_media(default_when_empty=None)}


def echo_plugin() -> Any:
    def register(reg: Any) -> None:
        def init(router: Any) -> None:
            router.add_route("/echo", Echo())
            router.add_auth_policy("/echo")

        reg.register_init(deps={"router": core_services.http_router}, init=init)

    return create_backend_plugin("echo", register)


async def test_bodies_are_json_only() -> None:
    """Form-urlencoded, other and missing media types are a 400 as in Backstage (no cross-site form posts)."""
    async with start_host(plugins=["auth"], features=[echo_plugin()]) as host:
        for headers, media in [
            ({"Content-Type": "application/x-www-form-urlencoded"}, "application/x-www-form-urlencoded"),
            ({"Content-Type": "multipart/form-data; boundary=x"}, "multipart/form-data"),
            ({"Content-Type": "text/plain"}, "text/plain"),
            ({}, "undefined"),
        ]:
            response = await host.client.post("/api/echo/echo?a=1", content=b' {"a": [1, 2]}', headers=headers)
            assert response.status_code == 400, headers
            assert response.json() == {
                "error": {"name": "InputError", "message": f"unsupported media type {media}"},
                "request": {"method": "POST", "url": "/echo?a=1"},
                "response": {"statusCode": 400},
            }
        # No body and no Content-Type is no body, as Express reads it (the route's default).
        assert (await host.client.post("/api/echo/echo")).json() == {"got": None}
        typed = await host.client.post(
            "/api/echo/echo", content=b'{"a": 1}', headers={"Content-Type": "application/json; charset=utf-8"}
        )
        assert typed.json() == {"got": {"a": 1}}
        assert typed.headers["content-type"] == "application/json; charset=utf-8"
        malformed = await host.client.post(
            "/api/echo/echo", content=b"{not json", headers={"Content-Type": "application/json"}
        )
        assert malformed.status_code == 400
        assert malformed.json()["error"]["name"] == "InputError"


async def test_auth_policy_paths_are_exact_unless_they_end_in_a_wildcard() -> None:
    """A policy opens the path it names, not routes added later below it; ``/*`` opens a subtree explicitly."""

    class Ok:
        async def on_get(self, req: falcon.Request, resp: falcon.Response, **_params: str) -> None:
            resp.media = {"ok": True}

    def register(reg: Any) -> None:
        def init(router: Any, http_auth: Any) -> None:
            router.add_auth_policy("/")
            router.add_auth_policy("/public")
            router.add_auth_policy("/items/:id/image")
            router.add_auth_policy("/open/*")
            for route in (
                "/",
                "/admin",
                "/public",
                "/public/later",
                "/publicity",
                "/items/{id}/image",
                "/items/{id}/secret",
                "/items/{id}/image/raw",
                "/open",
                "/open/a/b",
                "/opener",
            ):
                router.add_route(route, Ok())

        reg.register_init(deps={"router": core_services.http_router, "http_auth": core_services.http_auth}, init=init)

    async with start_host(plugins=["auth"], features=[create_backend_plugin("policies", register)]) as host:
        expected = {
            "/": 200,
            "/admin": 401,
            "/public": 200,
            "/public/later": 401,
            "/publicity": 401,
            "/items/7/image": 200,
            "/items/7/secret": 401,
            "/items/7/image/raw": 401,
            "/open": 200,
            "/open/a/b": 200,
            "/opener": 401,
        }
        seen = {path: (await host.client.get(f"/api/policies{path}")).status_code for path in expected}
        assert seen == expected


class Principal:
    """Echoes the caller; ``limited`` says whether it accepts the user cookie."""

    def __init__(self, http_auth: Any, limited: bool) -> None:
        self._http_auth = http_auth
        self._limited = limited

    async def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        creds = await self._http_auth.credentials(req, allow=("user", "service"), allow_limited_access=self._limited)
        resp.media = {"who": creds.principal.display}


def files_plugin() -> Any:
    def register(reg: Any) -> None:
        def init(router: Any, http_auth: Any) -> None:
            router.add_route("/image", Principal(http_auth, limited=True))
            router.add_route("/strict", Principal(http_auth, limited=False))
            router.add_route("/secret", Principal(http_auth, limited=True))
            router.add_auth_policy("/image", allow="user-cookie")
            router.add_auth_policy("/strict", allow="user-cookie")

        reg.register_init(deps={"router": core_services.http_router, "http_auth": core_services.http_auth}, init=init)

    return create_backend_plugin("files", register)


async def test_user_cookie_policy_accepts_the_cookie_on_its_routes_only() -> None:
    """Backstage's user cookie: issued at /.backstage/auth/v1/cookie, accepted only under a user-cookie policy."""
    async with start_host(plugins=["auth"], features=[files_plugin()]) as host:
        endpoint = "/api/files/.backstage/auth/v1/cookie"
        user = await host.user_headers("user:default/jane")
        issued = await host.client.get(endpoint, headers=user)
        assert issued.status_code == 200
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.000Z", issued.json()["expiresAt"])
        set_cookie = issued.headers["set-cookie"]
        assert re.fullmatch(
            r"backstage-auth=[\w-]+\.[\w-]+\.[\w-]+; Domain=127\.0\.0\.1; Path=/; Expires=[^;]+ GMT; "
            r"HttpOnly; Priority=High; SameSite=Lax",
            set_cookie,
        ), set_cookie
        value = set_cookie.split(";")[0].split("=", 1)[1]
        cookie = {"Cookie": f"backstage-auth={value}"}
        host.client.cookies.clear()  # send the cookie explicitly, only where a request says so

        assert (await host.client.get("/api/files/image", headers=cookie)).json() == {"who": "user:default/jane"}
        assert (await host.client.get("/api/files/image", headers=host.service_headers)).status_code == 200
        assert (await host.client.get("/api/files/image")).status_code == 401
        forged = {"Cookie": f"backstage-auth={value[:-4]}AAAA"}
        assert (await host.client.get("/api/files/image", headers=forged)).status_code == 401
        # not on other routes, not as a bearer token, not where the handler does not accept limited access
        assert (await host.client.get("/api/files/secret", headers=cookie)).json()["error"][
            "message"
        ] == "Missing credentials"
        as_bearer = await host.client.get("/api/files/secret", headers={"Authorization": f"Bearer {value}"})
        assert as_bearer.status_code == 401
        assert as_bearer.json()["error"]["message"] == "Illegal limited user token"
        strict = await host.client.get("/api/files/strict", headers=cookie)
        assert strict.status_code == 401 and strict.json()["error"]["message"] == "Illegal limited user token"
        assert (await host.client.get(endpoint, headers=cookie)).status_code == 401

        service = await host.client.get(endpoint, headers=host.service_headers)
        assert service.status_code == 403
        assert service.json()["error"]["message"] == "This endpoint does not allow 'service' credentials"
        assert (await host.client.get(endpoint)).status_code == 401
        cleared = await host.client.delete(endpoint, headers=user)
        assert cleared.status_code == 204
        assert cleared.headers["set-cookie"] == (
            "backstage-auth=; Domain=127.0.0.1; Path=/; "
            "Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly; Priority=High; "
            "SameSite=Lax"
        )
