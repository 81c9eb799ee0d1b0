"""The notifications plugin's clock: what "now" is for sends, holds and the outbox dispatcher.

Production uses :class:`SystemClock`. Tests install a :class:`ManualClock`
through the ``notifications.processing`` extension point
(``processing.set_clock(clock)``) and move time forward with
:meth:`ManualClock.advance`, which wakes the dispatcher, instead of sleeping
until a digest falls due.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """Anything with ``now()`` answering an aware UTC datetime."""

    def now(self) -> datetime:
        """The current time (timezone-aware, UTC)."""
        ...


class SystemClock:
    """The wall clock."""

    def now(self) -> datetime:
        """``datetime.now(UTC)``."""
        return datetime.now(UTC)


class ManualClock:
    """A clock that only moves when told to (for tests); listeners hear every move."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("ManualClock needs a timezone-aware start")
        self._now = start.astimezone(UTC)
        self._listeners: list[Callable[[], None]] = []

    def now(self) -> datetime:
        """The time last set."""
        return self._now

    def set(self, moment: datetime) -> None:
        """Jump to ``moment`` (aware) and notify the listeners."""
        self._now = moment.astimezone(UTC)
        for listener in list(self._listeners):
            listener()

    def advance(self, delta: timedelta) -> None:
        """Move forward by ``delta`` and notify the listeners."""
        self.set(self._now + delta)

    def subscribe(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` (no arguments) after every move (the dispatcher's ``wake``)."""
        self._listeners.append(listener)
