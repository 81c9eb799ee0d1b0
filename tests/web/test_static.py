"""The /notifications mount without a browser: page, config, assets, caching and path safety."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import pytest

from host.config import Config
from plugin_notifications.web import STATIC_DIR, WebInbox, content_security_policy, load_assets, page_config
from tests.conftest import start_host
from tests.web.conftest import PLUGINS, web_config

CONFIG_RE = re.compile(r'<script type="application/json" id="greenroom-config">(.*?)</script>', re.S)


async def call(
    app: WebInbox,
    path: str,
    method: str = "GET",
    headers: list[tuple[bytes, bytes]] | None = None,
    scope_type: str = "http",
) -> tuple[int, dict[str, str], bytes]:
    """Call the ASGI app directly with ``path`` exactly as given (no URL normalisation)."""
    messages: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        messages.append(message)

    await app({"type": scope_type, "method": method, "path": path, "headers": headers or []}, receive, send)
    if scope_type == "websocket":
        return messages[0]["code"], {}, b""
    start = messages[0]
    head = {key.decode(): value.decode() for key, value in start["headers"]}
    return start["status"], head, b"".join(m.get("body", b"") for m in messages[1:])


def page_json(body: bytes) -> dict[str, Any]:
    match = CONFIG_RE.search(body.decode())
    assert match, "no config element in the page"
    return json.loads(match.group(1))


@pytest.fixture
def app() -> WebInbox:
    return WebInbox(Config({}))


# -- on a real host ------------------------------------------------------------


async def test_page_is_served_by_the_notifications_plugin() -> None:
    async with start_host("sqlite", config=web_config(title="Team inbox"), plugins=PLUGINS) as host:
        for path in ("/notifications", "/notifications/"):
            response = await host.client.get(path)
            assert response.status_code == 200
            assert response.headers["content-type"] == "text/html; charset=utf-8"
            assert response.headers["cache-control"] == "no-cache"
            assert response.headers["x-content-type-options"] == "nosniff"
            csp = response.headers["content-security-policy"]
            assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
            assert "<title>Team inbox</title>" in response.text
        config = page_json(response.content)
        assert config == {
            "signInProvider": "guest",
            "apiBaseUrl": "/api",
            "title": "Team inbox",
            "basePath": "/notifications",
            "markAsReadOnLinkOpen": False,
            "switchUserUrl": None,
        }

        # every asset the page references is served, with its content type and long-lived caching
        refs = re.findall(r'(?:src|href)="(/notifications/static/[^"]+)"', response.text)
        assert len(refs) >= 3
        for ref in refs:
            asset = await host.client.get(ref)
            assert asset.status_code == 200, ref
            assert asset.headers["cache-control"] == "public, max-age=31536000, immutable"
        main = await host.client.get(next(r for r in refs if r.endswith("/main.js")))
        assert main.headers["content-type"] == "text/javascript; charset=utf-8"
        css = await host.client.get(next(r for r in refs if r.endswith(".css")))
        assert css.headers["content-type"] == "text/css; charset=utf-8"

        # the sign-in and signals endpoints the page uses exist on the same host
        assert (await host.client.get("/api/auth/guest/refresh")).status_code == 200
        assert (await host.client.get("/api/signals/client.js")).status_code == 200

        # neighbours of the prefix are not the page
        assert (await host.client.get("/notificationsx")).status_code == 404
        assert (await host.client.get("/notifications/index.html")).status_code == 404
        assert (await host.client.post("/notifications")).status_code == 405


async def raw_get(port: int, target: str) -> tuple[int, bytes]:
    """A GET with ``target`` sent byte for byte (clients would normalise ``..``)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
    await writer.drain()
    data = await reader.read()
    writer.close()
    status = int(data.split(b" ", 2)[1])
    return status, data.partition(b"\r\n\r\n")[2]


async def test_path_traversal_over_http_finds_nothing() -> None:
    async with start_host("sqlite", plugins=PLUGINS) as host:
        port = int(host.url.rsplit(":", 1)[1])
        for target in (
            "/notifications/static/../__init__.py",
            "/notifications/static/../../plugin.py",
            "/notifications/static/%2e%2e/__init__.py",
            "/notifications/static/..%2f__init__.py",
            "/notifications/static/%2e%2e%2f%2e%2e%2fplugin.py",
            "/notifications/static//etc/passwd",
            "/notifications/static/..\\__init__.py",
            "/notifications/static/main.js%00.png",
        ):
            status, body = await raw_get(port, target)
            assert status in (400, 404), (target, status)
            assert b"import" not in body and b"root:" not in body, target


# -- the ASGI app itself --------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/notifications/static/../__init__.py",
        "/notifications/static/../index.html",
        "/notifications/static/./main.js",
        "/notifications/static//main.js",
        "/notifications/static/%2e%2e/__init__.py",
        "/notifications/static/..%2f__init__.py",
        "/notifications/static/\\..\\__init__.py",
        "/notifications/static//etc/passwd",
        "/notifications/static/main.js/",
        "/notifications/static/",
        "/notifications/static",
        "/notifications/static/{version}/../../__init__.py",
        "/notifications/static/{version}/",
        "/notifications/../plugin_notifications/plugin.py",
    ],
)
async def test_only_known_assets_are_served(app: WebInbox, path: str) -> None:
    status, _, body = await call(app, path.replace("{version}", app.version))
    assert status == 404
    assert body == b"Not Found"


async def test_assets_versioned_and_unversioned(app: WebInbox) -> None:
    status, head, body = await call(app, f"/notifications/static/{app.version}/inbox.js")
    assert status == 200
    assert head["cache-control"] == "public, max-age=31536000, immutable"
    assert head["content-type"] == "text/javascript; charset=utf-8"
    assert body == (STATIC_DIR / "inbox.js").read_bytes()
    assert head["content-length"] == str(len(body))

    status, head, body = await call(app, "/notifications/static/inbox.js")
    assert status == 200 and head["cache-control"] == "no-cache" and body == (STATIC_DIR / "inbox.js").read_bytes()

    # another release's URL (rolling deploys) gets the current file, but must revalidate
    status, head, _ = await call(app, "/notifications/static/0123456789ab/inbox.js")
    assert status == 200 and head["cache-control"] == "no-cache"
    status, _, _ = await call(app, "/notifications/static/0123456789ab/../__init__.py")
    assert status == 404
    status, head, _ = await call(app, f"/notifications/static/{app.version}/bell.svg")
    assert status == 200 and head["content-type"] == "image/svg+xml"


async def test_etag_revalidation_and_head(app: WebInbox) -> None:
    status, head, _ = await call(app, "/notifications/static/main.js")
    etag = head["etag"]
    status, head304, body = await call(
        app, "/notifications/static/main.js", headers=[(b"if-none-match", etag.encode())]
    )
    assert status == 304 and body == b"" and head304["etag"] == etag and "content-type" not in head304
    status, _, _ = await call(app, "/notifications/static/main.js", headers=[(b"if-none-match", b'"other"')])
    assert status == 200

    status, head, body = await call(app, "/notifications", method="HEAD")
    assert status == 200 and body == b"" and int(head["content-length"]) > 0
    page_etag = head["etag"]
    status, _, _ = await call(app, "/notifications", headers=[(b"if-none-match", page_etag.encode())])
    assert status == 304


async def test_other_methods_and_websockets_are_refused(app: WebInbox) -> None:
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        status, head, _ = await call(app, "/notifications", method=method)
        assert status == 405 and head["allow"] == "GET, HEAD"
    code, _, _ = await call(app, "/notifications", scope_type="websocket")
    assert code == 1008


def test_load_assets_skips_unknown_types_and_symlinks(tmp_path: Path) -> None:
    (tmp_path / "app.js").write_text("export {}")
    (tmp_path / "notes.txt").write_text("secret")
    (tmp_path / ".hidden.js").write_text("x")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "x.css").write_text("a{}")
    outside = tmp_path.parent / f"{tmp_path.name}-outside.js"
    outside.write_text("outside")
    (tmp_path / "link.js").symlink_to(outside)
    assets = load_assets(tmp_path)
    assert sorted(assets) == ["app.js", "sub/x.css"]
    assert assets["sub/x.css"].content_type == "text/css; charset=utf-8"


def test_packaged_assets_are_all_served() -> None:
    names = set(load_assets())
    assert {
        "main.js",
        "api.js",
        "auth.js",
        "dom.js",
        "inbox.js",
        "settings.js",
        "prefs.js",
        "title.js",
        "webnotify.js",
        "inbox.css",
        "bell.svg",
    } <= names
    # every relative ES module import points at a served asset
    for name in names:
        if name.endswith(".js"):
            for target in re.findall(r"from '\./([^']+)'", (STATIC_DIR / name).read_text()):
                assert target in names, (name, target)


# -- config ---------------------------------------------------------------------


def test_config_is_escaped_into_the_page() -> None:
    evil = "</script><script>alert(1)</script><!--"
    app = WebInbox(Config({"notifications": {"web": {"title": evil}}}))
    page = app.index.decode()
    assert "<script>alert(1)" not in page
    assert "<title>&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;&lt;!--</title>" in page
    assert page_json(app.index)["title"] == evil


def test_sign_in_provider_follows_config_and_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GREENROOM_ENV", raising=False)
    assert page_config(Config({}))["signInProvider"] == "guest"
    assert page_config(Config({"auth": {"environment": "production"}}))["signInProvider"] == "proxy"
    monkeypatch.setenv("GREENROOM_ENV", "production")  # only a fallback for a config without auth.environment
    assert page_config(Config({}))["signInProvider"] == "proxy"
    assert page_config(Config({"auth": {"environment": "development"}}))["signInProvider"] == "guest"
    configured = Config({"notifications": {"web": {"signInProvider": "guest"}}})
    assert page_config(configured)["signInProvider"] == "guest"
    with pytest.raises(ValueError, match="signInProvider"):
        page_config(Config({"notifications": {"web": {"signInProvider": "github"}}}))


def test_api_base_url_and_csp() -> None:
    config = page_config(Config({"notifications": {"web": {"apiBaseUrl": "https://api.example.com/api/"}}}))
    assert config["apiBaseUrl"] == "https://api.example.com/api"
    csp = content_security_policy(config["apiBaseUrl"])
    assert "script-src 'self' https://api.example.com" in csp
    assert "connect-src 'self' https://api.example.com wss://api.example.com" in csp
    assert "connect-src 'self';" in content_security_policy("/api")
    for bad in ("javascript:alert(1)", "//evil.example.com/api", "api"):
        with pytest.raises(ValueError, match="apiBaseUrl"):
            page_config(Config({"notifications": {"web": {"apiBaseUrl": bad}}}))


def test_switch_user_url_is_a_path_or_an_http_url() -> None:
    for good in ("/oauth2/sign_out?rd=%2Fnotifications", "https://sso.example.com/logout"):
        assert page_config(Config({"notifications": {"web": {"switchUserUrl": good}}}))["switchUserUrl"] == good
    for bad in ("javascript:alert(1)", "//evil.example.com/x", "/\\evil.example.com", "sign_out", "https://"):
        with pytest.raises(ValueError, match="switchUserUrl"):
            page_config(Config({"notifications": {"web": {"switchUserUrl": bad}}}))
