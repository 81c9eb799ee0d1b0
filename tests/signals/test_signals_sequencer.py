"""The Sequencer puts signals from several publishers back in stream order, and fills lost ones from the history."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from host.logging import Logger
from plugin_signals.history import HistoryEntry, Position
from plugin_signals.sequencer import Sequencer


def positioned(seq: int, epoch: str = "e1") -> dict[str, Any]:
    return {"recipients": {"type": "broadcast"}, "channel": "c", "message": {"n": seq}, "position": f"{epoch}-{seq}"}


class FakeHistory:
    """Holds every entry; records the ranges read."""

    def __init__(self) -> None:
        self.reads: list[tuple[int, int]] = []

    async def entries(self, after: int, upto: int) -> list[HistoryEntry]:
        self.reads.append((after, upto))
        return [HistoryEntry(seq, "c", None, {"n": seq}) for seq in range(after + 1, upto + 1)]


def make(history: Any, gap: float = 0.05) -> tuple[Sequencer, list[int]]:
    out: list[int] = []
    seq = Sequencer(lambda s: out.append(s["message"]["n"]), history, Logger(logging.getLogger("tests.signals")), gap)
    seq.reset(Position("e1", 0))
    return seq, out


async def test_overtaking_signals_wait_for_the_earlier_ones() -> None:
    history = FakeHistory()
    sequencer, out = make(history, gap=5)
    for n in (2, 3, 1, 5, 4, 4, 1):  # out of order, with duplicates
        sequencer.push(positioned(n))
    assert out == [1, 2, 3, 4, 5]
    assert history.reads == []
    assert sequencer.watermark == Position("e1", 5)
    await sequencer.stop()


async def test_a_lost_signal_is_read_from_the_history_after_the_gap_timeout() -> None:
    history = FakeHistory()
    sequencer, out = make(history)
    sequencer.push(positioned(1))
    sequencer.push(positioned(4))  # 2 and 3 never arrive
    assert out == [1]
    for _ in range(100):
        if out == [1, 2, 3, 4]:
            break
        await asyncio.sleep(0.01)
    assert out == [1, 2, 3, 4]
    assert history.reads == [(1, 3)]
    sequencer.push(positioned(3))  # arrives late: already delivered
    assert out == [1, 2, 3, 4]


async def test_unpositioned_signals_pass_and_a_new_epoch_restarts() -> None:
    sequencer, out = make(FakeHistory(), gap=5)
    sequencer.push({"recipients": {"type": "broadcast"}, "channel": "c", "message": {"n": 0}})
    sequencer.push(positioned(1))
    sequencer.push(positioned(3))  # held
    sequencer.push(positioned(7, epoch="e2"))  # the store was reset: held ones go first, then the new stream
    sequencer.push(positioned(8, epoch="e2"))
    assert out == [0, 1, 3, 7, 8]
    await sequencer.stop()


def test_history_and_sse_settings_come_from_their_models() -> None:
    from datetime import timedelta

    import pytest

    from host.config import Config, ConfigError
    from plugin_signals.history import HistorySettings
    from plugin_signals.sse import SseSettings

    settings = HistorySettings.from_config(Config({"signals": {"history": {"maxAge": "2m", "maxMessages": 7}}}))
    assert (settings.max_age, settings.max_messages, settings.gap_timeout) == (
        timedelta(minutes=2),
        7,
        timedelta(seconds=1),
    )
    assert SseSettings.from_config(Config({})).heartbeat_interval == timedelta(seconds=15)
    with pytest.raises(ConfigError, match="signals.history.maxMessages"):
        HistorySettings.from_config(Config({"signals": {"history": {"maxMessages": 0}}}))
    with pytest.raises(ConfigError, match="signals.sse.heartbeatInterval"):
        SseSettings.from_config(Config({"signals": {"sse": {"heartbeatInterval": 0}}}))


async def test_batches_continue_the_stream_or_fall_back_to_one_by_one() -> None:
    """A batch that continues the stream is delivered whole; one with a gap, a hole or a repeat waits or is trimmed."""
    history = FakeHistory()
    sequencer, out = make(history, gap=5)
    sequencer.push_many([positioned(n) for n in (1, 2, 3)])
    assert out == [1, 2, 3] and sequencer.watermark == Position("e1", 3)
    sequencer.push_many([positioned(n) for n in (6, 7)])  # 4 and 5 are still on their way
    assert out == [1, 2, 3]
    sequencer.push_many([positioned(n) for n in (3, 4, 5)])  # overlaps what was delivered: 3 is dropped
    assert out == [1, 2, 3, 4, 5, 6, 7]
    sequencer.push_many([positioned(8), positioned(10)])  # a hole inside the batch: 10 waits for 9
    assert out == [1, 2, 3, 4, 5, 6, 7, 8]
    sequencer.push_many([positioned(9)])
    assert out == list(range(1, 11)) and sequencer.watermark == Position("e1", 10)
    assert history.reads == []
    await sequencer.stop()
