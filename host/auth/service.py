"""The plugin-scoped auth, httpAuth and userInfo services."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from host.auth.credentials import Credentials, NonePrincipal, ServicePrincipal, UserInfo, UserPrincipal
from host.auth.tokens import PLUGIN_TOKEN_TYPE, USER_TOKEN_TYPE, TokenManager
from host.errors import AuthenticationError, NotAllowedError

_PLUGIN_SUBJECT = re.compile(r"^[a-z0-9_-]+$", re.IGNORECASE)


class AuthService:
    """Authenticates tokens and issues plugin-to-plugin tokens for one plugin."""

    def __init__(self, plugin_id: str, tokens: TokenManager) -> None:
        self.plugin_id = plugin_id
        self._tokens = tokens

    async def authenticate(self, token: str) -> Credentials:
        """Turn a bearer token into :class:`Credentials`, or raise 401/403."""
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


class HttpAuthService:
    """Reads credentials from Falcon requests (and WebSocket handshakes)."""

    def __init__(self, auth: AuthService) -> None:
        self._auth = auth

    async def credentials(self, req: Any, allow: Iterable[str] | None = None) -> Credentials:
        """Authenticate ``req``; ``allow`` limits principal types (401 for none, 403 otherwise)."""
        creds: Credentials | None = getattr(req.context, "credentials", None)
        if creds is None:
            token = bearer_token(req.get_header("Authorization"))
            creds = await self._auth.authenticate(token) if token else self._auth.get_none_credentials()
            req.context.credentials = creds
        allowed = tuple(allow) if allow is not None else ("user", "service", "none")
        kind = creds.principal.type
        if kind not in allowed:
            if kind == "none":
                raise AuthenticationError("Missing credentials")
            raise NotAllowedError(f"This endpoint does not allow '{kind}' credentials")
        return creds


class UserInfoService:
    """Answers who a user is and what they own, from their token's claims."""

    async def get_user_info(self, credentials: Credentials) -> UserInfo:
        """Return the user's entity ref and ownership refs."""
        principal = credentials.principal
        if not isinstance(principal, UserPrincipal):
            raise NotAllowedError("Only user credentials are supported")
        return UserInfo(principal.user_entity_ref, list(principal.ownership_entity_refs))
