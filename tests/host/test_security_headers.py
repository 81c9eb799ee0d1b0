"""Backstage's security headers on every response, over real HTTP (the harness and ``greenroom start``)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import yaml

from tests.conftest import free_port, start_host

#: What a Backstage backend sends on every response (observed, see docs/security.md).
BACKSTAGE_HEADERS = {
    "content-security-policy": "default-src 'self';base-uri 'self';font-src 'self' https: data:;"
    "frame-ancestors 'self';img-src 'self' data:;object-src 'none';"
    "script-src 'self' 'unsafe-eval';script-src-attr 'none';"
    "style-src 'self' https: 'unsafe-inline';upgrade-insecure-requests",
    "referrer-policy": "no-referrer",
    "strict-transport-security": "max-age=15552000; includeSubDomains",
    "x-content-type-options": "nosniff",
    "x-dns-prefetch-control": "off",
    "x-download-options": "noopen",
    "x-frame-options": "SAMEORIGIN",
    "x-permitted-cross-domain-policies": "none",
    "x-xss-protection": "0",
}


def security_headers(response: httpx.Response) -> dict[str, str]:
    return {name: response.headers.get(name) for name in BACKSTAGE_HEADERS}


async def test_every_response_carries_backstages_security_headers() -> None:
    async with start_host(plugins=["auth", "notifications", "signals"]) as host:
        responses = [
            await host.client.get("/.backstage/health/v1/readiness"),
            await host.client.get("/api/notifications/"),  # 401 from the barrier
            await host.client.get("/api/auth/nope/refresh"),  # 404 from a plugin
            await host.client.get("/nothing-here"),  # 404 from the root router
            await host.client.post("/api/auth/guest/refresh"),
            await host.client.get("/api/signals/"),  # a refused WebSocket route over plain HTTP
        ]
        for response in responses:
            assert security_headers(response) == BACKSTAGE_HEADERS, (response.request.url, response.status_code)
        unauthorized = responses[1]
        assert unauthorized.json() == {
            "error": {"name": "AuthenticationError", "message": "Missing credentials"},
            "request": {"method": "GET", "url": "/"},
            "response": {"statusCode": 401},
        }
        # a page with its own, stricter policy keeps it
        page = await host.client.get("/notifications")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
        assert page.headers["x-frame-options"] == "SAMEORIGIN"
        assert page.headers.get_list("content-security-policy") == [page.headers["content-security-policy"]]


async def test_backend_csp_changes_directives() -> None:
    config = {"backend": {"csp": {"upgrade-insecure-requests": False, "connect-src": ["'self'", "http:", "https:"]}}}
    async with start_host(plugins=["auth"], config=config) as host:
        policy = (await host.client.get("/.backstage/health/v1/liveness")).headers["content-security-policy"]
        assert "upgrade-insecure-requests" not in policy
        assert policy.endswith(";connect-src 'self' http: https:")


def test_greenroom_start_sends_no_server_header(tmp_path: Path) -> None:
    config = tmp_path / "app-config.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "backend": {
                    "database": {"connection": {"directory": str(tmp_path / "data")}},
                    "features": {"include": ["auth"]},
                }
            }
        )
    )
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "host.cli", "start", "--config", str(config), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.time() + 60
        response = None
        while time.time() < deadline and proc.poll() is None:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/.backstage/health/v1/readiness", timeout=1)
                if response.status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        assert response is not None and response.status_code == 200
        assert "server" not in response.headers
        assert security_headers(response) == BACKSTAGE_HEADERS
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)
