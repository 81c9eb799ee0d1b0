"""The ``auth`` plugin's config section (``auth``), for ``greenroom config check``."""

from __future__ import annotations

from typing import Literal

from host.config_schema import ConfigSection, by_kind


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


class AuthProviders(ConfigSection):
    """``auth.providers``: ``false`` turns a provider off."""

    guest: by_kind(object=GuestProvider, boolean=Literal[False]) | None = None  # type: ignore[valid-type]
    proxy: by_kind(object=ProxyProvider, boolean=Literal[False]) | None = None  # type: ignore[valid-type]


class AuthConfig(ConfigSection):
    """``auth``."""

    providers: AuthProviders | None = None
