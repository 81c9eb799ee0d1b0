"""``notification:send`` in the notifications plugin's actions registry, invoked over HTTP on a real host."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from greenroom_scaffolder_notifications import NotificationSendInput

from host import core_services
from tests.conftest import HostHandle, start_host

ORG = Path(__file__).parents[3] / "examples" / "catalog" / "org.yaml"
ACTIONS = "/api/notifications/.backstage/actions/v1/actions"
ACTION_ID = "notifications:notification:send"


@pytest.fixture
async def host() -> AsyncIterator[HostHandle]:
    async with start_host(config={"catalog": {"locations": [{"type": "file", "target": str(ORG)}]}}) as handle:
        yield handle


async def invoke(host: HostHandle, body: dict[str, Any]) -> httpx.Response:
    return await host.client.post(f"{ACTIONS}/{ACTION_ID}/invoke", json=body, headers=host.service_headers)


async def inbox(host: HostHandle, user: str) -> list[dict[str, Any]]:
    response = await host.client.get(
        "/api/notifications/notifications", headers=await host.user_headers(f"user:default/{user}")
    )
    assert response.status_code == 200, response.text
    return list(response.json()["notifications"])


async def test_action_is_listed_with_the_spec_schema(host: HostHandle) -> None:
    listing = await host.client.get(ACTIONS, headers=host.service_headers)
    assert listing.status_code == 200
    [action] = [a for a in listing.json()["actions"] if a["name"] == "notification:send"]
    assert action["id"] == ACTION_ID and action["pluginId"] == "notifications"
    assert action["description"] == "Sends a notification using NotificationService"
    assert action["attributes"] == {"destructive": False, "idempotent": False, "readOnly": False}
    schema = action["schema"]["input"]
    assert sorted(schema["required"]) == ["recipients", "title"]
    assert set(schema["properties"]) == {
        "recipients",
        "entityRefs",
        "title",
        "info",
        "link",
        "severity",
        "scope",
        "topic",
        "optional",
        "idempotencyKey",
    }
    assert schema["properties"]["recipients"]["enum"] == ["broadcast", "entity"]


async def test_entity_notification_carries_every_field(host: HostHandle) -> None:
    response = await invoke(
        host,
        {
            "recipients": "entity",
            "entityRefs": ["group:default/team-b"],
            "title": "Deployed",
            "info": "v2 is out",
            "link": "/catalog/default/component/api",
            "severity": "high",
            "scope": "deploy-42",
            "topic": "deployments",
        },
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"output": {}}
    [received] = await inbox(host, "carol")
    assert received["origin"] == "plugin:notifications"
    assert {key: value for key, value in received["payload"].items() if value is not None} == {
        "title": "Deployed",
        "description": "v2 is out",
        "link": "/catalog/default/component/api",
        "severity": "high",
        "scope": "deploy-42",
        "topic": "deployments",
    }
    assert await inbox(host, "alice") == []  # team-a is not a recipient


async def test_broadcast(host: HostHandle) -> None:
    assert (await invoke(host, {"recipients": "broadcast", "title": "Hello all"})).status_code == 200
    [received] = await inbox(host, "alice")
    assert received["user"] is None and received["payload"]["title"] == "Hello all"


async def test_entity_without_refs_fails_unless_optional(host: HostHandle) -> None:
    response = await invoke(host, {"recipients": "entity", "title": "No one"})
    assert response.status_code == 400
    assert response.json()["error"] == {"name": "InputError", "message": "Entity references must be provided"}
    optional = await invoke(host, {"recipients": "entity", "title": "No one", "optional": True})
    assert optional.status_code == 200
    assert await inbox(host, "alice") == []


async def test_send_failures_are_reraised_unless_optional(host: HostHandle) -> None:
    body = {"recipients": "broadcast", "title": "Bad link", "link": "javascript:alert(1)"}
    response = await invoke(host, body)
    assert response.status_code == 400
    assert response.json()["error"]["message"].startswith("Invalid link provided")
    assert (await invoke(host, {**body, "optional": True})).status_code == 200
    assert await inbox(host, "alice") == []


async def test_invalid_input_and_anonymous_callers(host: HostHandle) -> None:
    bad = await invoke(host, {"recipients": "group", "title": "x"})
    assert bad.status_code == 400
    assert bad.json()["error"]["message"].startswith(f'Invalid input to action "{ACTION_ID}": recipients')
    anonymous = await host.client.post(f"{ACTIONS}/{ACTION_ID}/invoke", json={"recipients": "broadcast", "title": "x"})
    assert anonymous.status_code == 403


def test_input_model_uses_the_wire_names() -> None:
    parsed = NotificationSendInput.model_validate(
        {"recipients": "entity", "entityRefs": ["user:default/a"], "title": "t"}
    )
    assert parsed.entity_refs == ["user:default/a"] and parsed.severity is None and parsed.optional is None


async def test_user_tokens_may_not_send_but_plugin_tokens_may(host: HostHandle) -> None:
    """Sending needs a service principal: the guest's user token gets 403 and nothing is stored."""
    guest = (await host.client.post("/api/auth/guest/refresh")).json()["backstageIdentity"]["token"]
    for recipients in ({"recipients": "broadcast"}, {"recipients": "entity", "entityRefs": ["user:default/alice"]}):
        denied = await host.client.post(
            f"{ACTIONS}/{ACTION_ID}/invoke",
            json={**recipients, "title": "Phish"},
            headers={"Authorization": f"Bearer {guest}"},
        )
        assert denied.status_code == 403, denied.text
        assert denied.json() == {
            "error": {
                "name": "NotAllowedError",
                "message": f"Action \"{ACTION_ID}\" does not allow 'user' credentials",
            },
            "request": {"method": "POST", "url": f"/.backstage/actions/v1/actions/{ACTION_ID}/invoke"},
            "response": {"statusCode": 403},
        }
    assert await inbox(host, "alice") == [] and await inbox(host, "guest") == []

    tokens = await host.backend.get_service(core_services.root_auth)
    plugin_token = await tokens.issue_plugin_token("scaffolder", "notifications")
    sent = await host.client.post(
        f"{ACTIONS}/{ACTION_ID}/invoke",
        headers={"Authorization": f"Bearer {plugin_token}"},
        json={"recipients": "entity", "entityRefs": ["user:default/alice"], "title": "Hi"},
    )
    assert sent.status_code == 200, sent.text
    assert [n["payload"]["title"] for n in await inbox(host, "alice")] == ["Hi"]
