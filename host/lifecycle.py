"""Lifecycle services: startup and shutdown hooks, root and per plugin."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from host.aio import await_me_maybe
from host.logging import Logger

Hook = Callable[[], Awaitable[None] | None]


async def _run_hooks(hooks: list[tuple[Hook, Logger]], failure: str) -> list[Exception]:
    """Run every hook concurrently; log and return the failures (a failure never stops the others)."""

    async def run(hook: Hook, logger: Logger) -> Exception | None:
        try:
            await await_me_maybe(hook())
        except Exception as error:
            logger.error("%s (%s), %s", failure, describe(hook), error, exc_info=error)
            return error
        return None

    outcomes = await asyncio.gather(*(run(h, log) for h, log in hooks))
    return [error for error in outcomes if error is not None]


class PluginStartupHookError(Exception):
    """A plugin's startup hook failed, so the plugin failed to start."""

    def __init__(self, plugin_id: str, errors: list[Exception]) -> None:
        causes = "; ".join(f"{type(error).__name__}: {error}" for error in errors)
        super().__init__(f"Startup hook of plugin '{plugin_id}' failed: {causes}")
        self.errors = errors


class RootLifecycle:
    """Root lifecycle: startup, before-shutdown and shutdown phases, each run once."""

    def __init__(self, logger: Logger) -> None:
        self._logger = logger
        self._startup: list[tuple[Hook, Logger]] = []
        self._before_shutdown: list[tuple[Hook, Logger]] = []
        self._shutdown: list[tuple[Hook, Logger]] = []
        self.started = False
        self.shutting_down = False
        self.shut_down = False

    def add_startup_hook(self, hook: Hook, logger: Logger | None = None) -> None:
        """Run ``hook`` once every plugin has started."""
        if self.started:
            raise RuntimeError("Attempted to add startup hook after startup")
        self._startup.append((hook, logger or self._logger))

    def add_before_shutdown_hook(self, hook: Hook, logger: Logger | None = None) -> None:
        """Run ``hook`` when shutdown begins, before plugins stop."""
        if self.shutting_down:
            raise RuntimeError("Attempt to add before shutdown hook after shutdown has started")
        self._before_shutdown.append((hook, logger or self._logger))

    def add_shutdown_hook(self, hook: Hook, logger: Logger | None = None) -> None:
        """Run ``hook`` at the end of shutdown."""
        if self.shut_down:
            raise RuntimeError("Attempted to add shutdown hook after shutdown")
        self._shutdown.append((hook, logger or self._logger))

    async def startup(self) -> None:
        """Run the startup hooks (once)."""
        if self.started:
            return
        self.started = True
        await _run_hooks(self._startup, "Startup hook failed")

    async def before_shutdown(self) -> None:
        """Run the before-shutdown hooks (once)."""
        if self.shutting_down:
            return
        self.shutting_down = True
        await _run_hooks(self._before_shutdown, "Before shutdown hook failed")

    async def shutdown(self) -> None:
        """Run the shutdown hooks (once)."""
        if self.shut_down:
            return
        self.shut_down = True
        await _run_hooks(self._shutdown, "Shutdown hook failed")


class PluginLifecycle:
    """A plugin's lifecycle: its startup hooks run right after it initialises;
    its shutdown hooks run in the plugin-shutdown phase.

    States: starting (``started`` unset) -> up (``started`` set) or failed
    (``started`` set and ``failed``); a failed plugin's routes answer 503.
    """

    def __init__(self, plugin_id: str, logger: Logger) -> None:
        self.plugin_id = plugin_id
        self._logger = logger
        self._startup: list[tuple[Hook, Logger]] = []
        self._shutdown: list[tuple[Hook, Logger]] = []
        self.started = asyncio.Event()
        self.failed = False
        self.stopped = False

    def add_startup_hook(self, hook: Hook, logger: Logger | None = None) -> None:
        """Run ``hook`` once this plugin has initialised."""
        if self.started.is_set():
            raise RuntimeError("Attempted to add startup hook after startup")
        self._startup.append((hook, logger or self._logger))

    def add_shutdown_hook(self, hook: Hook, logger: Logger | None = None) -> None:
        """Run ``hook`` when the backend stops."""
        self._shutdown.append((hook, logger or self._logger))

    async def startup(self) -> None:
        """Run startup hooks and open the plugin's HTTP gate.

        Raises :class:`PluginStartupHookError` if a hook fails: the plugin
        then fails to start (its boot-failure policy decides what follows)
        and the gate stays closed.
        """
        errors = await _run_hooks(self._startup, "Plugin startup hook failed")
        if errors:
            raise PluginStartupHookError(self.plugin_id, errors)
        self.started.set()

    def mark_failed(self) -> None:
        """Record that the plugin failed to start: its routes answer 503 from now on."""
        self.failed = True
        self.started.set()

    async def shutdown(self) -> None:
        """Run shutdown hooks (once)."""
        if self.stopped:
            return
        self.stopped = True
        await _run_hooks(self._shutdown, "Plugin shutdown hook failed")


def describe(obj: Any) -> str:
    """A short name for a hook or feature in log lines."""
    return getattr(obj, "__qualname__", None) or repr(obj)
