"""Contracts between plugins (``host.contracts``) and the service factories a plugin brings."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from host import (
    ServiceUnavailableError,
    StartupError,
    UserDirectory,
    create_backend_plugin,
    create_service_factory,
    signals_service_ref,
    user_directory_ref,
)
from host.contracts import SIGNALS_TOPIC
from host.services import core_services
from tests.host.test_startup import make_backend


class FixedDirectory:
    """A user directory that knows one team."""

    def __init__(self, name: str) -> None:
        self.name = name

    async def resolve_users(
        self,
        entity_refs: list[str] | str,
        excluded_entity_refs: list[str] | str | None = None,
        via: dict[str, tuple[str, str]] | None = None,
    ) -> list[str]:
        return ["user:default/alice"] if entity_refs == "group:default/team" else []

    async def get_entity_by_ref(self, ref: str) -> dict[str, Any] | None:
        return None

    async def get_entities_by_refs(
        self, refs: list[str], fields: list[str] | None = None
    ) -> list[dict[str, Any] | None]:
        return [None for _ in refs]

    async def list_users_with_email(self) -> list[tuple[str, str]]:
        return [("user:default/alice", "alice@example.com")]


def directory_plugin(plugin_id: str, name: str) -> Any:
    """A plugin that provides the user directory."""

    def register(reg: Any) -> None:
        reg.register_init(deps={}, init=lambda: None)

    factory = create_service_factory(user_directory_ref, lambda: FixedDirectory(name))
    return create_backend_plugin(plugin_id, register, services=[factory])


def consumer(seen: dict[str, Any]) -> Any:
    """A plugin that uses the user directory and the signals service during its init."""

    def register(reg: Any) -> None:
        async def init(directory: UserDirectory, signals: Any) -> None:
            seen["directory"] = directory
            seen["signals"] = signals

        reg.register_init(deps={"directory": user_directory_ref, "signals": signals_service_ref}, init=init)

    return create_backend_plugin("consumer", register)


async def start(tmp_path: Path, *features: Any) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    backend = make_backend(tmp_path, [consumer(seen), *features])
    await asyncio.wait_for(backend.start(), 10)
    seen["backend"] = backend
    return seen


async def test_a_plugin_provides_the_user_directory_it_brings(tmp_path: Path) -> None:
    seen = await start(tmp_path, directory_plugin("people", "people"))
    try:
        assert seen["directory"].name == "people"
        assert await seen["directory"].resolve_users("group:default/team") == ["user:default/alice"]
    finally:
        await seen["backend"].stop()


async def test_without_a_provider_every_directory_call_fails_at_once(tmp_path: Path) -> None:
    seen = await start(tmp_path)
    try:
        with pytest.raises(ServiceUnavailableError, match=r"No installed plugin provides the user directory"):
            await asyncio.wait_for(seen["directory"].resolve_users("group:default/team"), 1)
        with pytest.raises(ServiceUnavailableError):
            await seen["directory"].list_users_with_email()
    finally:
        await seen["backend"].stop()


async def test_an_explicit_factory_wins_over_the_plugins(tmp_path: Path) -> None:
    explicit = create_service_factory(user_directory_ref, lambda: FixedDirectory("explicit"))
    seen = await start(tmp_path, directory_plugin("people", "people"), explicit)
    try:
        assert seen["directory"].name == "explicit"
    finally:
        await seen["backend"].stop()


async def test_two_plugins_providing_one_service_fail_startup_naming_both(tmp_path: Path) -> None:
    backend = make_backend(tmp_path, [directory_plugin("people", "a"), directory_plugin("staff", "b")])
    with pytest.raises(StartupError, match="provided by both plugin 'people' and plugin 'staff'"):
        await backend.start()
    await backend.stop()


async def test_signals_are_published_as_events_without_the_signals_plugin(tmp_path: Path) -> None:
    seen = await start(tmp_path)
    received: list[Any] = []
    try:
        events = await seen["backend"].get_service(core_services.events, "listener")

        async def on_event(event: Any) -> None:
            received.append(event.payload)

        await events.subscribe("listener", [SIGNALS_TOPIC], on_event)
        recipients = {"type": "user", "entityRef": "user:default/alice"}
        await seen["signals"].publish(recipients=recipients, channel="c", message={"n": 1})
        await seen["signals"].publish_many([{"recipients": {"type": "broadcast"}, "channel": "c", "message": {}}])
        assert received == [
            {"recipients": recipients, "channel": "c", "message": {"n": 1}},
            {"recipients": {"type": "broadcast"}, "channel": "c", "message": {}},
        ]
    finally:
        await seen["backend"].stop()
