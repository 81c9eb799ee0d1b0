"""Group fan-out on one worker: wall time, the worker's CPU time and its peak RSS per group size.

Wall times are noisy on a shared 2-core machine; the worker's CPU time
(utime + stime from ``/proc/PID/stat``) is far steadier, so both are reported,
with the load average. CPU is counted twice: up to the response ("request") and
until the worker is idle again ("total": the signals and history written
after the response). The peak RSS is the worker's ``VmHWM`` during the sends of one
size (reset before them, so the catalog's ingestion does not count).

Usage::

    .venv/bin/python bench/fanout.py --groups 1000 10000 100000 --reps 5
    .venv/bin/python bench/fanout.py --groups 10000 --profile /tmp/fanout.txt   # py-spy raw samples too
    .venv/bin/python bench/fanout.py --quick --db sqlite                        # tiny sizes (CI)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare import STATIC_TOKEN, git_commit
from curves import host, send_to_group, wait_for_group, write_catalog

_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` in seconds."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def status_mib(pid: int, key: str) -> float:
    """A ``/proc/PID/status`` memory line (``VmRSS``, ``VmHWM``) in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


async def settle(pid: int, quiet: float = 0.3) -> float:
    """Wait until ``pid`` used no CPU for ``quiet`` seconds; its CPU seconds then."""
    last = cpu_seconds(pid)
    while True:
        await asyncio.sleep(quiet)
        now = cpu_seconds(pid)
        if now - last < 0.02:
            return now
        last = now


def reset_peak(pid: int) -> None:
    """Reset ``pid``'s ``VmHWM`` to its current RSS (Linux ``clear_refs`` 5), where allowed."""
    with contextlib.suppress(OSError):
        Path(f"/proc/{pid}/clear_refs").write_text("5")


async def measure(url: str, worker: int, group: str, reps: int) -> dict[str, Any]:
    """``reps`` POSTs to ``group`` (after one warm-up): medians of wall ms and worker CPU ms, peak RSS."""
    walls, request_cpu, total_cpu, counts = [], [], [], []
    reset_peak(worker)
    async with httpx.AsyncClient(
        base_url=url, timeout=900, headers={"Authorization": f"Bearer {STATIC_TOKEN}"}
    ) as client:
        for index in range(reps + 1):
            before = await settle(worker)
            start = time.perf_counter()
            response = await send_to_group(client, group, f"fan-out {index}")
            wall = (time.perf_counter() - start) * 1000
            answered = cpu_seconds(worker)
            response.raise_for_status()
            after = await settle(worker)
            if index == 0:
                continue  # warm-up: caches, prepared statements
            walls.append(wall)
            request_cpu.append((answered - before) * 1000)
            total_cpu.append((after - before) * 1000)
            counts.append(len(response.json()))
    return {
        "wall_ms": round(statistics.median(walls), 1),
        "wall_ms_all": [round(value, 1) for value in walls],
        "cpu_request_ms": round(statistics.median(request_cpu), 1),
        "cpu_total_ms": round(statistics.median(total_cpu), 1),
        "answered": counts[0] if counts else 0,
        "loadavg": [round(value, 2) for value in os.getloadavg()],
        "worker_rss_mib": status_mib(worker, "VmRSS"),
        "worker_peak_rss_mib": status_mib(worker, "VmHWM"),
    }


async def main(args: argparse.Namespace) -> dict[str, Any]:
    """Every group size on every database; a py-spy profile of the run when asked."""
    results: dict[str, Any] = {"commit": git_commit(), "systems": {}}
    with tempfile.TemporaryDirectory(prefix="fanout-catalog-") as tmp:
        catalog = write_catalog(Path(tmp) / "catalog.yaml", args.groups)
        for db in args.db:
            points = results["systems"][db] = []
            async with host(db, catalog, 1) as (url, running, _where):
                await wait_for_group(url, f"g{max(args.groups)}", args.catalog_timeout)
                worker = running.pids()[1]
                await settle(worker, 1.0)
                idle = status_mib(worker, "VmRSS")
                spy = None
                if args.profile:
                    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
                    command = [py_spy, "record", "-r", "200", "-f", "raw", "-o", args.profile, "--pid", str(worker)]
                    spy = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                    await asyncio.sleep(1)
                try:
                    for size in args.groups:
                        point = {"size": size, "idle_rss_mib": idle, **await measure(url, worker, f"g{size}", args.reps)}
                        points.append(point)
                        print(f"{db} {json.dumps(point)}", flush=True)
                finally:
                    if spy is not None:
                        spy.send_signal(signal.SIGINT)
                        with contextlib.suppress(subprocess.TimeoutExpired):
                            spy.wait(timeout=60)
    return results


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny sizes (CI)")
    parser.add_argument("--db", nargs="+", default=["postgres"], choices=["sqlite", "postgres"])
    parser.add_argument("--groups", type=int, nargs="+", default=[1000, 10_000])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--catalog-timeout", type=float, default=900)
    parser.add_argument("--profile", help="write py-spy raw samples of the worker here")
    parser.add_argument("--results", default=str(Path(__file__).parent / "results"))
    args = parser.parse_args(argv)
    if args.quick:
        args.groups, args.reps, args.catalog_timeout = [5, 20], 1, 60
    return args


if __name__ == "__main__":
    arguments = parse_args()
    outcome = asyncio.run(main(arguments))
    Path(arguments.results).mkdir(parents=True, exist_ok=True)
    target = Path(arguments.results) / f"fanout-{time.strftime('%Y%m%dT%H%M%S')}.json"
    target.write_text(json.dumps(outcome, indent=2))
    print(f"wrote {target}")
