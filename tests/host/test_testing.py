"""``host.testing``, the pytest plugin plugin authors test with."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from host import core_services, create_backend_plugin
from host.testing import HostHandle, eventually, start_host


def ping_plugin() -> Any:
    class Ping:
        async def on_get(self, req: Any, resp: Any) -> None:
            resp.media = {"pong": True}

    def register(reg: Any) -> None:
        def init(router: Any) -> None:
            router.add_route("/ping", Ping())
            router.add_auth_policy("/ping", allow="unauthenticated")

        reg.register_init(deps={"router": core_services.http_router}, init=init)

    return create_backend_plugin("ping", register)


async def test_start_host_runs_only_the_given_features() -> None:
    """Discovery is off by default: the installed notifications plugin is not there."""
    async with start_host(features=[ping_plugin()]) as host:
        assert (await host.client.get("/api/ping/ping")).json() == {"pong": True}
        assert host.backend.plugin_ids == ["ping"]
        assert (await host.client.get("/api/notifications/health")).status_code == 404


async def test_plugins_turn_discovery_on_for_the_named_entry_points() -> None:
    async with start_host(plugins=["auth"], features=[ping_plugin()]) as host:
        assert host.backend.plugin_ids == ["auth", "ping"]


@pytest.mark.greenroom(features=[ping_plugin()], config={"app": {"title": "From the marker"}})
async def test_greenroom_host_fixture_reads_the_marker(greenroom_host: HostHandle) -> None:
    assert (await greenroom_host.client.get("/api/ping/ping")).status_code == 200
    assert greenroom_host.config["app"]["title"] == "From the marker"


async def test_eventually_returns_the_first_truthy_result_and_accepts_coroutines() -> None:
    box: list[int] = []
    asyncio.get_running_loop().call_later(0.05, box.append, 7)
    assert await eventually(lambda: box) == [7]

    async def check() -> str:
        return "done"

    assert await eventually(check) == "done"
    with pytest.raises(AssertionError, match="not met within 0.1 s"):
        await eventually(lambda: False, timeout=0.1)


async def test_a_host_that_fails_to_start_fails_as_an_error_not_an_exit() -> None:
    """uvicorn ends a failed startup with ``sys.exit(3)``; ``start_host`` raises an ordinary error instead.

    A ``SystemExit`` would escape the event loop and pytest's setup bookkeeping, and every later test
    in the process would error with "previous item was not torn down properly".
    """

    def register(reg: Any) -> None:
        def init() -> None:
            raise ValueError("broken on purpose")

        reg.register_init(deps={}, init=init)

    with pytest.raises(RuntimeError, match="The test host failed to start"):
        async with start_host(features=[create_backend_plugin("broken", register)]):
            pass  # pragma: no cover - never reached
