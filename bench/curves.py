"""How Greenroom's cost grows: fan-out, list and signal curves, drawn as PNGs.

Three curves, each on SQLite and on PostgreSQL, against a real ``greenroom start``:

* **fan-out**: one ``POST /api/notifications`` to a group of 1k, 10k and 100k
  users (catalog YAML written here), its time and the peak PSS of the host's
  process tree while it runs;
* **list**: ``GET /api/notifications?limit=20`` and ``/status`` p99 for a user
  holding 10k ... 1M rows (seeded with bulk SQL, not through the API);
* **sockets**: POST-to-WebSocket-frame p99 for one socket while 100 ... 10k
  other sockets stay connected (subscribed to another channel), and the PSS of
  the tree per connected socket.

When the Backstage peer answers (``--peer``), its points are measured with the
same client code and drawn on the same axes: its ``big-group`` fan-out, its
list and status after seeding its own notification table with SQL, and its
frame latency with the same socket counts.

Usage::

    .venv/bin/python bench/curves.py                 # full sizes, PNGs in docs/
    .venv/bin/python bench/curves.py --quick --db sqlite --output /tmp/curves   # tiny sizes (CI)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import resource
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _host import PG_CONNECTION, free_port, greenroom, pg_config, tree_memory_mib, unique_prefix
from compare import PEER_HOME, STATIC_TOKEN, git_commit, port_open

REPO = Path(__file__).resolve().parents[1]
PEER_PG = {"host": "127.0.0.1", "port": 5433, "user": "postgres", "database": "backstage_plugin_notifications"}


def p99(values: list[float]) -> float:
    """The 99th percentile (nearest rank)."""
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, max(0, -(-99 * len(ordered) // 100) - 1))], 2)


def raise_open_files(wanted: int) -> int:
    """Raise this process's soft open-files limit towards ``wanted``; the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = max(soft, min(hard, wanted)) if hard != resource.RLIM_INFINITY else max(soft, wanted)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def write_catalog(path: Path, sizes: list[int]) -> Path:
    """Users ``c000000``... and one group ``g<size>`` per size holding the first ``size`` users."""
    biggest = max(sizes)
    with path.open("w") as out:
        out.write("apiVersion: backstage.io/v1alpha1\nkind: User\nmetadata:\n  name: guest\nspec: {}\n")
        for size in sizes:
            out.write(
                f"---\napiVersion: backstage.io/v1alpha1\nkind: Group\nmetadata:\n  name: g{size}\n"
                "spec:\n  type: team\n  children: []\n"
            )
        for index in range(biggest):
            groups = ", ".join(f"g{size}" for size in sizes if index < size)
            out.write(
                f"---\napiVersion: backstage.io/v1alpha1\nkind: User\nmetadata:\n  name: c{index:06d}\n"
                f"spec:\n  memberOf: [{groups}]\n"
            )
    return path


@contextlib.asynccontextmanager
async def host(
    db: str, catalog: Path, workers: int, sockets: int = 0
) -> AsyncIterator[tuple[str, Any, dict[str, Any]]]:
    """A Greenroom host on ``db``; yields its URL, the running host and where its notifications live.

    With ``sockets``, its limits admit that many sockets of one user (the guest).
    """
    port = free_port()
    prefix = unique_prefix("curve")
    extra: dict[str, Any] = {
        "backend": {"features": {"include": ["auth", "catalog", "notifications", "signals"]}},
        "auth": {
            "environment": "development",
            "providers": {"guest": {"userEntityRef": "user:default/guest", "dangerouslyAllowOutsideDevelopment": True}},
        },
        "catalog": {"locations": [{"type": "file", "target": str(catalog)}]},
    }
    if sockets:
        # room for every socket and the client's HTTP connections (the default cap is 1,000 per worker)
        extra["backend"]["limits"] = {"maxConnections": sockets + 100}
        extra["signals"] = {"limits": {"maxSocketsPerUser": sockets + 10}}
    with tempfile.TemporaryDirectory(prefix="curves-data-") as data:
        config = pg_config(port, prefix, STATIC_TOKEN, **extra)
        if db == "sqlite":
            config["backend"]["database"] = {"client": "sqlite", "connection": {"directory": data}}
            config["events"] = {"bus": "inprocess"}  # one worker: curves.py runs SQLite with --workers 1
        async with greenroom(config, workers, port=port) as running:
            yield running.url, running, {"db": db, "prefix": prefix, "directory": data}


async def wait_for_group(url: str, group: str, within: float) -> None:
    """Until the catalog has ingested ``group``."""
    deadline = time.monotonic() + within
    async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {STATIC_TOKEN}"}) as client:
        while time.monotonic() < deadline:
            response = await client.get(f"/api/catalog/entities/by-name/group/default/{group}")
            if response.status_code == 200:
                return
            await asyncio.sleep(0.5)
    raise SystemExit(f"the catalog did not load {group} within {within:.0f} s")


class PeakMemory:
    """Samples the PSS of a process tree in a thread; ``peak`` after ``stop``."""

    def __init__(self, root: int) -> None:
        self.root, self.peak, self._stop = root, 0.0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, tree_memory_mib(self.root)["pss_mib"])
            self._stop.wait(0.05)

    def stop(self) -> float:
        """Stop sampling; the peak PSS in MiB."""
        self._stop.set()
        self._thread.join()
        return self.peak


async def send_to_group(client: httpx.AsyncClient, group: str, title: str) -> httpx.Response:
    """One ``POST /api/notifications`` to ``group:default/<group>``."""
    return await client.post(
        "/api/notifications",
        json={
            "recipients": {"type": "entity", "entityRef": f"group:default/{group}"},
            "payload": {"title": title, "severity": "normal"},
        },
    )


async def time_group_send(url: str, group: str, reps: int, root: int | None) -> dict[str, float]:
    """Median time of ``reps`` POSTs to ``group`` and the peak PSS of the tree meanwhile."""
    timings: list[float] = []
    sampler = PeakMemory(root) if root else None
    async with httpx.AsyncClient(
        base_url=url, timeout=600, headers={"Authorization": f"Bearer {STATIC_TOKEN}"}
    ) as client:
        for index in range(reps):
            start = time.perf_counter()
            response = await send_to_group(client, group, f"curve {index}")
            timings.append((time.perf_counter() - start) * 1000)
            response.raise_for_status()
    result = {"ms": round(statistics.median(timings), 1)}
    if sampler:
        result["peak_pss_mib"] = sampler.stop()
    return result


async def guest_token(url: str) -> str:
    """A user token for ``user:default/guest``."""
    async with httpx.AsyncClient(base_url=url) as client:
        response = await client.post("/api/auth/guest/refresh")
        response.raise_for_status()
        return str(response.json()["backstageIdentity"]["token"])


async def seed_greenroom(where: dict[str, Any], user: str, total: int) -> None:
    """Bring ``user``'s notifications to ``total`` rows with one bulk INSERT."""
    if where["db"] == "sqlite":

        def insert() -> None:
            conn = sqlite3.connect(Path(where["directory"]) / "notifications.sqlite")
            have = conn.execute('SELECT count(*) FROM notification WHERE "user" = ?', (user,)).fetchone()[0]
            conn.execute(
                "WITH RECURSIVE g(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM g WHERE i < ?) "
                'INSERT INTO notification (id, "user", title, severity, origin, created) '
                "SELECT lower(hex(randomblob(16))), ?, 'curve ' || i, 'normal', 'bench', "
                "datetime('now', '-' || i || ' seconds') FROM g",
                (total - have, user),
            )
            conn.commit()
            conn.execute("ANALYZE")
            conn.close()

        await asyncio.to_thread(insert)
        return
    await seed_pg(PG_CONNECTION, f"{where['prefix']}notifications", user, total)


async def seed_pg(connection: dict[str, Any], schema: str | None, user: str, total: int) -> None:
    """Bring ``user`` to ``total`` rows of ``notification`` (in ``schema``) with one bulk INSERT.

    Greenroom's table and the Backstage peer's share these columns.
    """
    import asyncpg

    conn = await asyncpg.connect(**connection)
    try:
        if schema:
            await conn.execute(f'SET search_path TO "{schema}"')
        have = await conn.fetchval('SELECT count(*) FROM notification WHERE "user" = $1', user)
        await conn.execute(
            'INSERT INTO notification (id, "user", title, severity, origin, created) '
            "SELECT gen_random_uuid(), $1, 'curve ' || g, 'normal', 'bench', now() - g * interval '1 second' "
            "FROM generate_series(1, $2) g",
            user,
            total - have,
        )
        await conn.execute("VACUUM ANALYZE notification")
    finally:
        await conn.close()


async def list_latency(url: str, token: str, gets: int) -> dict[str, float]:
    """p99 of the list (``limit=20``) and of ``/status``, sequential."""
    out: dict[str, float] = {}
    async with httpx.AsyncClient(base_url=url, timeout=60, headers={"Authorization": f"Bearer {token}"}) as client:
        for name, path in (
            ("list_p99_ms", "/api/notifications?limit=20"),
            ("status_p99_ms", "/api/notifications/status"),
        ):
            for _ in range(10):
                (await client.get(path)).raise_for_status()
            timings = []
            for _ in range(gets):
                start = time.perf_counter()
                (await client.get(path)).raise_for_status()
                timings.append((time.perf_counter() - start) * 1000)
            out[name] = p99(timings)
    return out


async def frame_latency(url: str, token: str, sockets: int, rounds: int, root: int | None) -> dict[str, float]:
    """Frame p99 for one socket while ``sockets`` others are connected; PSS per connected socket."""
    import websockets

    ws_url = url.replace("http://", "ws://") + "/api/signals"
    before = tree_memory_mib(root)["pss_mib"] if root else None
    idle = []
    for start in range(0, sockets, 200):
        batch = await asyncio.gather(
            *(
                websockets.connect(ws_url, subprotocols=[token], ping_interval=None, open_timeout=60)
                for _ in range(min(200, sockets - start))
            )
        )
        for ws in batch:
            await ws.send(json.dumps({"action": "subscribe", "channel": "curves-idle"}))
        idle.extend(batch)
    probe = await websockets.connect(ws_url, subprotocols=[token], ping_interval=None)
    await probe.send(json.dumps({"action": "subscribe", "channel": "notifications"}))
    await asyncio.sleep(1.0)
    result: dict[str, float] = {"sockets": sockets}
    if root and before is not None:
        after = tree_memory_mib(root)["pss_mib"]
        result["pss_mib"] = after
        result["kib_per_socket"] = round((after - before) * 1024 / max(1, sockets), 1)
    timings = []
    async with httpx.AsyncClient(
        base_url=url, timeout=30, headers={"Authorization": f"Bearer {STATIC_TOKEN}"}
    ) as client:
        for index in range(rounds):
            start = time.perf_counter()
            response = await client.post(
                "/api/notifications",
                json={
                    "recipients": {"type": "entity", "entityRef": "user:default/guest"},
                    "payload": {"title": f"frame {index}", "severity": "normal"},
                },
            )
            response.raise_for_status()
            wanted = response.json()[0]["id"]
            while True:
                frame = json.loads(await asyncio.wait_for(probe.recv(), 10))
                if frame.get("message", {}).get("notification_id") == wanted:
                    break
            timings.append((time.perf_counter() - start) * 1000)
    result["frame_p99_ms"] = p99(timings)
    await asyncio.gather(*(ws.close() for ws in [*idle, probe]), return_exceptions=True)
    return result


async def measure_greenroom(args: argparse.Namespace, db: str, catalog: Path) -> dict[str, Any]:
    """All three curves on ``db``."""
    out: dict[str, Any] = {"fanout": [], "list": [], "sockets": []}
    async with host(db, catalog, args.workers, max(args.sockets)) as (url, running, where):
        await wait_for_group(url, f"g{max(args.groups)}", args.catalog_timeout)
        root = running.proc.pid
        for size in args.groups:
            point = {"size": size, **await time_group_send(url, f"g{size}", args.reps, root)}
            out["fanout"].append(point)
            print(f"{db} fan-out {point}", flush=True)
        token = await guest_token(url)
        for rows in args.rows:
            await seed_greenroom(where, "user:default/guest", rows)
            point = {"rows": rows, **await list_latency(url, token, args.gets)}
            out["list"].append(point)
            print(f"{db} list {point}", flush=True)
        for sockets in args.sockets:
            point = await frame_latency(url, token, sockets, args.frames, root)
            out["sockets"].append(point)
            print(f"{db} sockets {point}", flush=True)
    return out


async def measure_peer(args: argparse.Namespace) -> dict[str, Any]:
    """The peer's points: its 1k big-group, list/status over seeded rows, frames against sockets."""
    pid_file = PEER_HOME / "run" / "backend.pid"
    root = int(pid_file.read_text().strip()) if pid_file.exists() else None
    out: dict[str, Any] = {"fanout": [], "list": [], "sockets": []}
    out["fanout"].append({"size": 1000, **await time_group_send(args.peer, "big-group", args.reps, root)})
    token = await guest_token(args.peer)
    for rows in args.rows:
        await seed_pg(PEER_PG, None, "user:default/guest", rows)
        out["list"].append({"rows": rows, **await list_latency(args.peer, token, args.gets)})
        print(f"peer list {out['list'][-1]}", flush=True)
    for sockets in args.sockets:
        out["sockets"].append(await frame_latency(args.peer, token, sockets, args.frames, root))
        print(f"peer sockets {out['sockets'][-1]}", flush=True)
    return out


def draw(results: dict[str, Any], directory: Path) -> list[Path]:
    """Three PNGs: fan-out, list p99 and sockets."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    systems = {name: data for name, data in results["systems"].items() if data}
    charts = [
        ("curve-fanout.png", "fanout", "size", [("ms", "POST to a group, ms")], "users in the group"),
        (
            "curve-list.png",
            "list",
            "rows",
            [("list_p99_ms", "list ?limit=20 p99, ms"), ("status_p99_ms", "/status p99, ms")],
            "rows held by the user",
        ),
        (
            "curve-sockets.png",
            "sockets",
            "sockets",
            [("frame_p99_ms", "POST -> frame p99, ms"), ("kib_per_socket", "PSS per socket, KiB")],
            "connected sockets",
        ),
    ]
    written = []
    for filename, curve, x_key, series, x_label in charts:
        figure, axes = plt.subplots(1, len(series), figsize=(5.5 * len(series), 4), squeeze=False)
        for axis, (y_key, y_label) in zip(axes[0], series, strict=True):
            for name, data in systems.items():
                points = [p for p in data.get(curve, []) if p.get(y_key) is not None]
                if points:
                    axis.plot([p[x_key] for p in points], [p[y_key] for p in points], marker="o", label=name)
            axis.set_xscale("log")
            axis.set_xlabel(x_label)
            axis.set_ylabel(y_label)
            axis.grid(True, which="both", alpha=0.3)
            axis.legend()
        figure.suptitle(f"{curve} (commit {results['commit']}, {results['workers']} worker(s))")
        figure.tight_layout()
        path = directory / filename
        figure.savefig(path, dpi=90)
        plt.close(figure)
        written.append(path)
    return written


async def main(args: argparse.Namespace) -> dict[str, Any]:
    raise_open_files(max(args.sockets) * 2 + 256)
    commit = git_commit()
    results: dict[str, Any] = {"commit": commit, "workers": args.workers, "systems": {}}
    with tempfile.TemporaryDirectory(prefix="curves-catalog-") as tmp:
        catalog = write_catalog(Path(tmp) / "catalog.yaml", args.groups)
        if args.workers > 1 and "sqlite" in args.db:
            raise SystemExit("SQLite curves run with one worker (the in-process bus); use --db postgres")
        for db in args.db:
            results["systems"][f"greenroom-{db}"] = await measure_greenroom(args, db, catalog)
    peer_port = int(args.peer.rsplit(":", 1)[1].split("/")[0])
    if not args.no_peer and port_open("127.0.0.1", peer_port) and port_open("127.0.0.1", PEER_PG["port"]):
        results["systems"]["backstage"] = await measure_peer(args)
    return results


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny sizes (CI)")
    parser.add_argument("--db", nargs="+", default=["sqlite", "postgres"], choices=["sqlite", "postgres"])
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--groups", type=int, nargs="+", default=[1000, 10_000, 100_000])
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--sockets", type=int, nargs="+", default=[100, 1000, 10_000])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--gets", type=int, default=200)
    parser.add_argument("--frames", type=int, default=100)
    parser.add_argument("--catalog-timeout", type=float, default=900)
    parser.add_argument("--peer", default="http://127.0.0.1:7017")
    parser.add_argument("--no-peer", action="store_true")
    parser.add_argument("--output", default=str(REPO / "docs"), help="where the PNGs go")
    parser.add_argument("--results", default=str(Path(__file__).parent / "results"))
    args = parser.parse_args(argv)
    if args.quick:
        args.groups, args.rows, args.sockets = [5, 20], [50, 200], [5, 20]
        args.reps, args.gets, args.frames, args.catalog_timeout = 1, 10, 5, 60
    return args


if __name__ == "__main__":
    arguments = parse_args()
    outcome = asyncio.run(main(arguments))
    Path(arguments.output).mkdir(parents=True, exist_ok=True)
    pictures = draw(outcome, Path(arguments.output))
    Path(arguments.results).mkdir(parents=True, exist_ok=True)
    target = Path(arguments.results) / f"curves-{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:4]}.json"
    target.write_text(json.dumps(outcome, indent=2))
    print(json.dumps(outcome, indent=2))
    print("wrote " + ", ".join(str(p) for p in [*pictures, target]))
