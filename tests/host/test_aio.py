"""``host.await_me_maybe`` and ``host.cancel_and_wait``, the asyncio helpers plugins share."""

from __future__ import annotations

import asyncio

import pytest

from host import await_me_maybe, cancel_and_wait


async def test_await_me_maybe_takes_values_and_awaitables() -> None:
    async def answer() -> int:
        return 42

    assert await await_me_maybe(answer()) == 42
    assert await await_me_maybe(7) == 7
    assert await await_me_maybe(None) is None


async def test_cancel_and_wait_stops_every_task_and_keeps_their_cancellation() -> None:
    stopped: list[str] = []

    async def forever(name: str) -> None:
        try:
            await asyncio.Event().wait()
        finally:
            stopped.append(name)

    a, b = asyncio.create_task(forever("a")), asyncio.create_task(forever("b"))
    await asyncio.sleep(0)
    await cancel_and_wait(a, None, b)
    assert sorted(stopped) == ["a", "b"] and a.cancelled() and b.cancelled()


async def test_cancel_and_wait_raises_what_a_task_ended_with() -> None:
    async def fails_on_cancel() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            raise RuntimeError("cleanup failed") from None

    task = asyncio.create_task(fails_on_cancel())
    await asyncio.sleep(0)
    with pytest.raises(RuntimeError, match="cleanup failed"):
        await cancel_and_wait(task)


async def test_cancelling_the_caller_is_not_swallowed() -> None:
    release = asyncio.Event()

    async def slow_to_stop() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            await release.wait()

    inner = asyncio.create_task(slow_to_stop())
    await asyncio.sleep(0)
    outer = asyncio.create_task(cancel_and_wait(inner))
    await asyncio.sleep(0)
    outer.cancel()
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await outer
    assert inner.done()
