"""The plugin-scoped auth, httpAuth and userInfo services."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from host.access_log import note_principal
from host.auth.credentials import Credentials, NonePrincipal, ServicePrincipal, UserInfo, UserPrincipal
from host.auth.tokens import LIMITED_USER_TOKEN_TYPE, PLUGIN_TOKEN_TYPE, USER_TOKEN_TYPE, TokenManager
from host.errors import AuthenticationError, NotAllowedError

#: The cookie ``GET /.backstage/auth/v1/cookie`` sets (Backstage's name).
USER_COOKIE_NAME = "backstage-auth"
_PLUGIN_SUBJECT = re.compile(r"^[a-z0-9_-]+$", re.IGNORECASE)


class AuthService:
    """Authenticates tokens and issues plugin-to-plugin tokens for one plugin."""

    def __init__(self, plugin_id: str, tokens: TokenManager) -> None:
        self.plugin_id = plugin_id
        self._tokens = tokens

    async def authenticate(self, token: str, *, allow_limited_access: bool = False) -> Credentials:
        """Turn a bearer token into :class:`Credentials`, or raise 401/403.

        A limited user token (the user cookie) is accepted only with ``allow_limited_access``.
        """
        if not token:
            raise AuthenticationError("Missing credentials")
        static = self._tokens.static_tokens.get(token)
        if static is not None:
            if static.access_restrictions is not None and self.plugin_id not in static.access_restrictions:
                plugins = ", ".join(f"'{p}'" for p in static.access_restrictions)
                raise NotAllowedError(f"This token's access is restricted to plugin(s) {plugins}")
            return Credentials(ServicePrincipal(static.subject, static.access_restrictions), token)
        if token.count(".") != 2:
            raise AuthenticationError("Illegal token")
        header, claims = await self._tokens.verify_jwt(token)
        expires = datetime.fromtimestamp(claims["exp"], UTC)
        if header.get("typ") == USER_TOKEN_TYPE:
            ent = claims.get("ent") or [claims["sub"]]
            if not isinstance(ent, list) or not all(isinstance(e, str) for e in ent):
                raise AuthenticationError("Ownership entity refs must be an array of strings")
            return Credentials(UserPrincipal(claims["sub"], tuple(ent)), token, expires)
        if header.get("typ") == LIMITED_USER_TOKEN_TYPE:
            if not allow_limited_access:
                raise AuthenticationError("Illegal limited user token")
            return Credentials(UserPrincipal(str(claims["sub"]), (str(claims["sub"]),)), token, expires, limited=True)
        if header.get("typ") == PLUGIN_TOKEN_TYPE:
            subject = str(claims["sub"])
            if not _PLUGIN_SUBJECT.match(subject):
                raise AuthenticationError("Illegal token")
            if claims.get("aud") != self.plugin_id:
                raise AuthenticationError("Invalid token audience")
            actor = ServicePrincipal(f"plugin:{subject}")
            obo = claims.get("obo")
            if obo:
                _, user_claims = await self._tokens.verify_jwt(obo)
                ent = tuple(user_claims.get("ent") or [user_claims["sub"]])
                return Credentials(UserPrincipal(user_claims["sub"], ent, actor), obo, expires)
            return Credentials(actor, token, expires)
        raise AuthenticationError("Illegal token")

    async def get_limited_user_token(self, credentials: Credentials) -> tuple[str, datetime]:
        """A limited user token for a user's credentials (the user cookie) and when it expires."""
        principal = credentials.principal
        if not isinstance(principal, UserPrincipal):
            raise NotAllowedError(f"This endpoint does not allow '{principal.type}' credentials")
        expires = credentials.expires_at or datetime.now(UTC)
        token = await self._tokens.issue_limited_user_token(principal.user_entity_ref, int(expires.timestamp()))
        return token, expires

    def get_own_service_credentials(self) -> Credentials:
        """Credentials of this plugin acting as itself (``plugin:<id>``)."""
        return Credentials(ServicePrincipal(f"plugin:{self.plugin_id}"))

    def get_none_credentials(self) -> Credentials:
        """Credentials of an anonymous caller."""
        return Credentials(NonePrincipal())

    @staticmethod
    def is_principal(credentials: Credentials, kind: str) -> bool:
        """Whether ``credentials`` hold a principal of ``kind`` (``user``, ``service``, ``none``, ``unknown``)."""
        return kind == "unknown" or credentials.principal.type == kind

    async def get_plugin_request_token(self, *, on_behalf_of: Credentials, target_plugin_id: str) -> str:
        """A token this plugin sends to ``target_plugin_id``, on behalf of a user or of itself."""
        principal = on_behalf_of.principal
        if isinstance(principal, UserPrincipal):
            return await self._tokens.issue_plugin_token(self.plugin_id, target_plugin_id, obo=on_behalf_of.token)
        if isinstance(principal, ServicePrincipal):
            return await self._tokens.issue_plugin_token(self.plugin_id, target_plugin_id)
        raise AuthenticationError(f"Refused to issue service token for credential type '{principal.type}'")


def bearer_token(header: str | None) -> str | None:
    """Extract the token from an ``Authorization: Bearer ...`` header."""
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def user_cookie_token(req: Any) -> str | None:
    """The limited user token in the ``backstage-auth`` cookie, if any."""
    values = req.get_cookie_values(USER_COOKIE_NAME) or []
    return values[0] if values and values[0] else None


class HttpAuthService:
    """Reads credentials from Falcon requests (and WebSocket handshakes)."""

    def __init__(self, auth: AuthService) -> None:
        self._auth = auth

    async def credentials(
        self, req: Any, allow: Iterable[str] | None = None, *, allow_limited_access: bool = False
    ) -> Credentials:
        """Authenticate ``req``; ``allow`` limits principal types (401 for none, 403 otherwise).

        With ``allow_limited_access`` (routes under a ``user-cookie`` auth policy)
        the user cookie is accepted when no ``Authorization`` header is sent.
        """
        creds: Credentials | None = getattr(req.context, "credentials", None)
        if creds is None:
            token = bearer_token(req.get_header("Authorization"))
            cookie = None if token or not allow_limited_access else user_cookie_token(req)
            if token or cookie:
                creds = await self._auth.authenticate(token or cookie or "", allow_limited_access=allow_limited_access)
            else:
                creds = self._auth.get_none_credentials()
            req.context.credentials = creds
        if creds.limited and not allow_limited_access:
            raise AuthenticationError("Illegal limited user token")
        allowed = tuple(allow) if allow is not None else ("user", "service", "none")
        kind = creds.principal.type
        note_principal(kind)
        if kind not in allowed:
            if kind == "none":
                raise AuthenticationError("Missing credentials")
            raise NotAllowedError(f"This endpoint does not allow '{kind}' credentials")
        return creds

    async def limited_user_token(self, credentials: Credentials) -> tuple[str, datetime]:
        """See :meth:`AuthService.get_limited_user_token`."""
        return await self._auth.get_limited_user_token(credentials)


class UserInfoService:
    """Answers who a user is and what they own, from their token's claims."""

    async def get_user_info(self, credentials: Credentials) -> UserInfo:
        """Return the user's entity ref and ownership refs."""
        principal = credentials.principal
        if not isinstance(principal, UserPrincipal):
            raise NotAllowedError("Only user credentials are supported")
        return UserInfo(principal.user_entity_ref, list(principal.ownership_entity_refs))
