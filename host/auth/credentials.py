"""Principals and credentials: who is calling."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal


@dataclass(frozen=True)
class UserPrincipal:
    """A signed-in user. ``actor`` is set when a service acts on the user's behalf."""

    user_entity_ref: str
    ownership_entity_refs: tuple[str, ...] = ()
    actor: ServicePrincipal | None = None
    type: Literal["user"] = "user"

    @property
    def display(self) -> str:
        """A short human-readable name."""
        return self.user_entity_ref


@dataclass(frozen=True)
class ServicePrincipal:
    """A service: ``plugin:<id>`` for plugins, or the subject of an external token."""

    subject: str
    access_restrictions: tuple[str, ...] | None = None
    type: Literal["service"] = "service"

    @property
    def display(self) -> str:
        """A short human-readable name."""
        return self.subject


@dataclass(frozen=True)
class NonePrincipal:
    """No credentials were presented."""

    type: Literal["none"] = "none"

    @property
    def display(self) -> str:
        """A short human-readable name."""
        return "anonymous"


Principal = UserPrincipal | ServicePrincipal | NonePrincipal


@dataclass(frozen=True)
class Credentials:
    """Proof of who is calling, as produced by the auth service."""

    principal: Principal
    token: str | None = field(default=None, repr=False)
    expires_at: datetime | None = None
    #: From a limited user token (the ``backstage-auth`` cookie): the user's ref, no ownership claims.
    limited: bool = False


@dataclass(frozen=True)
class UserInfo:
    """What the user-info service knows about a user."""

    user_entity_ref: str
    ownership_entity_refs: list[str]
