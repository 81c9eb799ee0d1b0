"""The scheduler: a global task runs on one instance at a time; triggers; local tasks."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from typing import Any

from host import core_services, create_backend_plugin
from host.testing import eventually
from tests.conftest import start_host


def ticking_plugin(runs: list[tuple[str, float, float]], name: str) -> Any:
    def register(reg: Any) -> None:
        async def init(scheduler: Any) -> None:
            async def tick() -> None:
                start = time.monotonic()
                await asyncio.sleep(0.05)
                runs.append((name, start, time.monotonic()))

            await scheduler.schedule_task(
                id="tick", frequency=timedelta(milliseconds=100), timeout=timedelta(seconds=5), fn=tick
            )

        reg.register_init(deps={"scheduler": core_services.scheduler}, init=init)

    return create_backend_plugin("ticker", register)


async def test_global_task_runs_on_one_instance_at_a_time(db_kind: str, tmp_path: Any) -> None:
    runs: list[tuple[str, float, float]] = []
    shared = {"prefix": "gr_sched_", "data_dir": str(tmp_path)}
    async with (
        start_host(db_kind, features=[ticking_plugin(runs, "a")], plugins=["auth"], **shared),
        start_host(db_kind, features=[ticking_plugin(runs, "b")], plugins=["auth"], **shared),
    ):
        await asyncio.sleep(2.0)
    assert len(runs) >= 5
    ordered = sorted(runs, key=lambda r: r[1])
    for previous, current in zip(ordered, ordered[1:], strict=False):
        assert current[1] >= previous[2] - 0.001, f"overlapping runs {previous} {current}"


async def test_trigger_and_local_tasks() -> None:
    calls: list[str] = []
    holder: dict[str, Any] = {}

    def register(reg: Any) -> None:
        async def init(scheduler: Any) -> None:
            holder["scheduler"] = scheduler

            async def manual() -> None:
                calls.append("manual")

            async def local() -> None:
                calls.append("local")

            await scheduler.schedule_task(
                id="manual", frequency={"trigger": "manual"}, timeout=timedelta(seconds=5), fn=manual
            )
            await scheduler.schedule_task(
                id="local", frequency=timedelta(hours=1), timeout=timedelta(seconds=5), fn=local, scope="local"
            )

        reg.register_init(deps={"scheduler": core_services.scheduler}, init=init)

    async with start_host(features=[create_backend_plugin("jobs", register)], plugins=["auth"]):
        await asyncio.sleep(0.5)
        assert calls == ["local"]
        await holder["scheduler"].trigger_task("manual")
        for _ in range(50):
            if "manual" in calls:
                break
            await asyncio.sleep(0.05)
        assert calls.count("manual") == 1


async def test_a_plain_task_function_runs_in_a_thread() -> None:
    """A sync task may block (a file, a sync client): it runs off the event loop's thread."""
    import threading

    ran_on: list[int] = []

    def register(reg: Any) -> None:
        async def init(scheduler: Any) -> None:
            def blocking() -> None:
                ran_on.append(threading.get_ident())

            await scheduler.schedule_task(
                id="sync", frequency=timedelta(hours=1), timeout=timedelta(seconds=5), fn=blocking, scope="local"
            )

        reg.register_init(deps={"scheduler": core_services.scheduler}, init=init)

    async with start_host(features=[create_backend_plugin("sync-jobs", register)], plugins=["auth"]):
        await eventually(lambda: ran_on)
    assert ran_on[0] != threading.get_ident()
