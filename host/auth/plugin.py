"""The ``auth`` plugin: sign-in providers, user info and the public keys.

Routes under ``/api/auth``:

* ``GET|POST /guest/refresh`` - the guest provider (development): signs in
  ``auth.providers.guest.userEntityRef`` (default ``user:default/guest``).
  Disabled with ``auth.environment: production`` unless
  ``dangerouslyAllowOutsideDevelopment: true``.
* ``GET|POST /proxy/refresh`` - the trusted-proxy provider (production):
  the user comes from a header set by an authenticating proxy
  (``auth.providers.proxy.userHeader``, default ``x-forwarded-user``). When
  ``auth.providers.proxy.secret`` is set the proxy must also send it in
  ``secretHeader`` (default ``x-greenroom-proxy-secret``); in production a
  proxy provider without a secret refuses to start unless
  ``dangerouslyAllowWithoutSecret: true``. Only users that exist in the
  catalog are signed in, unless ``allowUnknownUsers: true``.
* ``GET /v1/userinfo`` - ``{"claims": {"sub", "ent"}}`` for a user token.
* ``GET /.well-known/jwks.json`` - the public signing keys.

Both providers answer in Backstage's refresh shape. Ownership refs come from
the sign-in resolver set through the ``auth.signInResolver`` extension point
(the catalog module sets one that adds the user's groups); without one a
user owns only their own ref.
"""

from __future__ import annotations

import hmac
import types
from collections.abc import Awaitable, Callable
from typing import Any

import falcon
import pluggy

from host.aio import await_me_maybe
from host.auth import hookspecs
from host.auth.config_schema import AuthConfig
from host.auth.tokens import TokenManager
from host.config import Config, ConfigError
from host.database import PluginDatabase
from host.environment import is_production
from host.errors import AuthenticationError, InputError, NotFoundError
from host.features import create_backend_plugin, create_extension_point
from host.hooks import register_checked
from host.services import core_services

OwnershipResolver = Callable[[str], Awaitable[list[str]]]
UserLookup = Callable[[str], Awaitable[bool]]
UNKNOWN_USER_MESSAGE = (
    "Failed to sign-in, unable to resolve user identity. Please verify that your catalog contains the expected "
    "User entities that would match your configured sign-in resolver."
)


class SignInResolverRegistry:
    """The ``auth.signInResolver`` extension point: the sign-in hooks' plugin manager.

    The hooks (:mod:`host.auth.hookspecs`) are ``firstresult`` and called through pluggy.
    """

    def __init__(self) -> None:
        self.plugin_manager = pluggy.PluginManager(hookspecs.PROJECT_NAME)
        self.plugin_manager.add_hookspecs(hookspecs)
        self._set: set[str] = set()

    def add_resolver(self, resolver: object) -> None:
        """Register an object (or module) with ``@auth_hookimpl`` implementations of the sign-in hooks."""
        register_checked(self.plugin_manager, resolver)

    def set_ownership_resolver(self, resolver: OwnershipResolver) -> None:
        """Use ``resolver(user_entity_ref)`` to compute a signed-in user's ownership refs."""
        self._set_once("auth_resolve_ownership", "An ownership resolver is already set", resolver)

    def set_user_lookup(self, lookup: UserLookup) -> None:
        """Use ``await lookup(user_entity_ref)`` to tell whether a user exists (the proxy provider asks)."""
        self._set_once("auth_user_exists", "A user lookup is already set", lookup)

    @property
    def has_user_lookup(self) -> bool:
        """Whether anything implements ``auth_user_exists``."""
        return bool(self.plugin_manager.hook.auth_user_exists.get_hookimpls())

    async def resolve_ownership(self, user_entity_ref: str) -> list[str] | None:
        """Call ``auth_resolve_ownership`` through pluggy (the first answer wins)."""
        refs: list[str] | None = await await_me_maybe(
            self.plugin_manager.hook.auth_resolve_ownership(user_entity_ref=user_entity_ref)
        )
        return refs

    async def user_exists(self, user_entity_ref: str) -> bool:
        """Call ``auth_user_exists`` through pluggy; no answer means unknown."""
        return bool(await await_me_maybe(self.plugin_manager.hook.auth_user_exists(user_entity_ref=user_entity_ref)))

    def _set_once(self, hook: str, message: str, func: Callable[[str], Awaitable[Any]]) -> None:
        if hook in self._set:
            raise RuntimeError(message)
        self._set.add(hook)

        def implementation(user_entity_ref: str) -> Awaitable[Any]:
            return func(user_entity_ref)

        plugin = types.SimpleNamespace(**{hook: hookspecs.auth_hookimpl(specname=hook)(implementation)})
        self.add_resolver(plugin)


def provider_config(config: Config, provider: str) -> Config | None:
    """``auth.providers.<provider>`` as a :class:`Config`, or ``None`` when absent or ``false``."""
    raw = config.get_optional(f"auth.providers.{provider}")
    if raw is None or raw is False:
        return None
    return Config(raw if isinstance(raw, dict) else {}, f"auth.providers.{provider}")


def check_providers(config: Config, resolvers: SignInResolverRegistry | None = None) -> None:
    """Refuse sign-in settings that are unsafe for the environment (raises :class:`ConfigError`).

    ``resolvers`` is given at startup, when the installed modules are known;
    ``config check`` passes ``None`` and skips the catalog check.
    """
    production = is_production(config)
    proxy = provider_config(config, "proxy")
    if proxy is None:
        return
    if (
        production
        and not proxy.get_optional_string("secret")
        and not proxy.get_optional_boolean("dangerouslyAllowWithoutSecret")
    ):
        raise ConfigError(
            "auth.providers.proxy has no secret, so anyone who reaches the host could sign in as anyone; set "
            "auth.providers.proxy.secret (sent by the proxy in secretHeader), or "
            "auth.providers.proxy.dangerouslyAllowWithoutSecret: true if the network guarantees it"
        )
    if resolvers is not None and not resolvers.has_user_lookup and not proxy.get_optional_boolean("allowUnknownUsers"):
        raise ConfigError(
            "auth.providers.proxy signs in only users found in the catalog, but no module provides a user lookup "
            "(install the catalog plugin), or set auth.providers.proxy.allowUnknownUsers: true"
        )


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
        cfg = provider_config(self._config, provider)
        if cfg is None:
            raise NotFoundError(f"Unknown auth provider '{provider}'")
        if (
            provider == "guest"
            and is_production(self._config)
            and not cfg.get_optional_boolean("dangerouslyAllowOutsideDevelopment")
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
            user_ref = to_user_ref(user)
            if not cfg.get_optional_boolean("allowUnknownUsers") and not await self._resolvers.user_exists(user_ref):
                raise AuthenticationError(UNKNOWN_USER_MESSAGE)
            return user_ref, profile
        raise NotFoundError(f"Unknown auth provider '{provider}'")

    async def on_get(self, req: falcon.Request, resp: falcon.Response, provider: str) -> None:
        user_ref, profile = await self._identify(provider, req)
        ownership = list(await self._resolvers.resolve_ownership(user_ref) or [user_ref])
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

    async def init(config: Config, router: Any, http_auth: Any, tokens: TokenManager, database: PluginDatabase) -> None:
        check_providers(config, resolvers)
        tokens.use_key_database(database)  # the signing keys live in this plugin's database
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
            "database": core_services.database,
        },
        init=init,
    )


#: The ``auth`` backend plugin.
auth_plugin = create_backend_plugin("auth", _register, config_schema={"auth": AuthConfig})
