"""The web inbox: ``/notifications`` (the page) and ``/notifications/static/*`` (its assets).

A raw ASGI app mounted on the root router with
``root_http_router.use("/notifications", WebInbox(...))``. It serves:

* ``GET /notifications`` (and ``/notifications/``): ``index.html`` with the
  page config (sign-in provider, API base URL) rendered into a JSON script
  element; ``Cache-Control: no-cache`` and a strict Content-Security-Policy.
* ``GET /notifications/static/<version>/<file>``: the assets under
  ``web/static``, ``Cache-Control: public, max-age=31536000, immutable``;
  ``<version>`` is a hash of every asset, so an upgrade changes the URL.
* ``GET /notifications/static/<file>`` (or another release's
  ``<version>/<file>``): the same assets, revalidated by ETag.

Assets are read into memory at start-up and looked up by exact name, so no
request path ever reaches the file system (no traversal). Only ``GET`` and
``HEAD`` are answered. The page needs no build step: plain HTML, CSS and ES
modules.

Config (all optional):

* ``notifications.web.signInProvider``: ``guest`` or ``proxy`` (default
  ``proxy`` with ``auth.environment: production``, else ``guest``);
* ``notifications.web.apiBaseUrl``: where the page finds ``/api`` (default
  ``/api`` on the same origin);
* ``notifications.web.title``: the page title (default ``app.title`` or
  ``Notifications``);
* ``notifications.web.markAsReadOnLinkOpen``: opening a notification's link
  marks it read (default ``false``);
* ``notifications.web.switchUserUrl``: where *Switch user* sends the browser
  after signing out (an authenticating proxy's sign-out, which asks who is
  there); a path on this origin or an http(s) URL. Without it the menu has
  *Sign out* only.
"""

from __future__ import annotations

import hashlib
import html
import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from host import is_production

WEB_DIR = Path(__file__).parent
STATIC_DIR = WEB_DIR / "static"
INDEX_TEMPLATE = WEB_DIR / "index.html"
MOUNT_PATH = "/notifications"
PROVIDERS = ("guest", "proxy")

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".woff2": "font/woff2",
}
_SAFE_NAME = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9_.-]*(?:/[A-Za-z0-9_-][A-Za-z0-9_.-]*)*$")

_VERSION = re.compile(r"^[0-9a-f]{12}$")
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"


def content_security_policy(api_base_url: str = "/api") -> str:
    """What the page may load: its own origin (and the API's, if elsewhere); no inline script, no framing."""
    api_origin = ""
    parsed = urlsplit(api_base_url)
    if parsed.scheme in ("http", "https") and parsed.netloc:
        ws_scheme = "wss" if parsed.scheme == "https" else "ws"
        api_origin = f" {parsed.scheme}://{parsed.netloc}"
        api_ws = f" {ws_scheme}://{parsed.netloc}"
    else:
        api_ws = ""
    return "; ".join(
        [
            "default-src 'self'",
            f"script-src 'self'{api_origin}",
            "style-src 'self'",
            "img-src 'self' data:",
            f"connect-src 'self'{api_origin}{api_ws}",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )


SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
]


@dataclass(frozen=True)
class Asset:
    """One static file held in memory."""

    body: bytes
    content_type: str
    etag: str


def load_assets(directory: Path = STATIC_DIR) -> dict[str, Asset]:
    """Every regular file under ``directory`` with a known type, keyed by its relative POSIX path."""
    assets: dict[str, Asset] = {}
    for path in sorted(directory.rglob("*")):
        if not path.is_file() or path.is_symlink():
            continue
        name = path.relative_to(directory).as_posix()
        content_type = CONTENT_TYPES.get(path.suffix.lower())
        if content_type is None or not _SAFE_NAME.match(name):
            continue
        body = path.read_bytes()
        assets[name] = Asset(body, content_type, f'"{hashlib.sha256(body).hexdigest()[:32]}"')
    return assets


def assets_version(assets: dict[str, Asset]) -> str:
    """A short hash of every asset's name and content."""
    digest = hashlib.sha256()
    for name in sorted(assets):
        digest.update(name.encode() + b"\0" + assets[name].etag.encode() + b"\0")
    return digest.hexdigest()[:12]


def page_config(config: Any) -> dict[str, Any]:
    """The page's settings, from ``notifications.web.*`` (``config`` is a :class:`host.config.Config`)."""
    provider = config.get_optional_string("notifications.web.signInProvider") if config is not None else None
    if not provider:
        provider = "proxy" if is_production(config) else "guest"
    if provider not in PROVIDERS:
        raise ValueError(f"notifications.web.signInProvider must be one of {', '.join(PROVIDERS)}, got '{provider}'")
    api_base = (config.get_optional_string("notifications.web.apiBaseUrl") if config is not None else None) or "/api"
    if not (api_base.startswith("/") and not api_base.startswith("//")) and urlsplit(api_base).scheme not in (
        "http",
        "https",
    ):
        raise ValueError("notifications.web.apiBaseUrl must be a path (/api) or an http(s) URL")
    mark_read = config.get_optional_boolean("notifications.web.markAsReadOnLinkOpen") if config is not None else None
    switch_user = config.get_optional_string("notifications.web.switchUserUrl") if config is not None else None
    if switch_user and not _is_path_or_http_url(switch_user):
        raise ValueError("notifications.web.switchUserUrl must be a path (/oauth2/sign_out) or an http(s) URL")
    title = None
    if config is not None:
        title = config.get_optional_string("notifications.web.title") or config.get_optional_string("app.title")
    return {
        "signInProvider": provider,
        "apiBaseUrl": api_base.rstrip("/"),
        "title": title or "Notifications",
        "basePath": MOUNT_PATH,
        "markAsReadOnLinkOpen": bool(mark_read),
        "switchUserUrl": switch_user or None,
    }


def _is_path_or_http_url(value: str) -> bool:
    """A path on this origin (``/x``, not ``//host``) or an absolute http(s) URL with a host."""
    if value.startswith("/"):
        return not value.startswith("//") and "\\" not in value
    parsed = urlsplit(value)
    return parsed.scheme in ("http", "https") and bool(parsed.netloc)


def json_for_html(value: Any) -> str:
    """JSON safe inside a ``<script type="application/json">`` element (no ``<``, ``>``, ``&``)."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=True)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def render_index(template: str, config: dict[str, Any], static_base: str) -> bytes:
    """Fill ``index.html``: ``{{title}}`` (HTML-escaped), ``{{static}}`` and ``{{config}}``."""
    return (
        template.replace("{{title}}", html.escape(config["title"]))
        .replace("{{static}}", html.escape(static_base))
        .replace("{{config}}", json_for_html(config))
        .encode()
    )


Send = Callable[[dict[str, Any]], Awaitable[None]]


class WebInbox:
    """The ASGI app behind ``/notifications``."""

    def __init__(
        self,
        config: Any = None,
        *,
        prefix: str = MOUNT_PATH,
        static_dir: Path = STATIC_DIR,
        template: Path = INDEX_TEMPLATE,
    ) -> None:
        self.prefix = prefix.rstrip("/")
        self.assets = load_assets(static_dir)
        self.version = assets_version(self.assets)
        self.config = page_config(config)
        static_base = f"{self.prefix}/static/{self.version}"
        self.index = render_index(template.read_text(encoding="utf-8"), self.config, static_base)
        self.index_etag = f'"{hashlib.sha256(self.index).hexdigest()[:32]}"'
        self.csp = content_security_policy(self.config["apiBaseUrl"])

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Send) -> None:
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        if scope["type"] != "http":
            return
        method = scope.get("method", "GET")
        path: str = scope.get("path", "")
        rest = path[len(self.prefix) :] if path.startswith(self.prefix) else path
        if method not in ("GET", "HEAD"):
            await self._plain(send, 405, "Method Not Allowed", [(b"allow", b"GET, HEAD")])
            return
        head = method == "HEAD"
        if rest in ("", "/"):
            await self._respond(
                scope, send, self.index, "text/html; charset=utf-8", self.index_etag, REVALIDATE, head, page=True
            )
            return
        if rest.startswith("/static/"):
            name = rest[len("/static/") :]
            cache = REVALIDATE
            version, _, inner = name.partition("/")
            if version == self.version and inner:
                name, cache = inner, IMMUTABLE
            elif _VERSION.match(version) and inner:
                name = inner  # another release's page (e.g. during a rolling deploy): current file, not cached
            asset = self.assets.get(name)
            if asset is not None:
                await self._respond(scope, send, asset.body, asset.content_type, asset.etag, cache, head)
                return
        await self._plain(send, 404, "Not Found")

    async def _respond(
        self,
        scope: dict[str, Any],
        send: Send,
        body: bytes,
        content_type: str,
        etag: str,
        cache: str,
        head: bool,
        *,
        page: bool = False,
    ) -> None:
        headers = [(b"etag", etag.encode()), (b"cache-control", cache.encode()), *SECURITY_HEADERS]
        if page:
            headers.append((b"content-security-policy", self.csp.encode()))
        if _if_none_match(scope, etag):
            await send({"type": "http.response.start", "status": 304, "headers": headers})
            await send({"type": "http.response.body", "body": b""})
            return
        headers += [(b"content-type", content_type.encode()), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if head else body})

    async def _plain(self, send: Send, status: int, text: str, extra: list[tuple[bytes, bytes]] | None = None) -> None:
        body = text.encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"text/plain; charset=utf-8"),
                    (b"content-length", str(len(body)).encode()),
                    *SECURITY_HEADERS,
                    *(extra or []),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def _if_none_match(scope: dict[str, Any], etag: str) -> bool:
    for key, value in scope.get("headers", []):
        if key.lower() == b"if-none-match":
            tags = [tag.strip() for tag in value.decode("latin-1").split(",")]
            return etag in tags or "*" in tags or f"W/{etag}" in tags
    return False


def mount_web_inbox(root_http_router: Any, config: Any = None) -> WebInbox:
    """Serve the web inbox at ``/notifications`` on the root router."""
    app = WebInbox(config)
    root_http_router.use(MOUNT_PATH, app)
    return app


__all__ = ["WebInbox", "mount_web_inbox", "page_config", "MOUNT_PATH"]
