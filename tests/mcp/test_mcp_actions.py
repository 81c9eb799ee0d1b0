"""MCP actions over Streamable HTTP, driven by the ``mcp`` SDK's own client against a real host."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx2
import pytest
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from pydantic import BaseModel

from host import core_services, create_backend_plugin
from tests.conftest import HostHandle, start_host

PLUGINS = ["auth", "catalog", "signals", "notifications", "mcp-actions"]


@contextlib.asynccontextmanager
async def mcp_session(host: HostHandle, token: str) -> AsyncIterator[ClientSession]:
    """An initialised MCP client session to the host's ``/api/mcp-actions/v1`` as ``token``."""
    async with (
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30) as http,
        streamable_http_client(f"{host.url}/api/mcp-actions/v1", http_client=http) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        yield session


class EchoInput(BaseModel):
    text: str


def echo_plugin(plugin_id: str) -> Any:
    """A plugin with a ``get-notifications`` action of its own (a name the notifications plugin uses too)."""

    def register(reg: Any) -> None:
        def init(actions: Any) -> None:
            actions.register(
                name="get-notifications",
                title="Echo",
                description="Echoes the caller",
                input_model=EchoInput,
                allow=("user", "service"),
                action=lambda input, credentials: {"echo": input.text, "caller": credentials.principal.display},
            )

        reg.register_init(deps={"actions": core_services.actions_registry}, init=init)

    return create_backend_plugin(plugin_id, register)


def text_of(result: Any) -> str:
    return " ".join(getattr(block, "text", "") for block in result.content)


@pytest.mark.parametrize("db", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def test_tools_are_listed_and_each_one_is_called_with_its_policy(db: str) -> None:
    async with start_host(db, plugins=PLUGINS) as host:
        jane = await host.user_token("user:default/jane")
        john = await host.user_token("user:default/john")
        async with mcp_session(host, host.service_token) as service:
            listed = {tool.name: tool for tool in (await service.list_tools()).tools}
            assert {"get-notifications", "mark-notifications-read", "send-notification"} <= set(listed)
            assert listed["get-notifications"].annotations.read_only_hint is True
            assert "view" in listed["get-notifications"].input_schema["properties"]

            sent = await service.call_tool(
                "send-notification",
                {
                    "recipients": {"type": "entity", "entityRef": "user:default/jane"},
                    "payload": {"title": "For Jane only", "severity": "high"},
                },
            )
            assert not sent.is_error, text_of(sent)
            [created] = sent.structured_content["notifications"]
            assert created["user"] == "user:default/jane" and created["origin"] == "test-service"
            other = await service.call_tool(
                "send-notification",
                {
                    "recipients": {"type": "entity", "entityRef": "user:default/john"},
                    "payload": {"title": "For John"},
                },
            )
            assert not other.is_error, text_of(other)

            invalid = await service.call_tool("send-notification", {"recipients": {"type": "broadcast"}, "payload": {}})
            assert invalid.is_error and "InputError" in text_of(invalid)
            as_service = await service.call_tool("get-notifications", {})
            assert as_service.is_error and "NotAllowedError" in text_of(as_service)

        async with mcp_session(host, jane) as user:
            denied = await user.call_tool(
                "send-notification",
                {
                    "recipients": {"type": "broadcast"},
                    "payload": {"title": "Jane to everyone"},
                },
            )
            assert denied.is_error
            assert "NotAllowedError" in text_of(denied) and "'user'" in text_of(denied)

            mine = await user.call_tool("get-notifications", {"view": "all"})
            assert not mine.is_error, text_of(mine)
            assert mine.structured_content["totalCount"] == 1
            assert [n["payload"]["title"] for n in mine.structured_content["notifications"]] == ["For Jane only"]

            marked = await user.call_tool("mark-notifications-read", {"ids": [created["id"]]})
            assert not marked.is_error, text_of(marked)
            assert marked.structured_content["notifications"][0]["read"] is not None
            unread = await user.call_tool("get-notifications", {})
            assert unread.structured_content["totalCount"] == 0
            later = await user.call_tool("get-notifications", {"view": "all", "createdAfter": "2999-01-01T00:00:00"})
            assert later.structured_content["totalCount"] == 0
            bad_date = await user.call_tool("get-notifications", {"createdAfter": "yesterday"})
            assert bad_date.is_error and "createdAfter" in text_of(bad_date)

        async with mcp_session(host, john) as other_user:
            # John cannot read or mark Jane's notification.
            theirs = await other_user.call_tool("get-notifications", {"view": "all"})
            assert [n["payload"]["title"] for n in theirs.structured_content["notifications"]] == ["For John"]
            not_mine = await other_user.call_tool("mark-notifications-read", {"ids": [created["id"]], "read": False})
            assert not_mine.structured_content["notifications"] == []

        # The same actions on the notifications plugin's own actions router.
        rest = await host.client.get("/api/notifications/.backstage/actions/v1/actions", headers=host.service_headers)
        assert {
            "notifications:get-notifications",
            "notifications:send-notification",
            "notifications:mark-notifications-read",
        } <= {a["id"] for a in rest.json()["actions"]}


async def test_send_notification_passes_the_idempotency_key_through() -> None:
    async with start_host(plugins=PLUGINS) as host:
        async with mcp_session(host, host.service_token) as service:
            arguments = {"recipients": {"type": "broadcast"}, "payload": {"title": "Once"}, "idempotencyKey": "k-1"}
            first = await service.call_tool("send-notification", arguments)
            again = await service.call_tool("send-notification", arguments)
            assert not first.is_error and not again.is_error, text_of(first) + text_of(again)
            assert again.structured_content == first.structured_content
            reused = await service.call_tool("send-notification", {**arguments, "payload": {"title": "Other"}})
            assert reused.is_error and "IdempotencyKeyReused" in text_of(reused)
        jane = await host.user_headers("user:default/jane")
        listed = await host.client.get("/api/notifications", headers=jane)
        assert [n["payload"]["title"] for n in listed.json()["notifications"]] == ["Once"]


async def test_the_endpoint_needs_a_valid_token() -> None:
    async with start_host(plugins=PLUGINS) as host:
        body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
        headers = {"Accept": "application/json, text/event-stream"}
        anonymous = await host.client.post("/api/mcp-actions/v1", json=body, headers=headers)
        assert anonymous.status_code == 401
        assert anonymous.json()["error"]["name"] == "AuthenticationError"
        forged = await host.client.post(
            "/api/mcp-actions/v1", json=body, headers={**headers, "Authorization": "Bearer not-a-token"}
        )
        assert forged.status_code == 401
        stream = await host.client.get("/api/mcp-actions/v1", headers=host.service_headers)
        assert stream.status_code == 405 and stream.headers["allow"] == "POST"
        assert stream.json()["error"]["name"] == "MethodNotAllowedError"


async def test_every_plugins_actions_are_tools_and_shared_names_are_prefixed() -> None:
    plugins = [*PLUGINS, "scaffolder-notifications"]
    async with (
        start_host(plugins=plugins, features=[echo_plugin("echo")]) as host,
        mcp_session(host, host.service_token) as service,
    ):
        names = {tool.name for tool in (await service.list_tools()).tools}
        # notification:send (the scaffolder module) with MCP's allowed characters; the shared name prefixed.
        assert {"notification_send", "echo.get-notifications", "notifications.get-notifications"} <= names
        assert "get-notifications" not in names
        echoed = await service.call_tool("echo.get-notifications", {"text": "hi"})
        assert echoed.structured_content == {"echo": "hi", "caller": "test-service"}
        sent = await service.call_tool("notification_send", {"recipients": "broadcast", "title": "Via scaffolder"})
        assert not sent.is_error, text_of(sent)
        unknown = await service.call_tool("nope", {})
        assert unknown.is_error and "not found" in text_of(unknown)
