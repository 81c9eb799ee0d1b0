"""Tracked background tasks: work that runs after the response, awaited at shutdown."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any


class BackgroundTasks:
    """Starts fire-and-forget coroutines and remembers them until they finish.

    Failures are logged. :meth:`drain` waits for everything in flight (the
    plugin calls it from a shutdown hook, and tests call it to observe
    post-processing).
    """

    def __init__(self, logger: Any) -> None:
        self._logger = logger
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, coro: Coroutine[Any, Any, Any], *, name: str) -> None:
        """Run ``coro`` in the background."""
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self._logger.error(f"Background task {task.get_name()} failed", exc_info=task.exception())

    @property
    def pending(self) -> int:
        """How many tasks are still running."""
        return len(self._tasks)

    async def drain(self, timeout: float | None = 30.0) -> None:
        """Wait until every task started so far (and any they start) has finished."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while self._tasks:
            remaining = None if deadline is None else deadline - loop.time()
            if remaining is not None and remaining <= 0:
                self._logger.warning(f"{len(self._tasks)} notification background tasks still running at shutdown")
                return
            await asyncio.wait(set(self._tasks), timeout=remaining)
