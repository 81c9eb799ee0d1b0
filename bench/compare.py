"""Greenroom against the real Backstage peer, side by side, with the same client.

Runs ``bench.js`` (the peer's benchmark client, Node) against a fresh
``greenroom start`` and, when the Backstage peer answers, against the peer,
alternating for ``--rounds`` rounds and for each ``--workers`` count. Both sit
on the same PostgreSQL cluster (the peer's, port 5433; Greenroom in schema mode
with a unique prefix per run, dropped afterwards) and read the same catalog
files (the peer's ``catalog/org.yaml`` and ``catalog/generated-users.yaml``,
``big-group`` with 1,000 users). Before each client run it measures the idle
RSS and PSS of the whole process tree (gunicorn master and workers; the peer's
node process and its children).

It prints every round, the medians per figure and the ratios Greenroom :
Backstage oriented so that above 1 means Greenroom is better, and writes all
of it as JSON to ``bench/results/``.

Usage::

    .venv/bin/python bench/compare.py                       # 3 rounds, 1 and 2 workers
    .venv/bin/python bench/compare.py --rounds 5 --workers 1
    .venv/bin/python bench/compare.py --quick --no-peer     # tiny sizes (CI)

Without the peer's PostgreSQL (``--pg-port``) it falls back to the local
cluster (port 5432, database ``test``); without the peer's catalog it writes an
equivalent one (``--group-size`` users in ``big-group``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _host import free_port, greenroom, pg_config, tree_memory_mib, unique_prefix

REPO = Path(__file__).resolve().parents[1]
PEER_SOURCE = Path("/work/shared/backstage-peer")
PEER_HOME = Path(os.environ.get("BACKSTAGE_PEER_HOME", "/var/tmp/backstage-peer"))
STATIC_TOKEN = "bench-static-token-0123456789abcdef"

# figure -> (label, how to read it from bench.js's JSON, True when higher is better)
FIGURES: dict[str, tuple[str, str, bool]] = {
    "post_seq_rps": ("POST sequential, req/s", "seq.rps", True),
    "post_c16_rps": ("POST concurrency 16, req/s", "conc.rps", True),
    "post_c16_p99_ms": ("POST concurrency 16, p99 ms", "conc.p99", False),
    "group_ms": ("group send (big-group), median ms", "group", False),
    "list_p99_ms": ("list ?limit=20, p99 ms", "get.p99", False),
    "status_p99_ms": ("/status p99 ms", "status.p99", False),
    "frame_p99_ms": ("POST -> WebSocket frame, p99 ms", "signals.p99", False),
    "idle_pss_mib": ("idle PSS of the process tree, MiB", "memory.idle.pss_mib", False),
    "idle_rss_mib": ("idle RSS of the process tree, MiB", "memory.idle.rss_mib", False),
    "after_pss_mib": ("PSS after the run, MiB", "memory.after.pss_mib", False),
}


def port_open(host: str, port: int) -> bool:
    """Whether something accepts TCP connections on ``host:port``."""
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=1):
        return True
    return False


def git_commit() -> str:
    """The checked-out commit (short id) being measured."""
    done = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=Path(__file__).parent
    )
    return done.stdout.strip()


def bench_js() -> tuple[list[str], dict[str, str]] | None:
    """The command that runs bench.js and its environment, or None without node and ``ws``."""
    env = dict(os.environ)
    for script in (PEER_HOME / "bench.js", PEER_SOURCE / "bench.js"):
        if not script.exists():
            continue
        # the peer's modules, else the npm clients' of tests/compat (scripts/install-npm-clients.sh), which pin ws too
        for modules in (PEER_HOME / "node_modules", REPO / "tests" / "compat" / "npm" / "node_modules"):
            if modules.is_dir():
                env["NODE_PATH"] = str(modules)
                break
        probe = subprocess.run(["node", "-e", "require('ws')"], env=env, capture_output=True, cwd=script.parent)
        if probe.returncode == 0:
            return ["node", str(script)], env
    return None


def write_catalog(directory: Path, group_size: int) -> list[Path]:
    """A catalog like the peer's: guest in team-a, and ``big-group`` with ``group_size`` users."""
    org = [
        {
            "apiVersion": "backstage.io/v1alpha1",
            "kind": "Group",
            "metadata": {"name": name},
            "spec": {"type": "team", "children": []},
        }
        for name in ("team-a", "team-b")
    ] + [
        {
            "apiVersion": "backstage.io/v1alpha1",
            "kind": "User",
            "metadata": {"name": name},
            "spec": {"profile": {"displayName": name}, "memberOf": ["team-a"]},
        }
        for name in ("guest", "alice", "bob")
    ]
    users = [
        {
            "apiVersion": "backstage.io/v1alpha1",
            "kind": "Group",
            "metadata": {"name": "big-group"},
            "spec": {"type": "team", "children": []},
        }
    ] + [
        {
            "apiVersion": "backstage.io/v1alpha1",
            "kind": "User",
            "metadata": {"name": f"perf-user-{index:04d}"},
            "spec": {"profile": {"displayName": f"Perf User {index}"}, "memberOf": ["big-group"]},
        }
        for index in range(1, group_size + 1)
    ]
    import yaml

    paths = [directory / "org.yaml", directory / "generated-users.yaml"]
    paths[0].write_text(yaml.safe_dump_all(org))
    paths[1].write_text(yaml.safe_dump_all(users))
    return paths


def parse_out(path: Path) -> dict[str, Any]:
    """The last raw JSON block bench.js appended to ``path``."""
    blocks = re.findall(r"```json\n(.*?)\n```", path.read_text(), re.S)
    if not blocks:
        raise SystemExit(f"bench.js wrote no JSON block to {path}")
    return dict(json.loads(blocks[-1]))


def figures(raw: dict[str, Any]) -> dict[str, float | None]:
    """The compared figures of one client run."""
    out: dict[str, float | None] = {}
    for key, (_, where, _) in FIGURES.items():
        value: Any = raw
        for part in where.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if key == "group_ms":
            value = statistics.median(g["ms"] for g in raw["group"]) if raw.get("group") else None
        out[key] = None if value is None else round(float(value), 2)
    return out


def run_client(
    command: list[str], env: dict[str, str], base: str, extra: list[str], label: str, timeout: float
) -> dict[str, Any]:
    """One bench.js run; its raw JSON."""
    with tempfile.TemporaryDirectory(prefix="compare-") as tmp:
        out = Path(tmp) / "out.md"
        cmd = [
            *command,
            "--base",
            base,
            "--static-token",
            STATIC_TOKEN,
            "--pid",
            "0",
            "--label",
            label,
            "--out",
            str(out),
            *extra,
        ]
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0:
            raise SystemExit(f"bench.js against {base} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
        return parse_out(out)


async def settle_memory(root: int, seconds: float) -> dict[str, float]:
    """The tree's memory once it is idle (after ``seconds``)."""
    await asyncio.sleep(seconds)
    return tree_memory_mib(root)


async def greenroom_round(
    args: argparse.Namespace,
    workers: int,
    catalog: list[Path],
    client: list[str],
    env: dict[str, str],
    sizes: list[str],
    label: str,
) -> dict[str, Any]:
    """Start Greenroom with ``workers`` workers in fresh schemas, run the client, stop it."""
    port = free_port()
    prefix = unique_prefix("cmp")
    config = pg_config(
        port,
        prefix,
        STATIC_TOKEN,
        backend={
            "database": {"connection": args.pg},
            "features": {"include": ["auth", "catalog", "catalog-auth-resolver", "notifications", "signals"]},
        },
        auth={
            "environment": "development",
            "providers": {"guest": {"userEntityRef": "user:default/guest", "dangerouslyAllowOutsideDevelopment": True}},
        },
        catalog={"locations": [{"type": "file", "target": str(path)} for path in catalog]},
    )
    async with greenroom(config, workers, port=port) as host:
        idle = await settle_memory(host.proc.pid, args.settle)
        raw = await asyncio.to_thread(run_client, client, env, host.url, ["--no-truncate", *sizes], label, args.timeout)
        raw["memory"] = {"idle": idle, "after": await settle_memory(host.proc.pid, 1.0)}
    return raw


async def peer_round(
    args: argparse.Namespace, client: list[str], env: dict[str, str], sizes: list[str], label: str
) -> dict[str, Any]:
    """Run the client against the running peer (its notification tables truncated first)."""
    pid = int((PEER_HOME / "run" / "backend.pid").read_text().strip())
    idle = await settle_memory(pid, 0)
    raw = await asyncio.to_thread(
        run_client, client, env, args.peer, ["--truncate-db", args.peer_db, *sizes], label, args.timeout
    )
    raw["memory"] = {"idle": idle, "after": await settle_memory(pid, 1.0)}
    return raw


def ratio(key: str, greenroom_value: float | None, backstage_value: float | None) -> float | None:
    """Greenroom : Backstage, above 1 when Greenroom is better."""
    if not greenroom_value or not backstage_value:
        return None
    higher_better = FIGURES[key][2]
    return round(greenroom_value / backstage_value if higher_better else backstage_value / greenroom_value, 2)


def median_figures(runs: list[dict[str, float | None]]) -> dict[str, float | None]:
    """Per-figure median over rounds."""
    out: dict[str, float | None] = {}
    for key in FIGURES:
        values = [run[key] for run in runs if run.get(key) is not None]
        out[key] = round(statistics.median(values), 2) if values else None  # type: ignore[type-var]
    return out


def print_report(report: dict[str, Any]) -> None:
    """Every round, then medians and ratios."""

    def cell(value: float | None) -> str:
        return "-" if value is None else f"{value:g}"

    systems = list(report["rounds"][0]["figures"]) if report["rounds"] else []
    print(
        f"\ncommit {report['commit']}, {report['cpus']} CPUs, PostgreSQL port {report['pg']['port']}, "
        f"peer {'measured' if report['peer'] else 'absent'}"
    )
    header = (
        "| figure | "
        + " | ".join(f"{system} r{entry['round']}" for entry in report["rounds"] for system in entry["figures"])
        + " |"
    )
    print("\nEvery round:\n" + header)
    print("|" + " --- |" * (1 + len(systems) * len(report["rounds"])))
    for key, (label, _, _) in FIGURES.items():
        row = [cell(entry["figures"][system][key]) for entry in report["rounds"] for system in entry["figures"]]
        print(f"| {label} | " + " | ".join(row) + " |")
    print("\nMedians (ratio = Greenroom : Backstage, >1 means Greenroom is better):")
    columns = list(report["medians"])
    print(
        "| figure | "
        + " | ".join(columns)
        + " | "
        + " | ".join(f"ratio {c}" for c in columns if c != "backstage" and "backstage" in columns)
        + " |"
    )
    ratio_columns = [c for c in columns if c != "backstage" and "backstage" in columns]
    print("|" + " --- |" * (1 + len(columns) + len(ratio_columns)))
    for key, (label, _, _) in FIGURES.items():
        values = [cell(report["medians"][c][key]) for c in columns]
        ratios = [cell(report["ratios"][c][key]) + "x" if report["ratios"][c][key] else "-" for c in ratio_columns]
        print(f"| {label} | " + " | ".join(values + ratios) + " |")


async def main(args: argparse.Namespace) -> dict[str, Any]:
    found = bench_js()
    if found is None:
        raise SystemExit(
            f"bench/compare.py needs node and bench.js with its 'ws' module ({PEER_HOME}/node_modules or {PEER_SOURCE})"
        )
    client, env = found
    if port_open("127.0.0.1", args.pg_port):
        args.pg = {"host": "127.0.0.1", "port": args.pg_port, "user": "postgres", "database": "postgres"}
    else:
        args.pg = {"host": "127.0.0.1", "port": 5432, "user": "postgres", "database": "test"}
    peer = (
        not args.no_peer
        and port_open("127.0.0.1", int(args.peer.rsplit(":", 1)[1].split("/")[0]))
        and (PEER_HOME / "run" / "backend.pid").exists()
    )
    if args.quick:
        sizes = ["--n", "20", "--conc", "4", "--seed", "30", "--gets", "10", "--signals", "5", "--group-reps", "1"]
    else:
        sizes = [
            "--n",
            str(args.n),
            "--seed",
            str(args.seed),
            "--gets",
            str(args.gets),
            "--signals",
            str(args.signals),
            "--group-reps",
            str(args.group_reps),
        ]
    commit = git_commit()
    report: dict[str, Any] = {
        "commit": commit,
        "cpus": os.cpu_count(),
        "pg": args.pg,
        "peer": peer,
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "sizes": sizes,
        "rounds": [],
    }
    with tempfile.TemporaryDirectory(prefix="compare-catalog-") as tmp:
        peer_catalog = [PEER_HOME / "catalog" / "org.yaml", PEER_HOME / "catalog" / "generated-users.yaml"]
        catalog = (
            peer_catalog
            if all(p.exists() for p in peer_catalog) and not args.quick
            else write_catalog(Path(tmp), args.group_size)
        )
        report["catalog"] = [str(p) for p in catalog]
        for index in range(1, args.rounds + 1):
            entry: dict[str, Any] = {"round": index, "figures": {}, "raw": {}}
            # Alternate who goes first, so neither side always runs on a warmer machine.
            order: list[str | int] = [*args.workers, "backstage"] if peer else list(args.workers)
            if peer and index % 2 == 0:
                order = ["backstage", *args.workers]
            for system in order:
                if system == "backstage":
                    raw = await peer_round(args, client, env, sizes, f"backstage round {index}")
                    name = "backstage"
                else:
                    raw = await greenroom_round(
                        args, int(system), catalog, client, env, sizes, f"greenroom w{system} round {index}"
                    )
                    name = f"greenroom-w{system}"
                entry["raw"][name] = raw
                entry["figures"][name] = figures(raw)
                print(f"round {index} {name}: {json.dumps(entry['figures'][name])}", flush=True)
            entry["figures"] = dict(sorted(entry["figures"].items()))
            report["rounds"].append(entry)
    systems = sorted({name for entry in report["rounds"] for name in entry["figures"]})
    report["medians"] = {name: median_figures([e["figures"][name] for e in report["rounds"]]) for name in systems}
    report["ratios"] = {
        name: {key: ratio(key, report["medians"][name][key], report["medians"]["backstage"][key]) for key in FIGURES}
        for name in systems
        if name != "backstage" and "backstage" in systems
    }
    return report


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--quick", action="store_true", help="tiny sizes and a 5-user catalog (CI)")
    parser.add_argument("--no-peer", action="store_true", help="measure Greenroom only")
    parser.add_argument("--peer", default="http://127.0.0.1:7017")
    parser.add_argument("--peer-db", default="backstage_plugin_notifications")
    parser.add_argument("--pg-port", type=int, default=5433, help="the peer's PostgreSQL (falls back to 5432)")
    parser.add_argument("--group-size", type=int, default=1000, help="big-group size when writing a catalog")
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=20000)
    parser.add_argument("--gets", type=int, default=300)
    parser.add_argument("--signals", type=int, default=200)
    parser.add_argument("--group-reps", type=int, default=3)
    parser.add_argument("--settle", type=float, default=3.0, help="seconds idle before measuring memory")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds for one client run")
    parser.add_argument("--output", default=str(Path(__file__).parent / "results"))
    args = parser.parse_args(argv)
    if args.quick:
        args.group_size = min(args.group_size, 5)
        args.settle = min(args.settle, 0.5)
    return args


if __name__ == "__main__":
    arguments = parse_args()
    outcome = asyncio.run(main(arguments))
    print_report(outcome)
    Path(arguments.output).mkdir(parents=True, exist_ok=True)
    target = Path(arguments.output) / f"compare-{time.strftime('%Y%m%dT%H%M%S')}.json"
    target.write_text(json.dumps(outcome, indent=2))
    print(f"\nwrote {target}")
