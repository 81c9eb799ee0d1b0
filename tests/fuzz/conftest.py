"""A test host running in a background thread, for the synchronous fuzzers.

schemathesis and hypothesis's stateful machines call the API synchronously,
so the host cannot share the test's event loop: :class:`BackgroundHost`
runs :func:`tests.conftest.start_host` on a loop of its own thread. The
notifications test catalog (``tests/notifications/fixtures/org.yaml``)
gives the users and groups the fuzzers send to.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

import pytest

from tests.conftest import HostHandle, start_host
from tests.notifications.conftest import notifications_config

T = TypeVar("T")

#: The fuzzers' users (both in ``group:default/team``).
USER_A = "user:default/jane"
USER_B = "user:default/john"


class BackgroundHost:
    """A :func:`start_host` host on an event loop in its own thread."""

    def __init__(self, db: str, config: dict[str, Any]) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fuzz-host", daemon=True)
        self._thread.start()
        self._context = start_host(db, config=config)
        try:
            # a deadline, not a wait: a big catalog on a busy machine (parallel workers) takes a while
            self.handle: HostHandle = self.run(self._context.__aenter__(), timeout=240)
        except BaseException:
            self._stop_loop()
            raise

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 60) -> T:
        """Run ``coro`` on the host's loop and return its result."""
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def bearer(self, user_ref: str) -> str:
        """``Bearer <user token>`` for ``user_ref``."""
        return f"Bearer {self.run(self.handle.user_token(user_ref))}"

    @property
    def service_bearer(self) -> str:
        """``Bearer <static service token>``."""
        return f"Bearer {self.handle.service_token}"

    def close(self) -> None:
        """Stop the host, then the loop and its thread."""
        try:
            self.run(self._context.__aexit__(None, None, None))
        finally:
            self._stop_loop()

    def _stop_loop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def fuzz_host(request: pytest.FixtureRequest) -> Iterator[BackgroundHost]:
    """One host per test module and database, with the notifications test catalog."""
    host = BackgroundHost(str(request.param), notifications_config())
    try:
        yield host
    finally:
        host.close()
