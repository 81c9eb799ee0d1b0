"""The actions registry over HTTP: list, invoke, auth, 404 and validation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from host import core_services, create_backend_plugin
from tests.conftest import start_host, startup_error


class AddInput(BaseModel):
    a: int
    b: int


class AddOutput(BaseModel):
    sum: int
    caller: str


def math_plugin() -> Any:
    def register(reg: Any) -> None:
        def init(actions: Any) -> None:
            async def add(input: AddInput, credentials: Any) -> dict[str, Any]:
                return {"sum": input.a + input.b, "caller": credentials.principal.display}

            actions.register(
                name="add",
                title="Add",
                description="Adds two numbers",
                input_model=AddInput,
                output_model=AddOutput,
                action=add,
                allow=("user", "service"),
                attributes={"readOnly": True},
            )
            actions.register(
                name="broken",
                title="Broken",
                description="Returns the wrong shape",
                input_model=AddInput,
                output_model=AddOutput,
                action=lambda: {"nope": 1},
                allow=("service",),
            )

        reg.register_init(deps={"actions": core_services.actions_registry}, init=init)

    return create_backend_plugin("math", register)


async def test_list_and_invoke_actions() -> None:
    async with start_host(features=[math_plugin()], plugins=["auth"]) as host:
        base = "/api/math/.backstage/actions/v1/actions"
        listing = await host.client.get(base, headers=host.service_headers)
        assert listing.status_code == 200
        add = next(a for a in listing.json()["actions"] if a["name"] == "add")
        assert add["id"] == "math:add" and add["pluginId"] == "math"
        assert add["attributes"] == {"destructive": True, "idempotent": False, "readOnly": True}
        assert add["schema"]["input"]["required"] == ["a", "b"]

        ok = await host.client.post(f"{base}/math:add/invoke", json={"a": 2, "b": 3}, headers=host.service_headers)
        assert ok.json() == {"output": {"sum": 5, "caller": "test-service"}}
        as_user = await host.client.post(
            f"{base}/math:add/invoke", json={"a": 1, "b": 1}, headers=await host.user_headers("user:default/jane")
        )
        assert as_user.json()["output"]["caller"] == "user:default/jane"

        anonymous = await host.client.post(f"{base}/math:add/invoke", json={"a": 1, "b": 1})
        assert anonymous.status_code == 403
        missing = await host.client.post(f"{base}/math:nope/invoke", json={}, headers=host.service_headers)
        assert missing.status_code == 404
        assert missing.json()["error"]["message"] == 'Action "math:nope" not found'
        bad = await host.client.post(f"{base}/math:add/invoke", json={"a": "x"}, headers=host.service_headers)
        assert bad.status_code == 400
        assert bad.json()["error"]["message"].startswith('Invalid input to action "math:add"')
        assert "b: Field required" in bad.json()["error"]["message"]
        user_on_service_action = await host.client.post(
            f"{base}/math:broken/invoke", json={"a": 1, "b": 2}, headers=await host.user_headers("user:default/jane")
        )
        assert user_on_service_action.status_code == 403
        assert user_on_service_action.json()["error"] == {
            "name": "NotAllowedError",
            "message": "Action \"math:broken\" does not allow 'user' credentials",
        }
        broken = await host.client.post(
            f"{base}/math:broken/invoke", json={"a": 1, "b": 2}, headers=host.service_headers
        )
        assert broken.status_code == 400
        assert 'Invalid output from action "math:broken"' in broken.json()["error"]["message"]


@pytest.mark.parametrize("allow", [None, (), "service", ("service", "none")])
async def test_an_action_without_a_valid_policy_fails_at_registration(allow: Any, tmp_path: Path) -> None:
    """No default policy: an action that does not say who may invoke it stops the plugin from starting."""

    def register(reg: Any) -> None:
        def init(actions: Any) -> None:
            extra = {} if allow is None else {"allow": allow}
            actions.register(
                name="open", title="Open", description="No policy", input_model=AddInput, action=lambda: {}, **extra
            )

        reg.register_init(deps={"actions": core_services.actions_registry}, init=init)

    assert 'Action "open:open"' in await startup_error(tmp_path, features=[create_backend_plugin("open", register)])
