"""Shared launcher for the benchmarks: a real ``greenroom start`` on the local PostgreSQL.

Each run gets throw-away schemas (``pluginDivisionMode: schema`` with a
unique prefix), dropped when it ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

if str(Path(__file__).resolve().parents[1]) not in sys.path:  # run as a script
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from host.config import deep_merge

REPO = Path(__file__).resolve().parents[1]
PG_CONNECTION = {"host": "127.0.0.1", "port": 5432, "user": "postgres", "database": "test"}
GREENROOM = Path(sys.executable).with_name("greenroom")


def free_port() -> int:
    """An unused TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pg_config(port: int, prefix: str, token: str, **extra: Any) -> dict[str, Any]:
    """A host config on PostgreSQL with a static service token (subject ``bench``)."""
    url = f"http://127.0.0.1:{port}"
    config: dict[str, Any] = {
        "app": {"baseUrl": url},
        "backend": {
            "baseUrl": url,
            "database": {"client": "pg", "connection": PG_CONNECTION, "pluginDivisionMode": "schema", "prefix": prefix},
            "auth": {"externalAccess": [{"type": "static", "options": {"token": token, "subject": "bench"}}]},
            "logger": {"level": "warn"},
        },
        "events": {"bus": "postgres", "postgres": {"channel": f"{prefix}events"}},
    }
    return deep_merge(config, extra)


@dataclass
class RunningHost:
    """A started ``greenroom start`` process."""

    url: str
    proc: subprocess.Popen[bytes]
    prefix: str

    def pids(self) -> list[int]:
        """The gunicorn master and its workers."""
        out = subprocess.run(["pgrep", "-P", str(self.proc.pid)], capture_output=True, text=True).stdout
        return [self.proc.pid, *(int(p) for p in out.split())]

    def tree_memory_mib(self) -> dict[str, float]:
        """RSS and PSS of the master and every worker, in MiB."""
        return tree_memory_mib(self.proc.pid)

    def rss_mib(self) -> float:
        """Resident memory of the master and every worker, in MiB."""
        total = 0
        for pid in self.pids():
            with contextlib.suppress(OSError):
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        return total / 1024


def process_tree(root: int) -> list[int]:
    """``root`` and all its descendants (from the parent ids in ``/proc/*/stat``)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            stat = (entry / "stat").read_text()
            parent = int(stat[stat.rindex(")") + 2 :].split()[1])
            children.setdefault(parent, []).append(int(entry.name))
    tree, pending = [], [root]
    while pending:
        pid = pending.pop()
        tree.append(pid)
        pending.extend(children.get(pid, []))
    return tree


def tree_memory_mib(root: int) -> dict[str, float]:
    """Summed RSS and PSS (``/proc/PID/smaps_rollup``) of ``root``'s process tree, in MiB.

    PSS splits each shared page between the processes sharing it, so unlike RSS it
    does not count the pages forked workers share with their master twice.
    """
    rss = pss = 0
    pids = process_tree(root)
    for pid in pids:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Rss:"):
                    rss += int(line.split()[1])
                elif line.startswith("Pss:"):
                    pss += int(line.split()[1])
    return {"rss_mib": round(rss / 1024, 1), "pss_mib": round(pss / 1024, 1), "processes": len(pids)}


@contextlib.contextmanager
def greenroom_process(config: dict[str, Any], *args: str) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    """``greenroom ARGS --config FILE`` with ``config`` written to FILE; yields the process and its log file.

    SIGTERM (then SIGKILL) when the block ends.
    """
    with tempfile.TemporaryDirectory(prefix="greenroom-bench-") as tmp:
        config_file = Path(tmp) / "app-config.yaml"
        config_file.write_text(yaml.safe_dump(config))
        log = Path(tmp) / "greenroom.log"
        with log.open("wb") as output:
            proc = subprocess.Popen(
                [str(GREENROOM), *args, "--config", str(config_file)],
                cwd=tmp,
                env={**os.environ, "PYTHONPATH": str(REPO)},
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        try:
            yield proc, log
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()


def log_tail(log: Path, lines: int = 20) -> str:
    """The last ``lines`` lines of a process's log."""
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


@contextlib.asynccontextmanager
async def greenroom(config: dict[str, Any], workers: int, *, port: int) -> AsyncIterator[RunningHost]:
    """Run ``greenroom start`` with ``config``; yield once it is ready; clean up its schemas."""
    database = config["backend"]["database"]
    prefix = database.get("prefix", "") if database.get("client") == "pg" else ""
    try:
        with greenroom_process(config, "start", "--workers", str(workers), "--port", str(port)) as (proc, log):
            host = RunningHost(f"http://127.0.0.1:{port}", proc, prefix)
            async with httpx.AsyncClient(base_url=host.url, timeout=2) as client:
                for _ in range(900):
                    if proc.poll() is not None:
                        raise SystemExit(f"greenroom start exited with {proc.returncode}:\n{log_tail(log)}")
                    with contextlib.suppress(httpx.HTTPError):
                        if (await client.get("/.backstage/health/v1/readiness")).status_code == 200:
                            break
                    await asyncio.sleep(0.2)
                else:
                    raise SystemExit("greenroom start did not come up")
            yield host
    finally:
        if prefix:
            await drop_schemas(prefix, database.get("connection", PG_CONNECTION))


async def drop_schemas(prefix: str, connection: dict[str, Any] | None = None) -> None:
    """Drop every schema named ``<prefix>*`` (only this run's: the prefix is unique)."""
    import asyncpg

    conn = await asyncpg.connect(**(connection or PG_CONNECTION))
    try:
        for row in await conn.fetch("SELECT nspname FROM pg_namespace WHERE nspname LIKE $1", prefix + "%"):
            await conn.execute(f'DROP SCHEMA IF EXISTS "{row["nspname"]}" CASCADE')
    finally:
        await conn.close()


def unique_prefix(name: str) -> str:
    """A schema prefix for one benchmark run."""
    return f"gr_{name}_{uuid.uuid4().hex[:6]}_"
