"""``host.Provided``: a value plugin X provides once its init has run, failing fast when it cannot come."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from host import Provided, ServiceUnavailableError, create_backend_plugin, create_provided_ref
from tests.host.test_startup import make_backend

greeting_ref = create_provided_ref("test.greeting", plugin_id="provider")


def provider(fail: bool = False, provide: bool = True, delay: float = 0.0) -> Any:
    def register(reg: Any) -> None:
        async def init(slot: Provided[str]) -> None:
            await asyncio.sleep(delay)
            if fail:
                raise RuntimeError("provider broke")
            if provide:
                slot.provide("hello")

        reg.register_init(deps={"slot": greeting_ref}, init=init)

    return create_backend_plugin("provider", register)


def consumer(outcome: dict[str, Any]) -> Any:
    """Asks for the greeting during its own init, timing the answer."""

    def register(reg: Any) -> None:
        async def init(slot: Provided[str]) -> None:
            started = time.monotonic()
            try:
                outcome["value"] = await slot.get()
            except ServiceUnavailableError as error:
                outcome["error"] = str(error)
            outcome["seconds"] = time.monotonic() - started

        reg.register_init(deps={"slot": greeting_ref}, init=init)

    return create_backend_plugin("consumer", register)


async def run(tmp_path: Path, *features: Any) -> dict[str, Any]:
    outcome: dict[str, Any] = {}
    config = {"startup": {"plugins": {"provider": {"onPluginBootFailure": "continue"}}}}
    backend = make_backend(tmp_path, [consumer(outcome), *features], config)
    await asyncio.wait_for(backend.start(), 10)
    await backend.stop()
    return outcome


async def test_consumer_waits_for_the_providers_init(tmp_path: Path) -> None:
    outcome = await run(tmp_path, provider(delay=0.2))
    assert outcome["value"] == "hello"


async def test_fails_fast_when_the_provider_failed(tmp_path: Path) -> None:
    outcome = await run(tmp_path, provider(fail=True, delay=0.1))
    assert outcome["error"] == "The provider plugin failed to start: provider broke"
    assert outcome["seconds"] < 2


async def test_fails_fast_when_the_provider_is_absent(tmp_path: Path) -> None:
    outcome = await run(tmp_path)
    assert outcome["error"] == "The provider plugin is not installed"
    assert outcome["seconds"] < 1


async def test_fails_fast_when_the_provider_started_without_providing(tmp_path: Path) -> None:
    outcome = await run(tmp_path, provider(provide=False, delay=0.1))
    assert outcome["error"] == "The provider plugin started without providing 'test.greeting'"


def test_provide_twice_is_an_error() -> None:
    slot: Provided[str] = Provided("test.x", "provider", instance_metadata=None)
    slot.provide("a")
    with pytest.raises(RuntimeError, match="already provided"):
        slot.provide("b")
