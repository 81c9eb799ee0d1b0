"""The user cookie: ``/api/<pluginId>/.backstage/auth/v1/cookie`` on every plugin router, as in Backstage.

Browsers cannot send an ``Authorization`` header with a plain ``<img>`` or
``<a href>``; routes a plugin opens with ``add_auth_policy(path,
allow="user-cookie")`` therefore also accept the ``backstage-auth`` cookie.

* ``GET`` with a user token sets the cookie to a limited user token (only the
  user's ref, valid as long as the user token) and answers
  ``{"expiresAt": "<ISO time>"}``;
* ``DELETE`` with a user token clears it (204).

Service tokens get 403, anonymous callers 401; the cookie itself is never
accepted here. The cookie is ``HttpOnly``, ``SameSite=Lax``, ``Path=/``, for
the host of ``backend.baseUrl``, and ``Secure`` when that URL is https.
"""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any
from urllib.parse import urlsplit

import falcon

from host.auth.service import USER_COOKIE_NAME
from host.config import Config

COOKIE_PATH = "/.backstage/auth/v1/cookie"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _cookie(value: str, expires: datetime, base_url: str) -> str:
    parts = urlsplit(base_url)
    attributes = [f"{USER_COOKIE_NAME}={value}"]
    if parts.hostname:
        attributes.append(f"Domain={parts.hostname}")
    attributes += [
        "Path=/",
        f"Expires={format_datetime(expires, usegmt=True)}",
        "HttpOnly",
        "Priority=High",
        "SameSite=Lax",
    ]
    if parts.scheme == "https":
        attributes.append("Secure")
    return "; ".join(attributes)


class UserCookieResource:
    """Issues and clears the user cookie for the caller's user token."""

    def __init__(self, http_auth: Any, config: Config) -> None:
        self._http_auth = http_auth
        self._base_url = config.get_optional_string("backend.baseUrl") or "http://localhost:7007"

    async def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Set the cookie; answer when it expires."""
        creds = await self._http_auth.credentials(req, allow=("user",))
        token, expires = await self._http_auth.limited_user_token(creds)
        resp.append_header("Set-Cookie", _cookie(token, expires, self._base_url))
        resp.media = {"expiresAt": expires.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")}

    async def on_delete(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Clear the cookie."""
        await self._http_auth.credentials(req, allow=("user",))
        resp.append_header("Set-Cookie", _cookie("", _EPOCH, self._base_url))
        resp.status = falcon.HTTP_204
