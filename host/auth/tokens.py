"""Token issuing and verification (root scoped, ``core.rootAuth``).

User tokens and plugin-to-plugin tokens are ES256 JWTs, Backstage style:

* user: header ``typ: vnd.backstage.user``; claims ``sub`` (user ref), ``ent``
  (ownership refs), ``aud: backstage``, ``iat``, ``exp``;
* limited user (the ``backstage-auth`` cookie): header
  ``typ: vnd.backstage.limited-user``; claims ``sub``, ``iat``, ``exp``;
* plugin: header ``typ: vnd.backstage.plugin``; claims ``sub`` (source
  plugin id), ``aud`` (target plugin id), optional ``obo`` (the user token the
  call is made on behalf of).

The signing key lives in the database of the plugin that serves sign-in
(the ``auth`` plugin hands its database over with :meth:`TokenManager.use_key_database`
in its init), so every worker and every instance sharing that database issues
and accepts the same tokens, or in config (``auth.keyStore.provider: static``,
see :mod:`host.auth.keys`). Until a database is handed over, token calls wait;
once the backend has started without one they fail at once.
Static external-access tokens come from ``backend.auth.externalAccess``.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jwt
from cachetools import TLRUCache, TTLCache
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import text

from host.auth.keys import KeySet, generate_private_pem, load_private_key, static_key_set
from host.auth.published_tokens import is_published
from host.config import Config, ConfigError
from host.database import DatabaseManager, PluginDatabase
from host.environment import is_production
from host.errors import AuthenticationError, ServiceUnavailableError
from host.logging import Logger

USER_TOKEN_TYPE = "vnd.backstage.user"
LIMITED_USER_TOKEN_TYPE = "vnd.backstage.limited-user"
PLUGIN_TOKEN_TYPE = "vnd.backstage.plugin"
USER_TOKEN_TTL_SECONDS = 3600
PLUGIN_TOKEN_TTL_SECONDS = 3600
_MIGRATIONS = Path(__file__).with_name("migrations")
_CACHE_LIMIT = 10_000
#: How long a token's unknown ``kid`` is rejected without looking at the key table again
#: (``auth.keyStore.unknownKeyIdTtl``).
UNKNOWN_KID_TTL_SECONDS = 60.0
#: The key table is read again (for a kid created by another process) at most this often
#: (``auth.keyStore.reloadInterval``).
KEY_RELOAD_INTERVAL_SECONDS = 5.0


@dataclass(frozen=True)
class StaticToken:
    """One ``type: static`` entry of ``backend.auth.externalAccess``."""

    subject: str
    access_restrictions: tuple[str, ...] | None


def parse_external_access(config: Config) -> dict[str, StaticToken]:
    """Validate ``backend.auth.externalAccess`` and return static tokens by value.

    In production a token published in the repository is refused.
    """
    production = is_production(config)
    tokens: dict[str, StaticToken] = {}
    for entry in config.get_config_list("backend.auth.externalAccess"):
        kind = entry.get_string("type")
        if kind != "static":
            raise ConfigError(f"Unknown type '{kind}' in backend.auth.externalAccess, expected one of 'static'")
        token = entry.get_string("options.token")
        subject = entry.get_string("options.subject")
        if len(token) < 8 or re.search(r"\s", token):
            raise ConfigError("Illegal token, must be at least 8 characters long and contain no whitespace")
        if re.search(r"\s", subject):
            raise ConfigError("Illegal subject, must contain no whitespace")
        if token in tokens:
            raise ConfigError("Duplicate static token in backend.auth.externalAccess")
        if production and is_published(token):
            raise ConfigError(
                f"The static token of subject '{subject}' in backend.auth.externalAccess is published in Greenroom's "
                "repository (a development or test token) and is refused with auth.environment: production; "
                "generate a new one, for example with 'openssl rand -hex 32'"
            )
        restrictions = None
        raw = entry.get_optional("accessRestrictions")
        if raw is not None:
            plugins: list[str] = []
            for item in raw:
                plugin = item.get("plugin") if isinstance(item, dict) else None
                if not isinstance(plugin, str):
                    raise ConfigError("accessRestrictions entries need a 'plugin'")
                if plugin in plugins:
                    raise ConfigError(
                        f"Attempted to declare 'accessRestrictions' twice for plugin '{plugin}', which is not permitted"
                    )
                plugins.append(plugin)
            restrictions = tuple(plugins)
        tokens[token] = StaticToken(subject, restrictions)
    return tokens


class TokenManager:
    """Issues and verifies tokens with the shared signing key."""

    def __init__(self, config: Config, databases: DatabaseManager, logger: Logger) -> None:
        self._databases = databases
        self._logger = logger
        self._key_database: PluginDatabase | None = None
        #: Set when the key database is handed over, or when the backend started without one.
        self._key_database_decided = asyncio.Event()
        self.static_tokens = parse_external_access(config)
        logger.redactor.add(self.static_tokens.keys())
        self._issuer = (config.get_optional_string("backend.baseUrl") or "http://localhost:7007").rstrip(
            "/"
        ) + "/api/auth"
        self._static_keys = static_key_set(config)
        self._keys: KeySet | None = self._static_keys
        self._jwks: list[dict[str, Any]] = self._keys.jwks() if self._keys else []
        self._migrated = False
        self._lock = asyncio.Lock()
        # Verified tokens, each kept until its own ``exp`` (least recently used out first when full).
        self._cache: TLRUCache[str, tuple[float, dict[str, Any], dict[str, Any]]] = TLRUCache(
            maxsize=_CACHE_LIMIT, ttu=lambda _token, entry, _now: entry[0], timer=time.time
        )
        # A token whose kid is unknown must not make every request reload the keys: unknown kids are
        # remembered, and the key table is read again at most once per reload interval.
        unknown_ttl = config.get_optional_duration("auth.keyStore.unknownKeyIdTtl")
        reload_interval = config.get_optional_duration("auth.keyStore.reloadInterval")
        self._reload_interval = reload_interval.total_seconds() if reload_interval else KEY_RELOAD_INTERVAL_SECONDS
        self._unknown_kids: TTLCache[str, bool] = TTLCache(
            maxsize=_CACHE_LIMIT, ttl=unknown_ttl.total_seconds() if unknown_ttl else UNKNOWN_KID_TTL_SECONDS
        )
        self._last_reload = float("-inf")

    def use_key_database(self, database: PluginDatabase) -> None:
        """Keep the signing keys in ``database`` (the sign-in plugin's own database, from its init)."""
        if self._key_database is not None and self._key_database is not database:
            raise RuntimeError(
                f"The signing keys are already kept in the database of plugin '{self._key_database.plugin_id}'"
            )
        self._key_database = database
        self._key_database_decided.set()

    def backend_started(self) -> None:
        """The backend started (a root startup hook): without a key database by now, token calls fail."""
        self._key_database_decided.set()

    async def _signing_key_database(self) -> PluginDatabase:
        await self._key_database_decided.wait()
        if self._key_database is None:
            raise ServiceUnavailableError(
                "No signing keys: no plugin of this backend keeps them (the auth plugin does) "
                "and auth.keyStore.provider is not 'static'"
            )
        return self._key_database

    async def _ensure_keys(self) -> KeySet:
        if self._keys is None:
            async with self._lock:
                if self._keys is None:
                    await self._load_keys()
        assert self._keys is not None
        return self._keys

    async def _load_keys(self) -> None:
        """Read the key table (migrating it once, creating the first key if there is none)."""
        db = await self._signing_key_database()
        if not self._migrated:
            await db.migrate(_MIGRATIONS, version_table="greenroom_auth_alembic_version")
            self._migrated = True
        engine = await db.get_engine()
        self._last_reload = time.monotonic()
        rows = await self._load(engine)
        if not rows:
            # Workers booting together must agree on one first key: one that read the table before
            # another's key existed would reject that worker's tokens until its next reload.
            async with self._databases.migration_lock(db.plugin_id, engine, "signing_keys"):
                rows = await self._load(engine)
                if not rows:
                    await self._create_key(engine)
                    rows = await self._load(engine)
        kid, pem, _ = rows[0]
        keys = KeySet(kid, load_private_key(pem, f"signing key {kid}"))
        keys.public = {
            row_kid: load_private_key(row_pem, f"signing key {row_kid}").public_key() for row_kid, row_pem, _ in rows
        }
        self._keys = keys
        self._jwks = [json.loads(jwk) for _, _, jwk in rows]

    @staticmethod
    async def _create_key(engine: Any) -> None:
        """Store a new ES256 signing key."""
        pem = generate_private_pem()
        kid = str(uuid.uuid4())
        private = load_private_key(pem, "signing key")
        jwk = KeySet(kid, private, {kid: private.public_key()}).jwks()[0]
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO signing_keys (kid, private_pem, public_jwk, created_at) VALUES (:kid, :pem, :jwk, :at)"
                ),
                {"kid": kid, "pem": pem, "jwk": json.dumps(jwk), "at": datetime.now(UTC)},
            )

    async def _verification_key(self, kid: Any) -> ec.EllipticCurvePublicKey | None:
        """The public key of ``kid``.

        A kid this process does not know may belong to a key another process
        just created, so the key table is read again, but at most once per
        ``auth.keyStore.reloadInterval`` (5 s); a kid still unknown after a
        read is rejected without reading for ``auth.keyStore.unknownKeyIdTtl`` (60 s).
        """
        keys = await self._ensure_keys()
        if not isinstance(kid, str):
            return None
        key = keys.public.get(kid)
        if key is not None or self._static_keys is not None or kid in self._unknown_kids:
            return key
        async with self._lock:
            if time.monotonic() - self._last_reload < self._reload_interval:
                return self._keys.public.get(kid) if self._keys else None
            await self._load_keys()
        key = (await self._ensure_keys()).public.get(kid)
        if key is None:
            self._unknown_kids[kid] = True
        return key

    @staticmethod
    async def _load(engine: Any) -> list[tuple[str, str, str]]:
        async with engine.connect() as conn:
            result = await conn.execute(
                text("SELECT kid, private_pem, public_jwk FROM signing_keys ORDER BY created_at, kid")
            )
            return [(r[0], r[1], r[2]) for r in result]

    async def jwks(self) -> dict[str, Any]:
        """The public keys as a JWK set."""
        await self._ensure_keys()
        return {"keys": self._jwks}

    async def issue_user_token(
        self, user_entity_ref: str, ownership_entity_refs: list[str], ttl: int = USER_TOKEN_TTL_SECONDS
    ) -> tuple[str, int]:
        """Issue a user token; returns ``(token, expires_in_seconds)``."""
        keys = await self._ensure_keys()
        now = int(time.time())
        claims = {
            "iss": self._issuer,
            "sub": user_entity_ref,
            "ent": ownership_entity_refs,
            "aud": "backstage",
            "iat": now,
            "exp": now + ttl,
        }
        token = jwt.encode(claims, keys.private, algorithm="ES256", headers={"typ": USER_TOKEN_TYPE, "kid": keys.kid})
        return token, ttl

    async def issue_limited_user_token(self, user_entity_ref: str, expires_at: int) -> str:
        """A limited user token (only ``sub``), valid until ``expires_at`` (epoch seconds): the user cookie."""
        keys = await self._ensure_keys()
        claims = {"sub": user_entity_ref, "iat": int(time.time()), "exp": expires_at}
        return jwt.encode(
            claims, keys.private, algorithm="ES256", headers={"typ": LIMITED_USER_TOKEN_TYPE, "kid": keys.kid}
        )

    async def issue_plugin_token(self, source_plugin: str, target_plugin: str, obo: str | None = None) -> str:
        """Issue a plugin-to-plugin token from ``source_plugin`` to ``target_plugin``."""
        keys = await self._ensure_keys()
        now = int(time.time())
        claims: dict[str, Any] = {
            "sub": source_plugin,
            "aud": target_plugin,
            "iat": now,
            "exp": now + PLUGIN_TOKEN_TTL_SECONDS,
        }
        if obo:
            claims["obo"] = obo
        return jwt.encode(claims, keys.private, algorithm="ES256", headers={"typ": PLUGIN_TOKEN_TYPE, "kid": keys.kid})

    async def verify_jwt(self, token: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """Verify a host-issued JWT; returns ``(header, claims)`` or raises AuthenticationError."""
        cached = self._cache.get(token)
        if cached is not None:
            return cached[1], cached[2]
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as error:
            raise AuthenticationError("Illegal token") from error
        key = await self._verification_key(header.get("kid"))
        if key is None:
            raise AuthenticationError("Illegal token")
        try:
            claims = jwt.decode(
                token, key, algorithms=["ES256"], options={"verify_aud": False, "require": ["exp", "iat", "sub"]}
            )
        except jwt.ExpiredSignatureError as error:
            raise AuthenticationError("Token has expired") from error
        except jwt.PyJWTError as error:
            raise AuthenticationError("Illegal token") from error
        self._cache[token] = (float(claims["exp"]), header, claims)
        return header, claims
