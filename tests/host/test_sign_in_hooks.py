"""The ``auth.signInResolver`` slots are firstresult pluggy hooks (``host.auth.hookspecs``)."""

from __future__ import annotations

from typing import Any

import pytest

from host import create_backend_module, sign_in_resolver_extension_point
from host.auth.hookspecs import auth_hookimpl
from host.auth.plugin import SignInResolverRegistry
from tests.conftest import start_host


class Admins:
    """Goes first; answers only for the admin, so everyone else falls through."""

    @auth_hookimpl(tryfirst=True)
    def auth_resolve_ownership(self, user_entity_ref: str) -> list[str] | None:
        return ["group:default/admins"] if user_entity_ref == "user:default/root" else None


def sign_in_module() -> Any:
    def register(reg: Any) -> None:
        async def everyone(user_ref: str) -> list[str]:
            return [user_ref, "group:default/everyone"]

        def init(sign_in: SignInResolverRegistry) -> None:
            sign_in.set_ownership_resolver(everyone)
            sign_in.add_resolver(Admins())

        reg.register_init(deps={"sign_in": sign_in_resolver_extension_point}, init=init)

    return create_backend_module("auth", "test-sign-in", register)


@pytest.mark.parametrize(
    ("user", "expected"),
    [
        ("user:default/root", ["user:default/root", "group:default/admins"]),
        ("user:default/jane", ["user:default/jane", "group:default/everyone"]),
    ],
)
async def test_first_answer_wins_and_none_falls_through(user: str, expected: list[str]) -> None:
    config = {"auth": {"providers": {"guest": {"userEntityRef": user}}}}
    async with start_host(plugins=["auth"], config=config, features=[sign_in_module()]) as host:
        response = await host.client.get("/api/auth/guest/refresh")
        assert response.status_code == 200, response.text
        assert response.json()["backstageIdentity"]["identity"]["ownershipEntityRefs"] == expected


def test_a_second_setter_and_unknown_hooks_are_refused() -> None:
    registry = SignInResolverRegistry()

    async def lookup(user_ref: str) -> bool:
        return True

    registry.set_user_lookup(lookup)
    with pytest.raises(RuntimeError, match="A user lookup is already set"):
        registry.set_user_lookup(lookup)

    class Typo:
        @auth_hookimpl
        def auth_resolve_ownershp(self, user_entity_ref: str) -> list[str]:
            return []

    with pytest.raises(Exception, match="auth_resolve_ownershp"):
        registry.add_resolver(Typo())
