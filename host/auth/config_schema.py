"""The ``auth`` plugin's config section (``auth``), for ``greenroom config check``."""

from __future__ import annotations

from typing import Literal

from host.config_schema import ConfigSection, Duration, by_kind


class GuestProvider(ConfigSection):
    """``auth.providers.guest``: development sign-in as one user."""

    user_entity_ref: str | None = None
    dangerously_allow_outside_development: bool | None = None


class ProxyProvider(ConfigSection):
    """``auth.providers.proxy``: the user comes from a header set by an authenticating proxy."""

    user_header: str | None = None
    email_header: str | None = None
    secret_header: str | None = None
    secret: str | None = None
    allow_unknown_users: bool | None = None
    dangerously_allow_without_secret: bool | None = None


class AuthProviders(ConfigSection):
    """``auth.providers``: ``false`` turns a provider off."""

    guest: by_kind(object=GuestProvider, boolean=Literal[False]) | None = None  # type: ignore[valid-type]
    proxy: by_kind(object=ProxyProvider, boolean=Literal[False]) | None = None  # type: ignore[valid-type]


class StaticKey(ConfigSection):
    """One ``auth.keyStore.static.keys`` entry (PEM text or a file path)."""

    key_id: str
    algorithm: Literal["ES256"] | None = None
    private_key: str | None = None
    private_key_file: str | None = None
    public_key: str | None = None
    public_key_file: str | None = None


class StaticKeyStore(ConfigSection):
    """``auth.keyStore.static``."""

    keys: list[StaticKey]


class KeyStoreConfig(ConfigSection):
    """``auth.keyStore``: where the signing keys live."""

    provider: Literal["database", "static"] | None = None
    static: StaticKeyStore | None = None
    reload_interval: Duration | None = None
    unknown_key_id_ttl: Duration | None = None


class AuthConfig(ConfigSection):
    """``auth``."""

    environment: Literal["development", "production"] | None = None
    providers: AuthProviders | None = None
    key_store: KeyStoreConfig | None = None
