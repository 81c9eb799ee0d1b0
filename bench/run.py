"""Side-by-side benchmark of Greenroom: one command, a table and a JSON file.

Starts ``greenroom start`` on the local PostgreSQL with ``--workers N`` and
measures the cases of issue 7 against the Backstage figures measured on the
same machine class:

(a) POST /api/notifications to one user, sequential and at concurrency 16
    (``wrk``; Backstage: 1,022 req/s at c16);
(b) one POST to a group of 1,000 and of 10,000 users (Backstage: 243-421 ms
    for 1,000);
(c) GET /api/notifications?limit=20 p50/p99 for a user holding 20,000, then
    again with 1,000,000 rows in the table (Backstage: p99 11 ms);
(d) POST-to-WebSocket-frame p50/p99 for a user's socket with 1,000 sockets
    connected (Backstage: p99 4-28 ms with one socket);
(e) resident memory of master + workers, idle and after the runs
    (Backstage: 144-198 MiB idle).

Usage::

    .venv/bin/python bench/run.py                 # 2 workers
    .venv/bin/python bench/run.py --workers 1 --quick

``wrk`` (Debian package ``wrk``) generates the HTTP load; the WebSocket
client is Python. Everything runs on one machine, so the load generators
compete with the server and PostgreSQL for the same cores.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _host import PG_CONNECTION, free_port, greenroom, pg_config, unique_prefix  # noqa: E402

TOKEN = "bench-run-token-0123456789"
PROXY_SECRET = "bench-proxy-secret-0123"
BACKSTAGE = {"post_c16_rps": 1022, "group_1000_ms": "243-421", "list_p99_ms": 11, "signal_p99_ms": "4-28",
             "idle_rss_mib": "144-198"}


def write_catalog(directory: Path) -> Path:
    """Users u00000..u09999, a group of 1,000 and one of 10,000."""
    users = [f"u{i:05d}" for i in range(10_000)]
    docs = [
        {"apiVersion": "backstage.io/v1alpha1", "kind": "Group", "metadata": {"name": "g1000"},
         "spec": {"type": "team", "children": [], "members": users[:1000]}},
        {"apiVersion": "backstage.io/v1alpha1", "kind": "Group", "metadata": {"name": "g10000"},
         "spec": {"type": "team", "children": [], "members": users}},
    ]
    import yaml

    path = directory / "bench-catalog.yaml"
    path.write_text(yaml.safe_dump_all(docs))
    return path


def wrk(url: str, *, connections: int, seconds: int, script: str | None = None) -> dict[str, float]:
    """Run wrk; return requests/s and latency percentiles in ms."""
    cmd = ["wrk", "-t", str(min(2, connections)), "-c", str(connections), "-d", f"{seconds}s", "--latency"]
    if script:
        cmd += ["-s", script]
    out = subprocess.run([*cmd, url], capture_output=True, text=True, check=True).stdout
    result = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))}  # type: ignore[union-attr]
    for pct in ("50", "99"):
        match = re.search(rf"\s{pct}%\s+([\d.]+)(us|ms|s)", out)
        if match:
            value, unit = float(match.group(1)), match.group(2)
            result[f"p{pct}_ms"] = value / 1000 if unit == "us" else value * 1000 if unit == "s" else value
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    result["errors"] = float(errors.group(1)) if errors else 0.0
    return result


def wrk_script(directory: Path, name: str, method: str, body: str | None, token: str) -> str:
    lines = [f'wrk.method = "{method}"', f'wrk.headers["Authorization"] = "Bearer {token}"']
    if body is not None:
        lines += ['wrk.headers["Content-Type"] = "application/json"', f"wrk.body = '{body}'"]
    path = directory / f"{name}.lua"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


async def user_token(url: str, user: str) -> str:
    async with httpx.AsyncClient(base_url=url) as client:
        response = await client.get("/api/auth/proxy/refresh", headers={
            "x-forwarded-user": user, "x-greenroom-proxy-secret": PROXY_SECRET})
        response.raise_for_status()
        return str(response.json()["backstageIdentity"]["token"])


async def fill(prefix: str, user: str, count: int) -> None:
    """Insert ``count`` notifications for ``user`` straight into the notifications schema."""
    import asyncpg

    conn = await asyncpg.connect(**PG_CONNECTION)
    try:
        await conn.execute(f'SET search_path TO "{prefix}notifications"')
        await conn.execute(
            'INSERT INTO notification (id, "user", title, severity, origin, created) '
            "SELECT gen_random_uuid(), $1, 'bench ' || g, 'normal', 'bench', now() - g * interval '1 second' "
            "FROM generate_series(1, $2) g", user, count)
        await conn.execute("VACUUM ANALYZE notification")
    finally:
        await conn.close()


async def table_rows(prefix: str) -> int:
    """Rows in the notification table."""
    import asyncpg

    conn = await asyncpg.connect(**PG_CONNECTION)
    try:
        return int(await conn.fetchval(f'SELECT count(*) FROM "{prefix}notifications".notification'))
    finally:
        await conn.close()


async def group_send(url: str, group: str, rounds: int) -> list[float]:
    timings = []
    async with httpx.AsyncClient(base_url=url, timeout=120, headers={"Authorization": f"Bearer {TOKEN}"}) as client:
        for index in range(rounds):
            start = time.perf_counter()
            response = await client.post("/api/notifications", json={
                "recipients": {"type": "entity", "entityRef": f"group:default/{group}"},
                "payload": {"title": f"group {index}"}})
            timings.append((time.perf_counter() - start) * 1000)
            response.raise_for_status()
            # Each round measures one POST on its own: let the previous send's background
            # work (signals for every recipient) finish first.
            await asyncio.sleep(1.0)
    return timings


async def signal_latency(url: str, sockets: int, rounds: int) -> dict[str, float]:
    """POST to the probe user while ``sockets`` sockets listen; time until the probe socket has the frame."""
    import websockets

    ws_url = url.replace("http://", "ws://") + "/api/signals"
    probe_token = await user_token(url, "u00000")
    other_tokens = [await user_token(url, f"u{i:05d}") for i in range(1, 21)]
    connections = []
    for index in range(sockets - 1):
        ws = await websockets.connect(ws_url, subprotocols=[other_tokens[index % len(other_tokens)]],
                                      ping_interval=None, max_queue=None)
        await ws.send(json.dumps({"action": "subscribe", "channel": "notifications"}))
        connections.append(ws)
    probe = await websockets.connect(ws_url, subprotocols=[probe_token], ping_interval=None)
    await probe.send(json.dumps({"action": "subscribe", "channel": "notifications"}))
    await asyncio.sleep(1.0)
    latencies = []
    async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}) as client:
        body = {"recipients": {"type": "entity", "entityRef": "user:default/u00000"}, "payload": {"title": "ping"}}
        for _ in range(rounds):
            start = time.perf_counter()
            await client.post("/api/notifications", json=body)
            while True:
                frame = json.loads(await asyncio.wait_for(probe.recv(), 10))
                if frame["message"].get("action") == "new_notification":
                    break
            latencies.append((time.perf_counter() - start) * 1000)
    for ws in [*connections, probe]:
        await ws.close()
    latencies.sort()
    return {"sockets": sockets, "p50_ms": statistics.median(latencies),
            "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]}


async def main(args: argparse.Namespace) -> dict[str, Any]:
    if shutil.which("wrk") is None:
        raise SystemExit("bench/run.py needs wrk: apt-get install wrk")
    seconds = 3 if args.quick else 8
    results: dict[str, Any] = {"workers": args.workers, "cpus": os.cpu_count(), "backstage": BACKSTAGE}
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        catalog = write_catalog(directory)
        port = free_port()
        prefix = unique_prefix("run")
        config = pg_config(port, prefix, TOKEN,
                           backend={"features": {"include": ["auth", "catalog", "catalog-auth-resolver",
                                                             "notifications", "signals"]}},
                           auth={"providers": {"proxy": {"secret": PROXY_SECRET}}},
                           catalog={"locations": [{"type": "file", "target": str(catalog)}]})
        async with greenroom(config, args.workers, port=port) as host:
            await asyncio.sleep(2)
            results["rss_idle_mib"] = round(host.rss_mib(), 1)
            post = wrk_script(directory, "post", "POST", json.dumps(
                {"recipients": {"type": "entity", "entityRef": "user:default/u00001"}, "payload": {"title": "b"}}),
                TOKEN)
            results["post_sequential"] = wrk(f"{host.url}/api/notifications", connections=1, seconds=seconds,
                                             script=post)
            results["post_c16"] = wrk(f"{host.url}/api/notifications", connections=16, seconds=seconds, script=post)
            rounds = 3 if args.quick else 6
            for group in ("g1000", "g10000"):
                timings = await group_send(host.url, group, rounds)
                results[f"group_{group[1:]}_ms"] = {"min": round(min(timings), 1),
                                                    "median": round(statistics.median(timings), 1)}
            holder = "user:default/holder"
            await fill(prefix, holder, 20_000)
            token = await user_token(host.url, holder)
            get = wrk_script(directory, "get", "GET", None, token)
            results["list_20k"] = wrk(f"{host.url}/api/notifications?limit=20", connections=1, seconds=seconds,
                                      script=get)
            results["status_20k"] = wrk(f"{host.url}/api/notifications/status", connections=1, seconds=seconds,
                                        script=get)
            rows = await table_rows(prefix)
            if not args.quick and rows < 1_000_000:
                await fill(prefix, "user:default/someone-else", 1_000_000 - rows)
            results["rows_for_list_1m"] = await table_rows(prefix)
            results["list_1m"] = wrk(f"{host.url}/api/notifications?limit=20", connections=1, seconds=seconds,
                                     script=get)
            results["signal_1000_sockets"] = await signal_latency(host.url, 100 if args.quick else 1000,
                                                                  100 if args.quick else 300)
            results["rss_after_mib"] = round(host.rss_mib(), 1)
    return results


def print_table(results: dict[str, Any]) -> None:
    def fmt(case: dict[str, float]) -> str:
        return f"{case['rps']:8.0f} req/s  p50 {case.get('p50_ms', 0):6.2f} ms  p99 {case.get('p99_ms', 0):6.2f} ms"

    print(f"Greenroom on PostgreSQL, {results['workers']} worker(s), {results['cpus']} CPUs, load on the same machine")
    print(f"(a) POST one user, sequential      {fmt(results['post_sequential'])}")
    print(f"(a) POST one user, concurrency 16  {fmt(results['post_c16'])}   Backstage 1,022 req/s")
    print(f"(b) POST group of 1,000            min {results['group_1000_ms']['min']} ms  median "
          f"{results['group_1000_ms']['median']} ms   Backstage 243-421 ms")
    print(f"(b) POST group of 10,000           min {results['group_10000_ms']['min']} ms  median "
          f"{results['group_10000_ms']['median']} ms")
    print(f"(c) GET limit=20, holding 20,000   {fmt(results['list_20k'])}   Backstage p99 11 ms")
    print(f"(c) GET /status, holding 20,000    {fmt(results['status_20k'])}")
    print(f"(c) GET limit=20, {results['rows_for_list_1m']:,} rows  {fmt(results['list_1m'])}")
    sig = results["signal_1000_sockets"]
    print(f"(d) POST-to-frame, {sig['sockets']} sockets    p50 {sig['p50_ms']:.2f} ms  p99 {sig['p99_ms']:.2f} ms"
          "   Backstage p99 4-28 ms (1 socket)")
    print(f"(e) RSS idle {results['rss_idle_mib']} MiB, after {results['rss_after_mib']} MiB   Backstage idle 144-198 MiB")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="short runs, 100 sockets, no 1M-row fill")
    parser.add_argument("--output", default=str(Path(__file__).parent / "results"))
    arguments = parser.parse_args()
    outcome = asyncio.run(main(arguments))
    print_table(outcome)
    Path(arguments.output).mkdir(parents=True, exist_ok=True)
    target = Path(arguments.output) / f"run-{time.strftime('%Y%m%dT%H%M%S')}-w{arguments.workers}.json"
    target.write_text(json.dumps(outcome, indent=2))
    print(f"wrote {target}")
