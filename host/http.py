"""HTTP: the root ASGI router, per-plugin Falcon apps, auth policies and health.

Each plugin gets its own ``falcon.asgi.App`` mounted at ``/api/<pluginId>``;
inside it ``req.path`` is relative to that prefix (as in Backstage, whose
error bodies report the plugin-relative URL). Requests pass, in order:

1. the lifecycle gate: until the plugin finished starting, requests wait up
   to ``backend.lifecycle.startupRequestPauseTimeout`` (5 s) and then get 503;
2. the credentials barrier: a valid user or service token is required unless
   an ``unauthenticated`` auth policy matches the path;
3. request validation against the plugin's OpenAPI document, if it serves one
   (:mod:`host.request_validation`);
4. the plugin's routes; errors become Backstage's JSON error body.

Bodies are JSON only: another media type, or a body without one, is a 400
``unsupported media type ...`` as in Backstage. A path or method that no
route serves is a 404 with an empty body, as Backstage's ``notFound`` handler
answers. JSON responses say ``application/json; charset=utf-8``.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from typing import Any

import falcon
import falcon.asgi
import falcon.inspect
import falcon.media
import orjson

from host.auth.cookie import COOKIE_PATH, UserCookieResource
from host.config import Config
from host.errors import (
    MAX_LOGGED_SQL,
    BackstageError,
    InputError,
    error_body,
    format_error,
    trim_for_log,
    unavailable_error,
)
from host.json_syntax import JsonSyntaxError, parse_body
from host.limits import BodyLimit
from host.logging import Logger
from host.request_validation import RequestValidator, normalise_template
from host.server_limits import ServerLimits

ASGIApp = Callable[[dict[str, Any], Callable[..., Awaitable[Any]], Callable[..., Awaitable[Any]]], Awaitable[None]]

_STATUS_NAMES = {
    400: "InputError",
    401: "AuthenticationError",
    403: "NotAllowedError",
    404: "NotFoundError",
    405: "MethodNotAllowedError",
    409: "ConflictError",
    413: "PayloadTooLargeError",
    415: "UnsupportedMediaTypeError",
    501: "NotImplementedError",
    503: "ServiceUnavailableError",
}


def _dumps(obj: Any) -> bytes:
    return orjson.dumps(obj, option=orjson.OPT_NON_STR_KEYS)


def _loads(data: bytes | str) -> Any:
    return parse_body(data if isinstance(data, str) else data.decode())


JSON_HANDLER = falcon.media.JSONHandler(dumps=_dumps, loads=_loads)
#: The content type of every JSON response (as Express sends it).
JSON_CONTENT_TYPE = "application/json; charset=utf-8"
#: What a body without ``Content-Type`` is taken to be; no handler reads it, so it is refused.
_UNTYPED_BODY = "application/octet-stream"


async def send_json(send: Callable[..., Awaitable[Any]], status: int, body: Any, *, websocket: bool = False) -> None:
    """Send a complete JSON response on a raw ASGI channel."""
    payload = _dumps(body)
    prefix = "websocket.http.response" if websocket else "http.response"
    await send(
        {
            "type": f"{prefix}.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json; charset=utf-8"),
                (b"content-length", str(len(payload)).encode()),
            ],
        }
    )
    await send({"type": f"{prefix}.body", "body": payload})


class RootHttpRouter:
    """The root ASGI app: health endpoints, then the longest matching mounted prefix."""

    def __init__(self, logger: Logger, limits: ServerLimits | None = None) -> None:
        self._logger = logger
        self._limits = limits or ServerLimits()
        self._routes: list[tuple[str, ASGIApp]] = []
        self.health: HealthState = HealthState()

    def use(self, path: str, app: ASGIApp) -> None:
        """Mount ``app`` at ``path`` (a prefix). Overlapping prefixes are rejected."""
        normalised = path.rstrip("/")
        if not normalised.strip():
            raise ValueError("Root router path may not be empty")
        for existing, _ in self._routes:
            if normalised == existing or normalised.startswith(existing + "/") or existing.startswith(normalised + "/"):
                raise ValueError(f"Path {normalised} conflicts with the existing path {existing}")
        self._routes.append((normalised, BodyLimit(app, self._limits.max_body_bytes)))
        self._routes.sort(key=lambda r: len(r[0]), reverse=True)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        path: str = scope.get("path", "/")
        if scope["type"] == "http" and path.startswith("/.backstage/health/v1/"):
            await self.health.respond(path, send)
            return
        for prefix, app in self._routes:
            if path == prefix or path.startswith(prefix + "/"):
                await app(scope, receive, send)
                return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 3404})
            return
        await send_empty(send, 404)


async def send_empty(send: Callable[..., Awaitable[Any]], status: int) -> None:
    """Send a response without a body (Backstage's ``notFound``: ``res.status(404).end()``)."""
    await send({"type": "http.response.start", "status": status, "headers": [(b"content-length", b"0")]})
    await send({"type": "http.response.body", "body": b""})


def request_url(path: str, query_string: str | bytes | None) -> str:
    """The ``request.url`` of an error body: the plugin-relative path with its query string."""
    query = query_string.decode("latin-1") if isinstance(query_string, bytes) else query_string
    return f"{path}?{query}" if query else path


class HealthState:
    """Readiness follows the backend: not started, up, shutting down."""

    def __init__(self) -> None:
        self.state = "starting"
        #: The database write probe (:class:`host.database_health.DatabaseProbe`), when there is one.
        self.database: Any = None

    async def respond(self, path: str, send: Any) -> None:
        """Answer liveness and readiness probes."""
        if path.endswith("/liveness"):
            await send_json(send, 200, {"status": "ok"})
        elif path.endswith("/readiness"):
            problem = self.database.problem if self.database is not None else None
            if self.state == "up" and problem:
                await send_json(send, 503, {"message": problem, "status": "error"})
            elif self.state == "up":
                await send_json(send, 200, {"status": "ok"})
            elif self.state == "starting":
                await send_json(send, 503, {"message": "Backend has not started yet", "status": "error"})
            else:
                await send_json(send, 503, {"message": "Backend is shuttting down", "status": "error"})
        else:
            await send_json(send, 404, {"status": "error", "message": "Not found"})


def _policy_pattern(path: str) -> re.Pattern[str]:
    """The matcher of an auth-policy path.

    A policy covers exactly its path (``:name`` segments match any one
    segment); a path ending in ``/*`` also covers everything below it, and
    ``*`` or ``/*`` covers the whole plugin. So a route added later is never
    opened by a policy that did not name it.
    """
    subtree = path in ("*", "/*") or path.endswith("/*")
    base = path[:-2] if path.endswith("/*") else ("" if path == "*" else path)
    parts = ["[^/]+" if part.startswith(":") else re.escape(part) for part in base.strip("/").split("/") if part]
    prefix = "^/" + "/".join(parts)
    if subtree:
        return re.compile(prefix + r"(?:/|$)" if parts else r"^/")
    return re.compile(prefix + "$")


class PluginHttpRouter:
    """A plugin's router at ``/api/<pluginId>``: Falcon routes plus auth policies."""

    def __init__(
        self,
        plugin_id: str,
        *,
        config: Config,
        logger: Logger,
        http_auth: Any,
        lifecycle: Any,
        root: RootHttpRouter,
    ) -> None:
        self.plugin_id = plugin_id
        self.prefix = f"/api/{plugin_id}"
        self._logger = logger
        self._http_auth = http_auth
        self._lifecycle = lifecycle
        self._health = root.health
        self._policies: list[re.Pattern[str]] = []
        self._cookie_policies: list[re.Pattern[str]] = []
        self.request_validator: RequestValidator | None = None
        self._auth_disabled = bool(config.get_optional_boolean("backend.auth.dangerouslyDisableDefaultAuthPolicy"))
        pause = config.get_optional_duration("backend.lifecycle.startupRequestPauseTimeout")
        self._pause_seconds = pause.total_seconds() if pause else 5.0
        self.app = falcon.asgi.App(middleware=[_BarrierMiddleware(self)], cors_enable=False)
        # JSON only: no form or multipart parsing (a cross-site form post must not reach a route).
        self.app.req_options.media_handlers = falcon.media.Handlers(
            {falcon.MEDIA_JSON: JSON_HANDLER, _UNTYPED_BODY: _UntypedBodyHandler()}
        )
        self.app.req_options.default_media_type = _UNTYPED_BODY
        self.app.resp_options.media_handlers = falcon.media.Handlers(
            {falcon.MEDIA_JSON: JSON_HANDLER, JSON_CONTENT_TYPE: JSON_HANDLER}
        )
        self.app.resp_options.default_media_type = JSON_CONTENT_TYPE
        self.app.req_options.strip_url_path_trailing_slash = True
        self.app.add_error_handler(Exception, self._handle_error)
        self.app.add_error_handler(falcon.HTTPError, self._handle_error)
        self.app.add_route(COOKIE_PATH, UserCookieResource(http_auth, config))
        root.use(self.prefix, self)

    def add_route(self, path: str, resource: Any, **kwargs: Any) -> None:
        """Route ``path`` (relative to ``/api/<pluginId>``) to a Falcon resource."""
        self.app.add_route(path, resource, **kwargs)

    def add_openapi(self, spec: dict[str, Any]) -> None:
        """Serve ``spec`` (an OpenAPI document) at ``/api/<pluginId>/openapi.json``, without credentials.

        The document's operations also validate their requests (:mod:`host.request_validation`).
        """
        self.request_validator = RequestValidator(spec)
        document = dict(spec)
        document.setdefault("servers", [{"url": self.prefix}])
        self.app.add_route("/openapi.json", _OpenApiResource(document))
        self.add_auth_policy("/openapi.json", allow="unauthenticated")

    def served_operations(self) -> set[tuple[str, str]]:
        """``(METHOD, template)`` of every responder the plugin's routes define, ``{}`` for each parameter."""
        return {
            (method.method, normalise_template(route.path))
            for route in falcon.inspect.inspect_routes(self.app)
            for method in route.methods
            if not method.internal
        }

    def add_auth_policy(self, path: str, allow: str = "unauthenticated") -> None:
        """Let requests to ``path`` through without a bearer token.

        ``path`` covers that path only (``/items/:id`` matches one segment);
        end it in ``/*`` to cover everything below it too (``/*`` for the
        whole plugin). ``unauthenticated`` lets anyone through;
        ``user-cookie`` also accepts the user cookie set by
        ``/.backstage/auth/v1/cookie`` (see :mod:`host.auth.cookie`).
        """
        if allow == "unauthenticated":
            self._policies.append(_policy_pattern(path))
        elif allow == "user-cookie":
            self._cookie_policies.append(_policy_pattern(path))
        else:
            raise ValueError(f"Invalid auth policy '{allow}' for '{path}', expected 'unauthenticated' or 'user-cookie'")

    def is_user_cookie(self, path: str) -> bool:
        """Whether a ``user-cookie`` policy covers ``path``."""
        return any(p.match(path) for p in self._cookie_policies)

    def is_unauthenticated(self, path: str) -> bool:
        """Whether an ``unauthenticated`` policy covers ``path``."""
        return self._auth_disabled or any(p.match(path) for p in self._policies)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket"):
            return
        path = scope["path"][len(self.prefix) :] or "/"
        inner = dict(scope)
        inner["path"] = path
        inner["raw_path"] = path.encode()
        inner["root_path"] = scope.get("root_path", "") + self.prefix
        if not self._lifecycle.started.is_set():
            try:
                await asyncio.wait_for(self._lifecycle.started.wait(), self._pause_seconds)
            except TimeoutError:
                await self._reject(scope, send, path, 503, "ServiceUnavailableError", "Service has not started up yet")
                return
        if self._lifecycle.stopped:
            await self._reject(scope, send, path, 503, "ServiceUnavailableError", "Service is shutting down")
            return
        if getattr(self._lifecycle, "failed", False):
            await self._reject(
                scope, send, path, 503, "ServiceUnavailableError", f"Plugin '{self.plugin_id}' failed to start"
            )
            return
        if scope["type"] == "websocket":
            await self.app(inner, receive, _WebSocketRejectionTranslator(scope, send, path))
        else:
            inner["headers"] = _lower_case_media_type(inner.get("headers", []))
            if inner.get("method") == "HEAD":
                # As Express: GET routes answer HEAD (the server drops the body of a HEAD response).
                inner["method"] = "GET"
            await self.app(inner, receive, send)

    async def _reject(self, scope: dict[str, Any], send: Any, path: str, status: int, name: str, message: str) -> None:
        body = error_body(
            None,
            status=status,
            method=scope.get("method", "GET"),
            url=request_url(path, scope.get("query_string")),
            name=name,
            message=message,
        )
        if scope["type"] == "websocket":
            if "websocket.http.response" in scope.get("extensions", {}):
                await send_json(send, status, body, websocket=True)
            else:
                await send({"type": "websocket.close", "code": 3000 + status})
            return
        await send_json(send, status, body)

    async def _handle_error(
        self, req: falcon.Request, resp: falcon.Response | None, ex: Exception, params: Any, ws: Any = None
    ) -> None:
        status, name, message = 500, "Error", "Internal Server Error"
        error: BackstageError | None = None
        if ws is None and isinstance(ex, (falcon.HTTPRouteNotFound, falcon.HTTPMethodNotAllowed)):
            assert resp is not None
            resp.status, resp.content_type, resp.data = 404, None, b""
            return
        if isinstance(ex, falcon.HTTPUnsupportedMediaType):
            media = (req.content_type or "").split(";")[0].strip().lower()
            ex = InputError(f"unsupported media type {media or 'undefined'}")
        unavailable = unavailable_error(ex)
        if unavailable is not None:
            cause = trim_for_log(unavailable.cause) if unavailable.cause else unavailable
            self._logger.warning(
                "Request failed, database unavailable: %s %s%s: %s",
                req.method,
                self.prefix,
                req.path,
                format_error(cause)[: MAX_LOGGED_SQL * 2],
            )
            ex = unavailable
            if self._health.database is not None:
                self._health.database.record_unavailable()
        if isinstance(ex, BackstageError):
            error, status, name, message = ex, ex.status_code, ex.name, ex.message
        elif isinstance(ex, falcon.HTTPError):
            status = ex.status_code
            name = _STATUS_NAMES.get(status, "Error")
            message = ex.description or ex.title or falcon.code_to_http_status(status)
            if isinstance(ex, falcon.MediaMalformedError):
                parse_error = ex.__cause__
                message = (
                    str(parse_error) if isinstance(parse_error, JsonSyntaxError) else "Request body is not valid UTF-8"
                )
            elif status == 404:
                message = "Not found"
            error = InputError(message) if status == 400 else None
        if status >= 500 and unavailable is None:
            self._logger.error("Request failed: %s %s%s", req.method, self.prefix, req.path, exc_info=trim_for_log(ex))
            if not isinstance(ex, BackstageError):
                name, message, error = "Error", "Internal Server Error", None
        if ws is not None:
            await ws.close(3000 + status if status < 1000 else status)
            return
        assert resp is not None
        resp.status = status
        resp.media = error_body(
            error,
            status=status,
            method=req.method,
            url=request_url(req.path, req.query_string),
            name=name,
            message=message,
        )
        for key, value in (getattr(ex, "headers", None) or {}).items():
            resp.set_header(key, value)


class _UntypedBodyHandler(falcon.media.BaseHandler):
    """Reads a body without ``Content-Type``: empty is no body (the route's default), anything else a 400."""

    def serialize(self, media: object, content_type: str | None = None) -> bytes:
        raise NotImplementedError

    def deserialize(self, stream: Any, content_type: str | None, content_length: int | None) -> object:
        raise NotImplementedError  # ASGI only: see deserialize_async

    async def deserialize_async(self, stream: Any, content_type: str | None, content_length: int | None) -> object:
        """Empty: ``MediaNotFoundError`` (``get_media`` answers its default); otherwise refused."""
        if not await stream.read():
            raise falcon.MediaNotFoundError("JSON")
        raise InputError(f"unsupported media type {content_type or 'undefined'}")


def _lower_case_media_type(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """Media types are case-insensitive (``APPLICATION/JSON`` is JSON); Falcon looks handlers up as sent."""
    for index, (name, value) in enumerate(headers):
        if name == b"content-type" and value != value.lower():
            media, sep, params = value.partition(b";")
            return [*headers[:index], (name, media.lower() + sep + params), *headers[index + 1 :]]
    return headers


class _OpenApiResource:
    def __init__(self, document: dict[str, Any]) -> None:
        self._body = _dumps(document)

    async def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.content_type = JSON_CONTENT_TYPE
        resp.data = self._body


class _WebSocketRejectionTranslator:
    """Turn a close-before-accept with code 3000+N into an HTTP N response at the upgrade."""

    def __init__(self, scope: dict[str, Any], send: Any, path: str) -> None:
        self._scope = scope
        self._send = send
        self._path = path
        self._accepted = False

    async def __call__(self, message: dict[str, Any]) -> None:
        if message["type"] == "websocket.accept":
            self._accepted = True
        elif (
            message["type"] == "websocket.close"
            and not self._accepted
            and 3000 <= int(message.get("code", 1000)) < 4000
            and "websocket.http.response" in self._scope.get("extensions", {})
        ):
            status = int(message["code"]) - 3000
            name = _STATUS_NAMES.get(status, "Error")
            body = error_body(
                None,
                status=status,
                method="GET",
                url=self._path,
                name=name,
                message=message.get("reason") or falcon.code_to_http_status(status),
            )
            await send_json(self._send, status, body, websocket=True)
            return
        await self._send(message)


class _BarrierMiddleware:
    """The credentials barrier of one plugin router."""

    def __init__(self, router: PluginHttpRouter) -> None:
        self._router = router

    async def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        if self._router.is_unauthenticated(req.path):
            return
        await self._router._http_auth.credentials(
            req, allow=("user", "service"), allow_limited_access=self._router.is_user_cookie(req.path)
        )

    async def process_resource(
        self, req: falcon.Request, resp: falcon.Response, resource: Any, params: dict[str, Any]
    ) -> None:
        """Validate the request against the plugin's OpenAPI document (media type, query, body)."""
        validator = self._router.request_validator
        if validator is None or resource is None or req.uri_template is None:
            return
        operation = validator.operation(req.method, req.uri_template)
        if operation is None:
            return
        validator.check_media_type(operation, req.content_type)
        validator.check_query(operation, req.query_string)
        if operation.body_media:
            validator.check_body(operation, await req.get_media(default_when_empty=None))

    async def process_request_ws(self, req: falcon.Request, ws: Any) -> None:
        if self._router.is_unauthenticated(req.path):
            return
        await self._router._http_auth.credentials(req, allow=("user", "service"))
