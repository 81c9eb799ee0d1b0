"""The benchmark scripts run end to end in their quick modes, so they cannot rot (compare, curves, fanout).

They are scripts, not timed tests: these only check that each one starts a
real host, measures every figure and writes its JSON (and PNGs), on tiny sizes
and without the Backstage peer. One file per group of scripts, so parallel
workers share them out.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from host.testing import IN_CI
from tests.bench.scripts import run_script

pytestmark = pytest.mark.postgres


def test_compare_quick_measures_every_figure(tmp_path: Path) -> None:
    import compare

    if compare.bench_js() is None:
        message = "bench.js needs node and its 'ws' module (scripts/install-npm-clients.sh installs it)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    done = run_script(
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
    run_script(
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
    run_script(["bench/fanout.py", "--quick", "--db", "sqlite", "--results", str(tmp_path)])
    [written] = tmp_path.glob("fanout-*.json")
    points = json.loads(written.read_text())["systems"]["sqlite"]
    assert [p["size"] for p in points] == [5, 20]
    assert all(p["answered"] == p["size"] and p["wall_ms"] > 0 and p["worker_peak_rss_mib"] > 0 for p in points)
    assert all(len(p["loadavg"]) == 3 for p in points)
