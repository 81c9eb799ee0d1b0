"""Notifications benchmark against a real ``greenroom start`` on PostgreSQL.

Measures, with a static service token and a guest user token (the sizes are
options):

1. 2,000 ``POST /api/notifications`` to one user, sequential, then at concurrency 16;
2. one ``POST`` to a 1,000-user group (catalog group ``everyone``), repeated six times;
3. ``GET /api/notifications?limit=20`` for a user holding 20,000 notifications,
   1,000 sequential and 2,000 at concurrency 16;
4. ``GET /api/notifications/status`` for that user, likewise.

Backstage reference on this machine class: 1,022 req/s at c16, 243-421 ms for
the 1,000-user group, p99 11 ms for the list.

Usage::

    .venv/bin/python bench/notifications.py                 # one worker
    .venv/bin/python bench/notifications.py --workers 2
    .venv/bin/python bench/notifications.py --url http://127.0.0.1:7007 --token <static token>
    .venv/bin/python bench/notifications.py --quick          # tiny sizes (CI)

With ``--url`` the script uses a running host (it must have the ``everyone``
group of ``--group-size`` users and accept the token); otherwise it starts one on the local PostgreSQL
in throw-away schemas. The client runs on the same machine and competes for
the CPU with the server.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _host import free_port, greenroom, pg_config, unique_prefix  # noqa: E402

SERVICE_TOKEN = "bench-notifications-token-0123456789"


@dataclass(frozen=True)
class Sizes:
    """How much of each measurement to make."""

    posts: int = 2000  # POSTs to one user, sequential and again at concurrency 16
    group_size: int = 1000  # members of the group ``everyone``
    group_rounds: int = 6  # POSTs to the group
    holding: int = 20_000  # notifications the listing user holds
    gets: int = 1000  # sequential GETs of the list and of /status (twice as many at concurrency 16)


QUICK = Sizes(posts=20, group_size=5, group_rounds=2, holding=80, gets=10)


def _catalog(directory: Path, group_size: int) -> Path:
    names = [f"u{index:04d}" for index in range(group_size)]
    documents = [
        "apiVersion: backstage.io/v1alpha1\nkind: Group\nmetadata:\n  name: everyone\nspec:\n"
        f"  type: team\n  children: []\n  members: [{', '.join(names)}]\n",
        "apiVersion: backstage.io/v1alpha1\nkind: User\nmetadata:\n  name: guest\nspec: {}\n",
    ]
    path = directory / "catalog.yaml"
    path.write_text("---\n".join(documents))
    return path


@contextlib.asynccontextmanager
async def run_host(workers: int, group_size: int) -> AsyncIterator[str]:
    """``greenroom start`` on PostgreSQL with the bench catalog; yields the base URL."""
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="greenroom-nbench-") as tmp:
        config = pg_config(
            port, unique_prefix("nbench"), SERVICE_TOKEN,
            backend={"features": {"include": ["auth", "catalog", "catalog-auth-resolver", "signals", "notifications"]}},
            catalog={"locations": [{"type": "file", "target": str(_catalog(Path(tmp), group_size))}]},
        )
        async with greenroom(config, workers, port=port) as host:
            yield host.url


def _ms(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


async def _timed(count: int, concurrency: int, call: Callable[[int], Awaitable[None]]) -> tuple[float, list[float]]:
    """Run ``call(i)`` ``count`` times with ``concurrency`` workers; return (seconds, latencies)."""
    latencies: list[float] = []
    counter = iter(range(count))

    async def worker() -> None:
        for index in counter:
            start = time.perf_counter()
            await call(index)
            latencies.append(time.perf_counter() - start)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - started, latencies


def _report(label: str, seconds: float, latencies: list[float]) -> None:
    print(
        f"{label:<44} {len(latencies) / seconds:8.0f} req/s   p50 {_ms(latencies, 0.5):6.1f} ms"
        f"   p99 {_ms(latencies, 0.99):6.1f} ms"
    )


async def bench(url: str, token: str, sizes: Sizes) -> None:
    """Run every measurement against ``url`` and print the figures."""
    limits = httpx.Limits(max_connections=32, max_keepalive_connections=32)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
        guest = (await client.post("/api/auth/guest/refresh")).json()
        user_token = guest["backstageIdentity"]["token"]
        user_ref = guest["backstageIdentity"]["identity"]["userEntityRef"]
        service = {"Authorization": f"Bearer {token}"}
        as_user = {"Authorization": f"Bearer {user_token}"}

        async def post_to_user(index: int) -> None:
            body = {"recipients": {"type": "entity", "entityRef": user_ref},
                    "payload": {"title": f"bench {index}", "topic": "bench"}}
            response = await client.post("/api/notifications", json=body, headers=service)
            assert response.status_code == 200, response.text

        await _timed(min(100, sizes.posts), 4, post_to_user)  # warm up connections and workers
        _report(f"POST to one user, sequential ({sizes.posts:,})", *await _timed(sizes.posts, 1, post_to_user))
        _report(f"POST to one user, concurrency 16 ({sizes.posts:,})", *await _timed(sizes.posts, 16, post_to_user))

        group_times = []
        for round_ in range(sizes.group_rounds):
            body = {"recipients": {"type": "entity", "entityRef": "group:default/everyone"},
                    "payload": {"title": f"all hands {round_}"}}
            start = time.perf_counter()
            response = await client.post("/api/notifications", json=body, headers=service)
            group_times.append(time.perf_counter() - start)
            assert response.status_code == 200 and len(response.json()) == sizes.group_size, response.text[:200]
        label = f"POST to a {sizes.group_size:,}-user group ({sizes.group_rounds} rounds)"
        print(f"{label:<44} min {min(group_times) * 1000:6.1f} ms"
              f"   median {statistics.median(group_times) * 1000:6.1f} ms   max {max(group_times) * 1000:6.1f} ms")

        status = await client.get("/api/notifications/status", headers=as_user)
        held = sum(status.json().values())
        if held < sizes.holding:
            await _timed(sizes.holding - held, 16, post_to_user)
        held = sum((await client.get("/api/notifications/status", headers=as_user)).json().values())

        async def list_page(_index: int) -> None:
            response = await client.get("/api/notifications", params={"limit": 20}, headers=as_user)
            assert response.status_code == 200 and len(response.json()["notifications"]) == 20

        async def get_status(_index: int) -> None:
            assert (await client.get("/api/notifications/status", headers=as_user)).status_code == 200

        _report(f"GET limit=20 holding {held:,}, sequential", *await _timed(sizes.gets, 1, list_page))
        _report(f"GET limit=20 holding {held:,}, concurrency 16", *await _timed(2 * sizes.gets, 16, list_page))
        _report(f"GET /status holding {held:,}, sequential", *await _timed(sizes.gets, 1, get_status))
        _report(f"GET /status holding {held:,}, concurrency 16", *await _timed(2 * sizes.gets, 16, get_status))


async def main() -> None:
    """Parse arguments, start a host unless ``--url`` is given, run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=1, help="gunicorn workers of the started host")
    parser.add_argument("--url", help="benchmark an already running host instead of starting one")
    parser.add_argument("--token", default=SERVICE_TOKEN, help="static service token of --url")
    parser.add_argument("--quick", action="store_true", help=f"tiny sizes (CI): {QUICK}")
    args = parser.parse_args()
    sizes = QUICK if args.quick else Sizes()
    print(f"notifications benchmark: PostgreSQL, {args.workers if not args.url else '?'} worker(s), "
          f"{os.cpu_count()} CPUs, client on the same machine")
    if args.url:
        await bench(args.url, args.token, sizes)
        return
    async with run_host(args.workers, sizes.group_size) as url:
        await bench(url, args.token, sizes)


if __name__ == "__main__":
    asyncio.run(main())
