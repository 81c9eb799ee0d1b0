"""The benchmark scripts run end to end in their quick modes, so they cannot rot.

They are scripts, not timed tests: these only check that each one starts a
real host and measures every figure, printed (read back from its output) or
written as JSON (and PNGs), on tiny sizes and without the Backstage peer.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "bench"))

pytestmark = pytest.mark.postgres


def _run(args: list[str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


NUMBER = r"(-?[\d,]+(?:\.\d+)?)"


def _numbers(pattern: str, text: str) -> list[float]:
    """The numbers that ``pattern``'s groups (``NUMBER``) match in ``text``, which must match it once."""
    [found] = re.findall(pattern, text, re.M)
    return [float(value.replace(",", "")) for value in (found if isinstance(found, tuple) else (found,))]


def test_compare_quick_measures_every_figure(tmp_path: Path) -> None:
    import compare

    if compare.bench_js() is None:
        pytest.skip("bench.js needs node and its 'ws' module (the Backstage peer's node_modules)")
    done = _run(
        ["bench/compare.py", "--quick", "--no-peer", "--rounds", "1", "--workers", "1", "--output", str(tmp_path)]
    )
    [written] = tmp_path.glob("compare-*.json")
    report = json.loads(written.read_text())
    figures = report["rounds"][0]["figures"]["greenroom-w1"]
    assert set(figures) == set(compare.FIGURES)
    assert all(value is not None and value > 0 for value in figures.values()), figures
    assert report["rounds"][0]["raw"]["greenroom-w1"]["memory"]["idle"]["processes"] == 2  # master + worker
    assert "| POST sequential, req/s |" in done.stdout


def test_curves_quick_draws_every_curve(tmp_path: Path) -> None:
    pictures, results = tmp_path / "png", tmp_path / "json"
    _run(
        [
            "bench/curves.py",
            "--quick",
            "--no-peer",
            "--db",
            "sqlite",
            "--output",
            str(pictures),
            "--results",
            str(results),
        ]
    )
    assert sorted(p.name for p in pictures.glob("*.png")) == ["curve-fanout.png", "curve-list.png", "curve-sockets.png"]
    [written] = results.glob("curves-*.json")
    systems = json.loads(written.read_text())["systems"]
    for db in ("sqlite",):  # PostgreSQL is the same code but seeding; compare.py covers it
        curves = systems[f"greenroom-{db}"]
        assert [p["size"] for p in curves["fanout"]] == [5, 20]
        assert all(p["ms"] > 0 and p["peak_pss_mib"] > 0 for p in curves["fanout"])
        assert [p["rows"] for p in curves["list"]] == [50, 200]
        assert all(p["list_p99_ms"] > 0 and p["status_p99_ms"] > 0 for p in curves["list"])
        assert [p["sockets"] for p in curves["sockets"]] == [5, 20]
        assert all(p["frame_p99_ms"] > 0 and p["pss_mib"] > 0 for p in curves["sockets"])


def test_fanout_quick_measures_time_cpu_and_memory(tmp_path: Path) -> None:
    _run(["bench/fanout.py", "--quick", "--db", "sqlite", "--results", str(tmp_path)])
    [written] = tmp_path.glob("fanout-*.json")
    points = json.loads(written.read_text())["systems"]["sqlite"]
    assert [p["size"] for p in points] == [5, 20]
    assert all(p["answered"] == p["size"] and p["wall_ms"] > 0 and p["worker_peak_rss_mib"] > 0 for p in points)
    assert all(len(p["loadavg"]) == 3 for p in points)


def test_delivery_measures_every_configuration_and_both_dispatchers() -> None:
    users, rounds, hooks = 30, 1, 5
    out = _run(
        [
            "bench/delivery.py",
            "--users",
            str(users),
            "--rounds",
            str(rounds),
            "--webhook-sends",
            str(hooks),
            "--configs",
            "off,written,worker,process",
        ],
        timeout=300,  # four hosts and a dispatcher process: ~30 s alone, 70 s at load 6 on 2 CPUs
    ).stdout
    labels = [
        "off",
        "email+webhooks, no dispatcher",
        "email+webhooks on",
        "email+webhooks on, dispatcher process (nice)",
    ]
    for label in labels:
        low, median, high = _numbers(
            rf"^POST to a {users}-user group, {re.escape(label)}\s+\({rounds} rounds\)\s+min\s+{NUMBER} ms"
            rf"\s+median\s+{NUMBER} ms\s+max\s+{NUMBER} ms$",
            out,
        )
        assert 0 < low <= median <= high, label
    for label in labels[1:]:
        ratios = _numbers(
            rf"^send latency ratio, {re.escape(label)} / off\s+\(medians\)\s+{NUMBER}\s+.*\)\s+{NUMBER}$", out
        )
        assert all(ratio > 0 for ratio in ratios), label
    emails = users * (rounds + 1)  # the warm-up send too
    after, rate, counter, _ = _numbers(
        rf"^dispatcher: {emails} emails over SMTP; {NUMBER} arrived after the last send in [\d.]+ s = {NUMBER} "
        rf"deliveries/s \(outbox 'sent' counter at {NUMBER} after {NUMBER} s\)$",
        out,
    )
    assert 0 <= after <= emails and rate >= 0 and counter == emails
    [drained] = _numbers(
        rf"^the dispatcher process: all {emails} emails and {2 * (rounds + 1)} webhooks delivered {NUMBER} s after", out
    )
    assert drained >= 0
    [webhook_rate] = _numbers(
        rf"^dispatcher: {2 * hooks} signed webhooks \({hooks} sends x 2 endpoints, .* = {NUMBER} deliveries/s;", out
    )
    assert webhook_rate > 0


def test_delivery_noop_and_smtp_measure_the_outbox_and_the_transport_alone() -> None:
    out = _run(["bench/delivery.py", "--noop", "--users", "30"]).stdout
    sent, done, rate = _numbers(
        rf"^outbox alone: 5 sends to 30 users in {NUMBER} s; all 150 deliveries done after {NUMBER} s = {NUMBER} "
        "deliveries/s",
        out,
    )
    assert 0 < sent <= done and rate > 0
    out = _run(["bench/delivery.py", "--smtp", "20"]).stdout
    for label in ("one connection per message", "pooled connections (maxMessages 100)"):
        seconds, rate = _numbers(
            rf"^SMTP transport, {re.escape(label)}\s+20 emails, 32 in flight:\s+{NUMBER} s =\s+{NUMBER} emails/s$", out
        )
        assert seconds > 0 and rate > 0, label
    [opened] = _numbers(rf"^  \(pooled: {NUMBER} connections opened\)$", out)
    assert 1 <= opened <= 20


def test_signals_quick_measures_latency_per_socket_count_and_memory() -> None:
    out = _run(["bench/signals.py", "--quick", "--bus", "postgres"]).stdout
    assert "signals benchmark: bus=postgres workers=1 rounds=5 history=on" in out
    for sockets in (1, 5):
        probe_p50, probe_p99, all_p50, all_p99 = _numbers(rf"^\s+{sockets}" + rf"\s+{NUMBER}" * 4 + "$", out)
        assert 0 < probe_p50 <= probe_p99 and 0 < all_p50 <= all_p99 and probe_p50 <= all_p50, sockets
    before, after, _per_socket = _numbers(
        rf"^memory: worker RSS {NUMBER} MiB with no sockets, {NUMBER} MiB with 20 idle sockets: {NUMBER} KiB "
        "per socket$",
        out,
    )
    assert before > 10 and after > 10


def test_notifications_quick_measures_posts_group_list_and_status() -> None:
    out = _run(["bench/notifications.py", "--quick"]).stdout
    rates = [
        "POST to one user, sequential (20)",
        "POST to one user, concurrency 16 (20)",
        "GET limit=20 holding 80, sequential",  # 3 x 20 POSTs, topped up to 80
        "GET limit=20 holding 80, concurrency 16",
        "GET /status holding 80, sequential",
        "GET /status holding 80, concurrency 16",
    ]
    for label in rates:
        rate, p50, p99 = _numbers(
            rf"^{re.escape(label)}\s+{NUMBER} req/s\s+p50\s+{NUMBER} ms\s+p99\s+{NUMBER} ms$", out
        )
        assert rate > 0 and 0 < p50 <= p99, label
    low, median, high = _numbers(
        rf"^POST to a 5-user group \(2 rounds\)\s+min\s+{NUMBER} ms\s+median\s+{NUMBER} ms\s+max\s+{NUMBER} ms$", out
    )
    assert 0 < low <= median <= high
