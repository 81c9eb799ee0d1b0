"""Plain HTTP routes of the signals plugin: health and the browser client script."""

from __future__ import annotations

import hashlib
from pathlib import Path

import falcon
import falcon.asgi

CLIENT_SCRIPT = Path(__file__).parent / "static" / "client.js"


class HealthResource:
    """``GET /api/signals/health``: ``200 {"status": "ok"}``, no credentials needed."""

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        resp.media = {"status": "ok"}


class ClientScriptResource:
    """``GET /api/signals/client.js``: the JavaScript signal client, cached by ETag."""

    def __init__(self, path: Path = CLIENT_SCRIPT) -> None:
        self._body = path.read_bytes()
        self._etag = f'"{hashlib.sha256(self._body).hexdigest()[:32]}"'

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        resp.etag = self._etag
        resp.cache_control = ["no-cache"]
        if req.get_header("If-None-Match") == self._etag:
            resp.status = falcon.HTTP_304
            return
        resp.content_type = "text/javascript; charset=utf-8"
        resp.data = self._body
