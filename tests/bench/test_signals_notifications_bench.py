"""``bench/signals.py`` and ``bench/notifications.py`` run end to end in their quick modes."""

from __future__ import annotations

import re

import pytest

from tests.bench.scripts import NUMBER, numbers, run_script

pytestmark = pytest.mark.postgres


def test_signals_quick_measures_latency_per_socket_count_and_memory() -> None:
    out = run_script(["bench/signals.py", "--quick", "--bus", "postgres"]).stdout
    assert "signals benchmark: bus=postgres workers=1 rounds=5 history=on" in out
    for sockets in (1, 5):
        probe_p50, probe_p99, all_p50, all_p99 = numbers(rf"^\s+{sockets}" + rf"\s+{NUMBER}" * 4 + "$", out)
        assert 0 < probe_p50 <= probe_p99 and 0 < all_p50 <= all_p99 and probe_p50 <= all_p50, sockets
    before, after, _per_socket = numbers(
        rf"^memory: worker RSS {NUMBER} MiB with no sockets, {NUMBER} MiB with 20 idle sockets: {NUMBER} KiB "
        "per socket$",
        out,
    )
    assert before > 10 and after > 10


def test_notifications_quick_measures_posts_group_list_and_status() -> None:
    out = run_script(["bench/notifications.py", "--quick"]).stdout
    rates = [
        "POST to one user, sequential (20)",
        "POST to one user, concurrency 16 (20)",
        "GET limit=20 holding 80, sequential",  # 3 x 20 POSTs, topped up to 80
        "GET limit=20 holding 80, concurrency 16",
        "GET /status holding 80, sequential",
        "GET /status holding 80, concurrency 16",
    ]
    for label in rates:
        rate, p50, p99 = numbers(rf"^{re.escape(label)}\s+{NUMBER} req/s\s+p50\s+{NUMBER} ms\s+p99\s+{NUMBER} ms$", out)
        assert rate > 0 and 0 < p50 <= p99, label
    low, median, high = numbers(
        rf"^POST to a 5-user group \(2 rounds\)\s+min\s+{NUMBER} ms\s+median\s+{NUMBER} ms\s+max\s+{NUMBER} ms$", out
    )
    assert 0 < low <= median <= high
