"""Signals benchmark: POST-to-frame latency and the memory held by idle sockets.

Starts a real ``greenroom start`` (gunicorn + uvicorn workers) with a small
bench plugin whose ``POST /api/signals-bench/publish`` publishes a broadcast
signal through the signals service, connects N WebSockets with the
``websockets`` library, and for each round measures, from just before the
POST is sent:

* ``probe``: until one designated socket has the frame;
* ``all``: until every connected socket has it (the fan-out to N).

It then reports the worker's resident memory before and after opening 1,000
(``--memory-sockets``) idle subscribed sockets. Backstage reference (one
socket): p50 2.4 ms, p99 4-28 ms.

Usage::

    .venv/bin/python bench/signals.py                      # 1, 100, 1000 sockets, SQLite, one worker
    .venv/bin/python bench/signals.py --bus postgres --workers 2
    .venv/bin/python bench/signals.py --bus redis --workers 2 --rounds 300
    .venv/bin/python bench/signals.py --quick --bus postgres   # tiny sizes (CI)

The client runs on the same machine, so its own frame handling competes for
the CPU with the server; the ``all`` figures include that.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a script: make the repository's packages importable
    sys.path.insert(0, str(REPO))
SERVICE_TOKEN = "bench-service-token-0123456789"
PG_CONNECTION = {"host": "127.0.0.1", "port": 5432, "user": "postgres", "database": "test"}
REDIS_URL = "redis://127.0.0.1:6379/0"


# -- the bench plugin (loaded inside the workers through an entry point) ------------------------


def _bench_plugin() -> Any:
    import falcon.asgi

    from host import core_services, create_backend_plugin
    from host import signals_service_ref

    class Publish:
        def __init__(self, http_auth: Any, signals: Any) -> None:
            self._http_auth = http_auth
            self._signals = signals

        async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
            await self._http_auth.credentials(req, allow=("service",))
            body = await req.get_media()
            await self._signals.publish(recipients={"type": "broadcast"}, channel=body["channel"],
                                        message=body["message"])
            resp.media = {"pid": os.getpid()}

    class Pid:
        async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
            resp.media = {"pid": os.getpid()}

    def register(reg: Any) -> None:
        def init(router: Any, http_auth: Any, signals: Any) -> None:
            router.add_route("/publish", Publish(http_auth, signals))
            router.add_route("/pid", Pid())
            router.add_auth_policy("/pid", allow="unauthenticated")

        reg.register_init(deps={"router": core_services.http_router, "http_auth": core_services.http_auth,
                                "signals": signals_service_ref}, init=init)

    return create_backend_plugin("signals-bench", register)


#: The entry point ``bench.signals:bench_plugin`` that the workers load.
bench_plugin = _bench_plugin()


# -- running the host --------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _config(port: int, data_dir: str, bus: str, prefix: str, history: bool, sockets: int) -> dict[str, Any]:
    """The host's config; ``sockets`` is the most sockets the client holds open at once."""
    url = f"http://127.0.0.1:{port}"
    database: dict[str, Any] = {"client": "sqlite", "connection": {"directory": data_dir}}
    events: dict[str, Any] = {"bus": bus}
    if bus == "postgres":
        database = {"client": "pg", "connection": PG_CONNECTION, "pluginDivisionMode": "schema", "prefix": prefix}
        events["postgres"] = {"channel": f"bench_{uuid.uuid4().hex[:8]}"}
    elif bus == "redis":
        events["redis"] = {"url": REDIS_URL, "channel": f"bench:{uuid.uuid4().hex[:8]}"}
    return {
        "app": {"baseUrl": url},
        "backend": {
            "baseUrl": url,
            "database": database,
            "auth": {"externalAccess": [{"type": "static", "options": {"token": SERVICE_TOKEN, "subject": "bench"}}]},
            "features": {"include": ["auth", "signals", "signals-bench"]},
            "logger": {"level": "warn"},
            # room for every socket and the HTTP client's connections (the default cap is 1,000 per worker)
            "limits": {"maxConnections": sockets + 100},
        },
        "auth": {"providers": {"proxy": {"allowUnknownUsers": True}}},
        "events": events,
        "signals": {"history": {"enabled": history}, "limits": {"maxSocketsPerUser": sockets + 10}},  # one user
    }


@contextlib.asynccontextmanager
async def run_host(bus: str, workers: int, history: bool, sockets: int) -> AsyncIterator[str]:
    """``greenroom start`` with the bench plugin; yields the base URL."""
    import httpx
    import yaml

    port = _free_port()
    prefix = f"gr_bench_{uuid.uuid4().hex[:6]}_"
    with tempfile.TemporaryDirectory(prefix="greenroom-bench-") as tmp:
        dist = Path(tmp) / "ep" / "greenroom_signals_bench-0.1.dist-info"
        dist.mkdir(parents=True)
        (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: greenroom-signals-bench\nVersion: 0.1\n")
        (dist / "entry_points.txt").write_text(
            "[greenroom.backend_features]\nsignals-bench = bench.signals:bench_plugin\n"
        )
        config_file = Path(tmp) / "app-config.yaml"
        config_file.write_text(yaml.safe_dump(_config(port, tmp, bus, prefix, history, sockets)))
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(dist.parent), str(REPO)])}
        proc = subprocess.Popen(
            [str(Path(sys.executable).with_name("greenroom")), "start", "--config", str(config_file),
             "--workers", str(workers), "--port", str(port)],
            cwd=tmp, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            async with httpx.AsyncClient(base_url=url, timeout=2) as client:
                for _ in range(300):
                    if proc.poll() is not None:
                        raise SystemExit(f"greenroom start exited with {proc.returncode}")
                    with contextlib.suppress(httpx.HTTPError):
                        if (await client.get("/api/signals/health")).status_code == 200:
                            break
                    await asyncio.sleep(0.2)
                else:
                    raise SystemExit("greenroom start did not come up")
            yield url
        finally:
            proc.terminate()
            proc.wait(timeout=30)
            if bus == "postgres":
                import asyncpg

                conn = await asyncpg.connect(**PG_CONNECTION)
                for row in await conn.fetch("SELECT nspname FROM pg_namespace WHERE nspname LIKE $1", prefix + "%"):
                    await conn.execute(f'DROP SCHEMA IF EXISTS "{row["nspname"]}" CASCADE')
                await conn.close()


# -- measuring ---------------------------------------------------------------------------------


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


class Sockets:
    """N signal sockets subscribed to one channel."""

    def __init__(self, url: str, token: str, channel: str) -> None:
        self._url = url.replace("http://", "ws://") + "/api/signals"
        self._token = token
        self.channel = channel
        self.sockets: list[Any] = []

    async def grow(self, count: int) -> None:
        import websockets

        async def one() -> Any:
            ws = await websockets.connect(self._url, subprotocols=[self._token], max_queue=None)
            await ws.send(json.dumps({"action": "subscribe", "channel": self.channel}))
            return ws

        while len(self.sockets) < count:
            batch = min(100, count - len(self.sockets))
            self.sockets.extend(await asyncio.gather(*(one() for _ in range(batch))))

    async def close(self) -> None:
        await asyncio.gather(*(ws.close() for ws in self.sockets), return_exceptions=True)
        self.sockets.clear()


async def _settle(http: Any, sockets: Sockets) -> None:
    """Publish until every socket got a frame: all subscriptions are in effect, queues are empty."""
    while True:
        await http.post("/api/signals-bench/publish", json={"channel": sockets.channel, "message": {"warmup": 1}})
        try:
            await asyncio.wait_for(asyncio.gather(*(ws.recv() for ws in sockets.sockets)), 2)
        except (TimeoutError, asyncio.TimeoutError):
            continue
        # drain the extra warm-up frames
        await asyncio.sleep(0.2)
        for ws in sockets.sockets:
            while True:
                try:
                    await asyncio.wait_for(ws.recv(), 0.001)
                except (TimeoutError, asyncio.TimeoutError):
                    break
        return


async def measure(http: Any, sockets: Sockets, rounds: int) -> tuple[list[float], list[float]]:
    """Per round: ms from POST to the probe socket's frame, and to the last socket's frame."""
    probe_ms: list[float] = []
    all_ms: list[float] = []
    probe, others = sockets.sockets[0], sockets.sockets[1:]
    for n in range(rounds):
        start = time.perf_counter()
        post = asyncio.create_task(
            http.post("/api/signals-bench/publish", json={"channel": sockets.channel, "message": {"n": n}})
        )
        await probe.recv()
        probe_ms.append((time.perf_counter() - start) * 1000)
        await asyncio.gather(*(ws.recv() for ws in others))
        all_ms.append((time.perf_counter() - start) * 1000)
        (await post).raise_for_status()
    return probe_ms, all_ms


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


async def main(args: argparse.Namespace) -> None:
    import httpx

    most = max([*args.sockets, args.memory_sockets])
    async with run_host(args.bus, args.workers, not args.no_history, most) as url, httpx.AsyncClient(
        base_url=url, timeout=30, headers={"Authorization": f"Bearer {SERVICE_TOKEN}"}
    ) as http:
        token = (await http.get("/api/auth/proxy/refresh", headers={"x-forwarded-user": "bench"})).json()[
            "backstageIdentity"]["token"]
        sockets = Sockets(url, token, "bench")
        history = "off" if args.no_history else "on"
        print(f"signals benchmark: bus={args.bus} workers={args.workers} rounds={args.rounds} history={history}")
        print(f"{'sockets':>8} {'probe p50':>10} {'probe p99':>10} {'all p50':>9} {'all p99':>9}  (ms, POST to frame)")
        for count in args.sockets:
            await sockets.grow(count)
            await _settle(http, sockets)
            rounds = args.rounds if count < 1000 else max(50, args.rounds // 2)
            probe_ms, all_ms = await measure(http, sockets, rounds)
            print(f"{count:>8} {statistics.median(probe_ms):>10.2f} {_pct(probe_ms, 0.99):>10.2f} "
                  f"{statistics.median(all_ms):>9.2f} {_pct(all_ms, 0.99):>9.2f}")
        await sockets.close()

        if args.workers == 1:
            pid = (await http.get("/api/signals-bench/pid")).json()["pid"]
            await asyncio.sleep(1)
            before = _rss_kib(pid)
            await sockets.grow(args.memory_sockets)
            await _settle(http, sockets)
            await asyncio.sleep(1)
            after = _rss_kib(pid)
            print(f"memory: worker RSS {before / 1024:.1f} MiB with no sockets, {after / 1024:.1f} MiB with "
                  f"{args.memory_sockets} idle sockets: {(after - before) / args.memory_sockets:.1f} KiB per socket")
            await sockets.close()
        else:
            print("memory: measured with --workers 1 only")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--bus", choices=["inprocess", "postgres", "redis"], default="inprocess")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--no-history", action="store_true", help="signals.history.enabled: false (no positions)")
    parser.add_argument("--rounds", type=int, default=200, help="publishes per socket count (half for 1000)")
    parser.add_argument("--sockets", type=int, nargs="+", default=[1, 100, 1000])
    parser.add_argument("--memory-sockets", type=int, default=1000, help="idle sockets for the memory figure")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: 5 rounds, 1 and 5 sockets, 20 idle (CI)")
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.sockets, args.memory_sockets = 5, [1, 5], 20
    return args


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
