"""The security headers Backstage's backend sends on every response (helmet's defaults).

Observed on a Backstage backend (see ``docs/security.md``)::

    Content-Security-Policy: default-src 'self';base-uri 'self';font-src 'self' https: data:;
      frame-ancestors 'self';img-src 'self' data:;object-src 'none';script-src 'self' 'unsafe-eval';
      script-src-attr 'none';style-src 'self' https: 'unsafe-inline';upgrade-insecure-requests
    Referrer-Policy: no-referrer
    Strict-Transport-Security: max-age=15552000; includeSubDomains
    X-Content-Type-Options: nosniff
    X-DNS-Prefetch-Control: off
    X-Download-Options: noopen
    X-Frame-Options: SAMEORIGIN
    X-Permitted-Cross-Domain-Policies: none
    X-XSS-Protection: 0

:func:`with_security_headers` wraps the root ASGI app: every HTTP response
(and every refused WebSocket handshake) gets each header the app did not set
itself, so a page with its own, stricter policy (the web inbox) keeps it.
``backend.csp`` changes directives as in Backstage: ``{directive: [values]}``
replaces one, ``{directive: false}`` removes it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from host.config import Config, ConfigError

ASGIApp = Callable[[dict[str, Any], Callable[..., Awaitable[Any]], Callable[..., Awaitable[Any]]], Awaitable[None]]

#: helmet's default Content-Security-Policy, as Backstage sends it (directive -> values).
DEFAULT_CSP: dict[str, list[str]] = {
    "default-src": ["'self'"],
    "base-uri": ["'self'"],
    "font-src": ["'self'", "https:", "data:"],
    "frame-ancestors": ["'self'"],
    "img-src": ["'self'", "data:"],
    "object-src": ["'none'"],
    "script-src": ["'self'", "'unsafe-eval'"],
    "script-src-attr": ["'none'"],
    "style-src": ["'self'", "https:", "'unsafe-inline'"],
    "upgrade-insecure-requests": [],
}

#: The other headers, in the order Backstage sends them.
DEFAULT_HEADERS: list[tuple[str, str]] = [
    ("referrer-policy", "no-referrer"),
    ("strict-transport-security", "max-age=15552000; includeSubDomains"),
    ("x-content-type-options", "nosniff"),
    ("x-dns-prefetch-control", "off"),
    ("x-download-options", "noopen"),
    ("x-frame-options", "SAMEORIGIN"),
    ("x-permitted-cross-domain-policies", "none"),
    ("x-xss-protection", "0"),
]

_START_MESSAGES = ("http.response.start", "websocket.http.response.start")


def content_security_policy(overrides: Mapping[str, Any] | None = None) -> str:
    """helmet's policy with ``backend.csp`` applied (a list replaces a directive, ``false`` drops it)."""
    directives = dict(DEFAULT_CSP)
    for name, value in (overrides or {}).items():
        if value is False:
            directives.pop(name, None)
        elif isinstance(value, list) and all(isinstance(v, str) for v in value):
            directives[name] = list(value)
        else:
            raise ConfigError(f"Invalid backend.csp.{name}, expected a list of strings or false")
    return ";".join(" ".join([name, *values]) for name, values in directives.items())


def security_headers(config: Config) -> list[tuple[bytes, bytes]]:
    """Every header to add, encoded for ASGI."""
    overrides = config.get_optional("backend.csp")
    if overrides is not None and not isinstance(overrides, dict):
        raise ConfigError("Invalid backend.csp, expected an object of directive names")
    headers = [("content-security-policy", content_security_policy(overrides)), *DEFAULT_HEADERS]
    return [(name.encode(), value.encode()) for name, value in headers]


def with_security_headers(app: ASGIApp, config: Config) -> ASGIApp:
    """Wrap ``app`` so every response carries the security headers it did not set itself."""
    headers = security_headers(config)

    async def secured(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket"):
            await app(scope, receive, send)
            return

        async def send_with_headers(message: dict[str, Any]) -> None:
            if message["type"] in _START_MESSAGES:
                own = message.get("headers") or []
                present = {name.lower() for name, _ in own}
                message = {**message, "headers": [*own, *(h for h in headers if h[0] not in present)]}
            await send(message)

        await app(scope, receive, send_with_headers)

    return secured
