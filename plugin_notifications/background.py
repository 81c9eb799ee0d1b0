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
            self._logger.error("Background task %s failed", task.get_name(), exc_info=task.exception())

    @property
    def pending(self) -> int:
        """How many tasks are still running."""
        return len(self._tasks)

    async def drain(self, grace: float | None = 30.0) -> None:
        """Wait until every task started so far (and any they start) has finished, at most ``grace`` seconds."""
        loop = asyncio.get_running_loop()
        deadline = None if grace is None else loop.time() + grace
        while self._tasks:
            remaining = None if deadline is None else deadline - loop.time()
            if remaining is not None and remaining <= 0:
                self._logger.warning("%s notification background tasks still running at shutdown", len(self._tasks))
                return
            await asyncio.wait(set(self._tasks), timeout=remaining)
