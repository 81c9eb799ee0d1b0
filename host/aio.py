"""Small asyncio helpers the host and the plugins share.

* :func:`await_me_maybe` - the result of a call that may be sync or async;
* :func:`cancel_and_wait` - stop background tasks and wait until they have finished.

Blocking work (file locks, sync task functions) goes to :func:`asyncio.to_thread`.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable
from typing import Any, TypeVar

T = TypeVar("T")


async def await_me_maybe(value: Awaitable[T] | T) -> T:
    """Await ``value`` if it is awaitable and return the result; return any other value as it is.

    For callbacks that may be plain or ``async`` functions: ``await await_me_maybe(hook())``.
    """
    if inspect.isawaitable(value):
        return await value
    return value


async def cancel_and_wait(*tasks: asyncio.Future[Any] | None) -> None:
    """Cancel every task (``None`` is skipped), then wait until each has finished.

    The tasks' own :class:`asyncio.CancelledError` is swallowed; any other error a task ends
    with is raised. If the caller itself is cancelled while waiting, that cancellation
    propagates, as it should.
    """
    running = [task for task in tasks if task is not None]
    for task in running:
        task.cancel()
    for task in running:
        try:
            await task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise
