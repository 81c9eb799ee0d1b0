"""CORS per ``backend.cors``, as Backstage's root router applies it (the ``cors`` npm package).

Config, as in Backstage (every key optional; without ``backend.cors`` nothing is added)::

    backend:
      cors:
        origin: http://localhost:3000      # a string or a list; glob patterns (`https://*.example.com`,
                                           # `http://localhost:{3000,3001}`), matched case-insensitively
        methods: [GET, HEAD, PATCH, POST, PUT, DELETE]
        allowedHeaders: [authorization]    # default: what the preflight asks for
        exposedHeaders: [link]
        credentials: true
        maxAge: 600
        preflightContinue: false
        optionsSuccessStatus: 204

It runs in front of every route, before any credentials check. A request whose ``Origin`` matches
gets ``Access-Control-Allow-Origin`` (the origin itself) and ``Vary: Origin``; an ``OPTIONS``
request from it is answered at once (``optionsSuccessStatus``, empty body) with the allowed
methods, headers and max age. A request from any other origin passes through untouched, so a
cross-site preflight meets the credentials barrier (401). With ``backend.cors`` but no ``origin``,
every origin is allowed with ``*``, as the ``cors`` package's default.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from host.config import Config, ConfigError

ASGIApp = Callable[[dict[str, Any], Callable[..., Awaitable[Any]], Callable[..., Awaitable[Any]]], Awaitable[None]]

_DEFAULT_METHODS = "GET,HEAD,PUT,PATCH,POST,DELETE"


def origin_pattern(pattern: str) -> re.Pattern[str]:
    """A glob as Backstage matches origins (minimatch, ``nocase``, ``noglobstar``) as a regex.

    ``*`` is any run of characters but ``/``, ``?`` one such character, ``[...]`` a class and
    ``{a,b}`` alternatives.
    """
    out, index, depth = [], 0, 0
    while index < len(pattern):
        char = pattern[index]
        if char == "*":
            while index + 1 < len(pattern) and pattern[index + 1] == "*":
                index += 1
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "[" and pattern.find("]", index + 2) != -1:
            end = pattern.find("]", index + 2)
            body = pattern[index + 1 : end]
            out.append("[" + ("^" + re.escape(body[1:]) if body[:1] in "!^" else re.escape(body)) + "]")
            index = end
        elif char == "{":
            depth += 1
            out.append("(?:")
        elif char == "}" and depth:
            depth -= 1
            out.append(")")
        elif char == "," and depth:
            out.append("|")
        else:
            out.append(re.escape(char))
        index += 1
    if depth:  # an unclosed brace is literal, as in minimatch
        return re.compile(re.escape(pattern), re.IGNORECASE)
    return re.compile("".join(out), re.IGNORECASE)


@dataclass(frozen=True)
class CorsOptions:
    """``backend.cors``, read: ``origins`` is ``None`` when any origin is allowed (``*``)."""

    origins: tuple[re.Pattern[str], ...] | None = None
    methods: str = _DEFAULT_METHODS
    allowed_headers: str | None = None
    exposed_headers: str | None = None
    credentials: bool = False
    max_age: str | None = None
    preflight_continue: bool = False
    options_success_status: int = 204

    def allows(self, origin: str | None) -> bool:
        """Whether ``origin`` (the request's ``Origin``, maybe absent) is allowed."""
        if self.origins is None:
            return True
        return bool(origin) and any(pattern.fullmatch(origin or "") for pattern in self.origins)


def _strings(config: Config, key: str) -> list[str] | None:
    value = config.get_optional(key)
    if value is None or value == "" or value == []:
        return None
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return list(value)
    raise ConfigError(f"Invalid backend.cors.{key}, expected a string or a list of strings")


def read_cors_options(config: Config) -> CorsOptions | None:
    """``backend.cors`` as :class:`CorsOptions`; ``None`` when it is not configured."""
    if config.get_optional("backend.cors") is None:
        return None
    section = config.get_config("backend.cors")
    origins = _strings(section, "origin")
    methods = _strings(section, "methods")
    allowed = _strings(section, "allowedHeaders")
    exposed = _strings(section, "exposedHeaders")
    max_age = section.get_optional("maxAge")
    if max_age is not None and (isinstance(max_age, bool) or not isinstance(max_age, (int, float))):
        raise ConfigError("Invalid backend.cors.maxAge, expected a number")
    status = section.get_optional("optionsSuccessStatus")
    if status is not None and (isinstance(status, bool) or not isinstance(status, int)):
        raise ConfigError("Invalid backend.cors.optionsSuccessStatus, expected an integer")
    return CorsOptions(
        origins=tuple(origin_pattern(origin) for origin in origins) if origins is not None else None,
        methods=",".join(methods) if methods else _DEFAULT_METHODS,
        allowed_headers=",".join(allowed) if allowed else None,
        exposed_headers=",".join(exposed) if exposed else None,
        credentials=bool(section.get_optional_boolean("credentials")),
        max_age=None if max_age is None else str(int(max_age) if float(max_age).is_integer() else max_age),
        preflight_continue=bool(section.get_optional_boolean("preflightContinue")),
        options_success_status=204 if status is None else status,
    )


def _header(scope: dict[str, Any], name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            decoded: str = value.decode("latin-1")
            return decoded
    return None


def _with_vary(headers: list[tuple[bytes, bytes]], fields: list[str]) -> list[tuple[bytes, bytes]]:
    """Add ``fields`` to ``Vary`` (one header, no duplicates), as the ``vary`` package does."""
    if not fields:
        return headers
    current = next((value.decode("latin-1") for key, value in headers if key.lower() == b"vary"), "")
    present = [item.strip() for item in current.split(",") if item.strip()]
    if "*" in present:
        return headers
    merged = present + [field for field in fields if field.lower() not in {item.lower() for item in present}]
    return [*(h for h in headers if h[0].lower() != b"vary"), (b"vary", ", ".join(merged).encode("latin-1"))]


def with_cors(app: ASGIApp, config: Config) -> ASGIApp:
    """Wrap ``app`` with ``backend.cors`` (or return it unchanged when that is not configured)."""
    options = read_cors_options(config)
    if options is None:
        return app

    async def cors(scope: dict[str, Any], receive: Any, send: Any) -> None:
        origin = _header(scope, b"origin")
        if scope["type"] != "http" or not options.allows(origin):
            await app(scope, receive, send)
            return
        headers: list[tuple[bytes, bytes]] = []
        vary: list[str] = []
        if options.origins is None:
            headers.append((b"access-control-allow-origin", b"*"))
        else:
            if origin:
                headers.append((b"access-control-allow-origin", origin.encode("latin-1")))
            vary.append("Origin")
        if options.credentials:
            headers.append((b"access-control-allow-credentials", b"true"))
        if scope.get("method") == "OPTIONS":
            headers.append((b"access-control-allow-methods", options.methods.encode()))
            allowed = options.allowed_headers
            if allowed is None:
                allowed = _header(scope, b"access-control-request-headers")
                vary.append("Access-Control-Request-Headers")
            if allowed:
                headers.append((b"access-control-allow-headers", allowed.encode("latin-1")))
            if options.max_age:
                headers.append((b"access-control-max-age", options.max_age.encode()))
        if options.exposed_headers:
            headers.append((b"access-control-expose-headers", options.exposed_headers.encode()))
        if scope.get("method") == "OPTIONS" and not options.preflight_continue:
            await send(
                {
                    "type": "http.response.start",
                    "status": options.options_success_status,
                    "headers": _with_vary([*headers, (b"content-length", b"0")], vary),
                }
            )
            await send({"type": "http.response.body", "body": b""})
            return

        async def send_with_cors(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                own = list(message.get("headers") or [])
                present = {name.lower() for name, _ in own}
                added = [header for header in headers if header[0] not in present]
                message = {**message, "headers": _with_vary([*own, *added], vary)}
            await send(message)

        await app(scope, receive, send_with_cors)

    return cors
