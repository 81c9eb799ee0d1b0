"""CORS per ``backend.cors`` through a real host, as Backstage's ``cors`` middleware answers.

host.cors was also compared with Backstage's own middleware (tests/compat/cors_oracle.cjs) for
several configs; these tests pin the behaviour on SQLite and PostgreSQL hosts.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from host.config import deep_merge
from tests.conftest import HostHandle, start_host
from tests.notifications.conftest import notifications_config

APP = "http://127.0.0.1:3000"
CORS = {
    "origin": [APP, "https://*.example.com"],
    "methods": ["GET", "HEAD", "PATCH", "POST", "PUT", "DELETE"],
    "credentials": True,
}
PREFLIGHT = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization,content-type"}


@pytest.fixture
async def cors_host(db_kind: str) -> AsyncIterator[HostHandle]:
    """A notifications host with ``backend.cors``."""
    config = deep_merge(notifications_config(), {"backend": {"cors": CORS}})
    async with start_host(db_kind, config=config) as handle:
        yield handle


@pytest.mark.parametrize("origin", [APP, "https://app.example.com", "HTTPS://APP.EXAMPLE.COM"])
async def test_preflight_is_answered_before_authentication(cors_host: HostHandle, origin: str) -> None:
    """An allowed origin's OPTIONS is a 204 with the Access-Control headers, without any token."""
    response = await cors_host.client.options("/api/notifications", headers={"Origin": origin, **PREFLIGHT})
    assert (response.status_code, response.content) == (204, b"")
    assert response.headers["access-control-allow-origin"] == origin
    assert response.headers["access-control-allow-credentials"] == "true"
    assert response.headers["access-control-allow-methods"] == "GET,HEAD,PATCH,POST,PUT,DELETE"
    assert response.headers["access-control-allow-headers"] == "authorization,content-type"
    assert response.headers["vary"] == "Origin, Access-Control-Request-Headers"


async def test_allowed_origin_gets_headers_on_every_response(cors_host: HostHandle) -> None:
    """Success and error responses both carry the origin, credentials and ``Vary: Origin``."""
    headers = {"Origin": APP, **(await cors_host.user_headers("user:default/mock"))}
    ok = await cors_host.client.get("/api/notifications/status", headers=headers)
    denied = await cors_host.client.get("/api/notifications/status", headers={"Origin": APP})
    for response, status in ((ok, 200), (denied, 401)):
        assert response.status_code == status
        assert response.headers["access-control-allow-origin"] == APP
        assert response.headers["access-control-allow-credentials"] == "true"
        assert "Origin" in response.headers["vary"]
        assert "access-control-allow-methods" not in response.headers


@pytest.mark.parametrize(
    "origin", ["https://evil.example", "https://a.b.example.com.evil", "https://example.com", None]
)
async def test_other_origins_get_nothing_and_meet_the_barrier(cors_host: HostHandle, origin: str | None) -> None:
    """No CORS headers; a cross-site preflight goes on to the credentials barrier (401), as in Backstage."""
    headers = {"Origin": origin, **PREFLIGHT} if origin else PREFLIGHT
    response = await cors_host.client.options("/api/notifications", headers=headers)
    assert response.status_code == 401
    assert not [name for name in response.headers if name.startswith("access-control-")]


async def test_without_cors_config_nothing_is_added(db_kind: str) -> None:
    """No ``backend.cors``: no CORS headers at all (Backstage's ``origin: false``)."""
    async with start_host(db_kind, config=notifications_config()) as host:
        response = await host.client.options("/api/notifications", headers={"Origin": APP, **PREFLIGHT})
        assert response.status_code == 401
        assert not [name for name in response.headers if name.startswith("access-control-")]
