"""Live delivery in sequence order: signals from all processes reach this process's sockets in stream order.

Every positioned signal has a consecutive sequence number (see
:mod:`plugin_signals.history`), but signals published by different workers
cross the events bus independently, so one may overtake another. The
:class:`Sequencer` of each process delivers them in order: a signal that
arrives early waits until the missing ones arrive, at most ``gap_timeout``;
then the missing ones are read from the history (they are there: the
publisher stored them before sending) and the wait ends. A signal lost by the
bus (a listener reconnecting) is therefore still delivered, late. Sockets
thus see positions only increase, which is what makes "the last position I
saw" a safe place to resume from.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from host import cancel_and_wait
from plugin_signals.history import Position, SignalHistory, parse_position

if TYPE_CHECKING:
    from host import Logger

#: Signals held while waiting for a gap; beyond this the gap is filled at once.
MAX_PENDING = 1000


class Sequencer:
    """Orders positioned signals before handing them to ``deliver`` (unpositioned ones pass straight through)."""

    def __init__(
        self,
        deliver: Callable[[dict[str, Any]], Any],
        history: SignalHistory | None,
        logger: Logger,
        gap_timeout: float,
        deliver_many: Callable[[Sequence[Any]], Any] | None = None,
    ) -> None:
        self._deliver = deliver
        self._deliver_many = deliver_many or (lambda signals: [deliver(signal) for signal in signals])
        self._history = history
        self._logger = logger
        self._gap_timeout = gap_timeout
        self.epoch: str | None = None
        #: The last sequence number delivered: every earlier one was delivered or is gone.
        self.last = 0
        self._pending: dict[int, dict[str, Any]] = {}
        self._filler: asyncio.Task[None] | None = None

    @property
    def watermark(self) -> Position | None:
        """Everything up to this position has been handed to the sockets of this process."""
        return None if self.epoch is None else Position(self.epoch, self.last)

    def reset(self, head: Position) -> None:
        """Start after ``head`` (at startup: earlier signals went to sockets that no longer exist)."""
        self.epoch, self.last = head.epoch, head.seq

    def push(self, signal: Any) -> None:
        """Deliver ``signal`` now, hold it for an earlier one, or drop it when already delivered."""
        position = parse_position(signal.get("position")) if isinstance(signal, dict) else None
        if position is None:
            self._deliver(signal)
            return
        if position.epoch != self.epoch:
            self._release_all()
            self.epoch, self.last = position.epoch, position.seq - 1
        if position.seq <= self.last or position.seq in self._pending:
            return  # delivered already (a gap filled from the history, or a duplicate)
        if position.seq == self.last + 1:
            self._deliver(signal)
            self.last = position.seq
            self._drain()
            return
        self._pending[position.seq] = signal
        if self._filler is None:
            delay = 0.0 if len(self._pending) >= MAX_PENDING else self._gap_timeout
            self._filler = asyncio.get_running_loop().create_task(self._fill(delay), name="signals-gap-fill")

    def push_many(self, signals: Sequence[Any]) -> None:
        """:meth:`push` each of ``signals`` in order; a run that continues the stream is delivered at once."""
        if self._continues(signals):
            self._deliver_many(signals)
            self.last += len(signals)
            self._drain()
            return
        for signal in signals:
            self.push(signal)

    def _continues(self, signals: Sequence[Any]) -> bool:
        """Whether ``signals`` hold exactly the positions after :attr:`last` in this epoch, in order."""
        if not signals or self._pending or not isinstance(signals[0], dict):
            return False
        position = parse_position(signals[0].get("position"))
        if position is None or position.epoch != self.epoch or position.seq != self.last + 1:
            return False
        prefix = f"{position.epoch}-"
        seq = position.seq
        for signal in signals:
            if not isinstance(signal, dict) or signal.get("position") != f"{prefix}{seq}":
                return False
            seq += 1
        return True

    async def stop(self) -> None:
        """Stop waiting for gaps (held signals are delivered in order)."""
        filler, self._filler = self._filler, None
        await cancel_and_wait(filler)
        self._release_all()

    def _drain(self) -> None:
        while self.last + 1 in self._pending:
            self.last += 1
            self._deliver(self._pending.pop(self.last))
        if not self._pending and self._filler is not None:
            self._filler.cancel()
            self._filler = None

    def _release_all(self) -> None:
        for seq in sorted(self._pending):
            self._deliver(self._pending.pop(seq))
            self.last = seq

    async def _fill(self, delay: float) -> None:
        """After ``delay``, read the missing signals from the history and deliver up to the first held one."""
        await asyncio.sleep(delay)
        if not self._pending or self.epoch is None:
            self._filler = None
            return
        epoch, target = self.epoch, min(self._pending) - 1
        entries = []
        if self._history is not None:
            try:
                entries = await self._history.entries(self.last, target)
            except Exception as error:
                self._logger.warning(
                    "Failed to read signals %s..%s from the history", self.last + 1, target, exc_info=error
                )
        self._filler = None
        if epoch != self.epoch:
            return
        for entry in entries:
            if entry.seq > self.last:
                self._deliver(entry.signal(epoch))
                self.last = entry.seq
        self.last = max(self.last, target)
        self._drain()
        if self._pending and self._filler is None:
            self._filler = asyncio.get_running_loop().create_task(
                self._fill(self._gap_timeout), name="signals-gap-fill"
            )
