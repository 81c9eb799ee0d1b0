"""The ``auth`` plugin: sign-in providers, user info and the public keys.

Routes under ``/api/auth``:

* ``GET|POST /guest/refresh`` - the guest provider (development): signs in
  ``auth.providers.guest.userEntityRef`` (default ``user:default/guest``).
  Disabled when ``GREENROOM_ENV=production`` unless
  ``dangerouslyAllowOutsideDevelopment: true``.
* ``GET|POST /proxy/refresh`` - the trusted-proxy provider (production):
  the user comes from a header set by an authenticating proxy
  (``auth.providers.proxy.userHeader``, default ``x-forwarded-user``). When
  ``auth.providers.proxy.secret`` is set the proxy must also send it in
  ``secretHeader`` (default ``x-greenroom-proxy-secret``).
* ``GET /v1/userinfo`` - ``{"claims": {"sub", "ent"}}`` for a user token.
* ``GET /.well-known/jwks.json`` - the public signing keys.

Both providers answer in Backstage's refresh shape. Ownership refs come from
the sign-in resolver set through the ``auth.signInResolver`` extension point
(the catalog module sets one that adds the user's groups); without one a
user owns only their own ref.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Awaitable, Callable
from typing import Any

import falcon

from host.services import core_services
from host.config import Config
from host.errors import AuthenticationError, InputError, NotFoundError
from host.features import create_backend_plugin, create_extension_point

OwnershipResolver = Callable[[str], Awaitable[list[str]]]


class SignInResolverRegistry:
    """The ``auth.signInResolver`` extension point: set how ownership refs are found."""

    def __init__(self) -> None:
        self.ownership_resolver: OwnershipResolver | None = None

    def set_ownership_resolver(self, resolver: OwnershipResolver) -> None:
        """Use ``resolver(user_entity_ref)`` to compute a signed-in user's ownership refs."""
        if self.ownership_resolver is not None:
            raise RuntimeError("An ownership resolver is already set")
        self.ownership_resolver = resolver


sign_in_resolver_extension_point = create_extension_point("auth.signInResolver")


def to_user_ref(value: str) -> str:
    """Turn ``jane``, ``default/jane`` or ``user:default/jane`` into a canonical user ref."""
    value = value.strip()
    if not value:
        raise InputError("Empty user identity")
    if ":" in value:
        kind, _, rest = value.partition(":")
    else:
        kind, rest = "user", value
    namespace, _, name = rest.rpartition("/")
    if kind.lower() != "user" or not name:
        raise InputError(f"Invalid user identity '{value}'")
    return f"user:{(namespace or 'default').lower()}/{name.lower()}"


class RefreshResource:
    """``/{provider}/refresh``: sign in and return a Backstage identity."""

    def __init__(self, config: Config, tokens: Any, resolvers: SignInResolverRegistry) -> None:
        self._config = config
        self._tokens = tokens
        self._resolvers = resolvers

    def _provider_config(self, provider: str) -> Config:
        raw = self._config.get_optional(f"auth.providers.{provider}")
        if raw is None or raw is False:
            raise NotFoundError(f"Unknown auth provider '{provider}'")
        cfg = Config(raw if isinstance(raw, dict) else {}, f"auth.providers.{provider}")
        if provider == "guest" and os.environ.get("GREENROOM_ENV") == "production" and not cfg.get_optional_boolean(
            "dangerouslyAllowOutsideDevelopment"
        ):
            raise NotFoundError("The guest provider is disabled in production")
        return cfg

    async def _identify(self, provider: str, req: falcon.Request) -> tuple[str, dict[str, Any]]:
        cfg = self._provider_config(provider)
        if provider == "guest":
            return to_user_ref(cfg.get_optional_string("userEntityRef") or "user:default/guest"), {}
        if provider == "proxy":
            secret = cfg.get_optional_string("secret")
            if secret:
                sent = req.get_header(cfg.get_optional_string("secretHeader") or "x-greenroom-proxy-secret") or ""
                if not hmac.compare_digest(sent.encode(), secret.encode()):
                    raise AuthenticationError("Request did not come through the trusted proxy")
            user = req.get_header(cfg.get_optional_string("userHeader") or "x-forwarded-user")
            if not user:
                raise AuthenticationError("The proxy did not identify a user")
            profile: dict[str, Any] = {}
            email = req.get_header(cfg.get_optional_string("emailHeader") or "x-forwarded-email")
            if email:
                profile["email"] = email
            return to_user_ref(user), profile
        raise NotFoundError(f"Unknown auth provider '{provider}'")

    async def on_get(self, req: falcon.Request, resp: falcon.Response, provider: str) -> None:
        user_ref, profile = await self._identify(provider, req)
        ownership = [user_ref]
        if self._resolvers.ownership_resolver is not None:
            ownership = await self._resolvers.ownership_resolver(user_ref)
            if user_ref not in ownership:
                ownership.insert(0, user_ref)
        token, ttl = await self._tokens.issue_user_token(user_ref, ownership)
        resp.media = {
            "profile": profile,
            "backstageIdentity": {
                "token": token,
                "identity": {"type": "user", "userEntityRef": user_ref, "ownershipEntityRefs": ownership},
                "expiresInSeconds": ttl,
            },
        }

    on_post = on_get


class UserInfoResource:
    """``GET /v1/userinfo``: the claims of the caller's user token."""

    def __init__(self, http_auth: Any) -> None:
        self._http_auth = http_auth

    async def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        creds = await self._http_auth.credentials(req, allow=("user",))
        principal = creds.principal
        resp.media = {"claims": {"sub": principal.user_entity_ref, "ent": list(principal.ownership_entity_refs)}}


class JwksResource:
    """``GET /.well-known/jwks.json``: the public signing keys."""

    def __init__(self, tokens: Any) -> None:
        self._tokens = tokens

    async def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = await self._tokens.jwks()


def _register(reg: Any) -> None:
    resolvers = SignInResolverRegistry()
    reg.register_extension_point(sign_in_resolver_extension_point, resolvers)

    async def init(config: Config, router: Any, http_auth: Any, tokens: Any) -> None:
        router.add_route("/{provider}/refresh", RefreshResource(config, tokens, resolvers))
        router.add_route("/v1/userinfo", UserInfoResource(http_auth))
        router.add_route("/.well-known/jwks.json", JwksResource(tokens))
        for path in ("/guest/refresh", "/proxy/refresh", "/.well-known/jwks.json"):
            router.add_auth_policy(path, allow="unauthenticated")
        await tokens.jwks()  # create or load the signing key before serving

    reg.register_init(
        deps={
            "config": core_services.config,
            "router": core_services.http_router,
            "http_auth": core_services.http_auth,
            "tokens": core_services.root_auth,
        },
        init=init,
    )


#: The ``auth`` backend plugin.
auth_plugin = create_backend_plugin("auth", _register)
