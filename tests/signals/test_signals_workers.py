"""A signal published in one gunicorn worker reaches sockets held by the others (real ``greenroom start``).

The workers load a test plugin (:mod:`tests.signals.helper_plugin`) through
an entry point in a temporary ``dist-info`` directory on ``PYTHONPATH``,
exactly as an installed plugin package would be found. Each publish request
goes over a fresh TCP connection, so the kernel spreads them over the
workers; every published message carries the publishing worker's pid. A
socket lives in exactly one worker, so a socket that receives messages from
two different pids received at least one from another worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
import yaml

from host.config import deep_merge
from tests.conftest import SERVICE_TOKEN, base_config, drop_pg_schemas, free_port
from tests.signals.conftest import REDIS_URL, recv_signal, subscribe, unique_channel, wait_subscribed, ws_url

REPO = Path(__file__).resolve().parents[2]
GREENROOM = Path(sys.executable).with_name("greenroom")
WORKERS = 2
JANE = "user:default/jane"
JOHN = "user:default/john"


@contextlib.contextmanager
def helper_entry_point() -> Iterator[str]:
    """A directory that makes ``signals-test`` an installed ``greenroom.backend_features`` entry point."""
    with tempfile.TemporaryDirectory(prefix="greenroom-ep-") as path:
        dist = Path(path) / "greenroom_signals_test_helper-0.1.dist-info"
        dist.mkdir()
        (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: greenroom-signals-test-helper\nVersion: 0.1\n")
        (dist / "entry_points.txt").write_text(
            "[greenroom.backend_features]\nsignals-test = tests.signals.helper_plugin:signals_test_plugin\n"
        )
        yield path


def write_config(directory: str, overrides: dict[str, Any]) -> str:
    path = Path(directory) / "app-config.yaml"
    path.write_text(yaml.safe_dump(overrides))
    return str(path)


@contextlib.asynccontextmanager
async def greenroom_start(
    db: str, events: dict[str, Any] | None = None, workers: int = WORKERS, overrides: dict[str, Any] | None = None
) -> AsyncIterator[str]:
    """Run ``greenroom start --workers N``; yield its base URL once it answers.

    Without ``overrides`` the host serves only auth, signals and the test plugin, and signs users
    in through the trusted proxy; ``overrides`` replaces that with config of the caller's own.
    """
    port = free_port()
    prefix = f"gr_{uuid.uuid4().hex[:8]}_"
    with tempfile.TemporaryDirectory(prefix="greenroom-workers-") as data_dir, helper_entry_point() as ep_dir:
        config = base_config(db, port=port, data_dir=data_dir, prefix=prefix)
        if events is not None:
            config["events"] = events
        if overrides is None:
            config["backend"]["features"] = {"include": ["auth", "signals", "signals-test"]}
            config["auth"] = {"providers": {"proxy": {"allowUnknownUsers": True}}}  # how the test signs users in
        else:
            config = deep_merge(config, overrides)
        config_file = write_config(data_dir, config)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([ep_dir, str(REPO)])}
        proc = subprocess.Popen(
            [str(GREENROOM), "start", "--config", config_file, "--workers", str(workers), "--port", str(port)],
            cwd=data_dir,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            await wait_until_serving(proc, url)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if db == "postgres":
                await drop_pg_schemas(prefix)


async def wait_until_serving(proc: subprocess.Popen[str], url: str, timeout: float = 180.0) -> None:
    """Poll the health endpoint until it answers (a deadline for a busy machine running the suite in parallel)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    async with httpx.AsyncClient(base_url=url, timeout=2) as client:
        while True:
            if proc.poll() is not None:
                raise AssertionError(
                    f"greenroom start exited with {proc.returncode}:\n{proc.stderr.read() if proc.stderr else ''}"
                )
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get("/api/signals/health")).status_code == 200:
                    return
            assert loop.time() < deadline, "greenroom start did not serve in time"
            await asyncio.sleep(0.2)


async def user_token(url: str, user: str) -> str:
    """Sign ``user`` in through the trusted-proxy provider of the running host."""
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        response = await client.get("/api/auth/proxy/refresh", headers={"x-forwarded-user": user})
        response.raise_for_status()
        return str(response.json()["backstageIdentity"]["token"])


def new_connection_client(url: str) -> httpx.AsyncClient:
    """An HTTP client that opens a new TCP connection per request (so requests spread over workers)."""
    return httpx.AsyncClient(
        base_url=url,
        timeout=10,
        limits=httpx.Limits(max_keepalive_connections=0),
        headers={"Authorization": f"Bearer {SERVICE_TOKEN}"},
    )


BUSES = {
    "postgres": ("postgres", lambda: {"postgres": {"channel": unique_channel()}}),
    "redis": ("sqlite", lambda: {"bus": "redis", "redis": {"url": REDIS_URL, "channel": unique_channel()}}),
}


@pytest.mark.parametrize("bus", sorted(BUSES))
async def test_signal_from_one_worker_reaches_sockets_on_the_others(bus: str) -> None:
    db, events = BUSES[bus]
    """Sockets for Jane receive every signal published for her, from both workers; John gets none of them."""
    async with greenroom_start(db, events()) as url, new_connection_client(url) as http:

        async def publish(signal: dict[str, Any]) -> int:
            response = await http.post("/api/signals-test/publish", json=signal)
            response.raise_for_status()
            return int(response.json()["pid"])

        jane_token = await user_token(url, "jane")
        john_token = await user_token(url, "john")
        async with contextlib.AsyncExitStack() as stack:
            janes = [
                await stack.enter_async_context(websockets.connect(ws_url(url), subprotocols=[jane_token]))  # type: ignore[list-item]
                for _ in range(6)
            ]
            john = await stack.enter_async_context(websockets.connect(ws_url(url), subprotocols=[john_token]))  # type: ignore[list-item]
            for ws in (*janes, john):
                await subscribe(ws, "c")
                await wait_subscribed(ws, publish)

            # Publish to Jane from whichever worker takes each request until two workers have published.
            publishers: list[int] = []
            while len(set(publishers)) < WORKERS:
                assert len(publishers) < 200, f"requests never reached {WORKERS} workers: {set(publishers)}"
                publishers.append(
                    await publish(
                        {
                            "recipients": {"type": "user", "entityRef": JANE},
                            "channel": "c",
                            "message": {"n": len(publishers)},
                        }
                    )
                )
            for ws in janes:
                received = [(await recv_signal(ws))["message"] for _ in publishers]
                # Every signal exactly once. Order holds per publishing worker, not across workers:
                # a later local signal may overtake an earlier one still on its way through the bus.
                assert sorted(m["n"] for m in received) == list(range(len(publishers)))
                assert {m["pid"] for m in received} == set(publishers)
                for pid in set(publishers):
                    from_pid = [m["n"] for m in received if m["pid"] == pid]
                    assert from_pid == sorted(from_pid)

            await publish({"recipients": {"type": "broadcast"}, "channel": "c", "message": {"to": "all"}})
            frame = await recv_signal(john)  # John got nothing of Jane's before the broadcast
            assert frame["message"]["to"] == "all"


async def test_sqlite_with_several_workers_and_no_bus_refuses_to_start() -> None:
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="greenroom-workers-") as data_dir:
        config = base_config("sqlite", port=port, data_dir=data_dir, prefix="unused_")
        config_file = write_config(data_dir, config)
        result = subprocess.run(
            [str(GREENROOM), "start", "--config", config_file, "--workers", "2", "--port", str(port)],
            cwd=data_dir,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode != 0
    assert "SQLite with more than one worker needs events.bus: redis or postgres" in result.stderr
