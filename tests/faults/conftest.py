"""Harness of the fault suite: real ``greenroom start`` processes, private servers, big catalogs.

Every test here is bounded (each wait has a deadline) and marked ``faults``.
Nothing touches the shared PostgreSQL at 5432 or Redis at 6379 beyond its own
schemas: servers that a test restarts are private ones on free ports.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.conftest import IN_CI, SERVICE_SUBJECT, SERVICE_TOKEN, free_port, pg_connection_config

GREENROOM = [sys.executable, "-m", "host.cli"]
READY_TIMEOUT = 90.0


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.05) -> Any:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def write_org(path: Path, group: str, size: int) -> list[str]:
    """A catalog file with group ``group`` of ``size`` users; returns the user refs."""
    names = [f"{group}-{i:04d}" for i in range(size)]
    docs: list[dict[str, Any]] = [
        {
            "apiVersion": "backstage.io/v1alpha1",
            "kind": "Group",
            "metadata": {"name": group},
            "spec": {"type": "team", "children": []},
        }
    ]
    docs += [
        {
            "apiVersion": "backstage.io/v1alpha1",
            "kind": "User",
            "metadata": {"name": name},
            "spec": {"memberOf": [group]},
        }
        for name in names
    ]
    path.write_text(yaml.safe_dump_all(docs))
    return [f"user:default/{name}" for name in names]


def host_config(tmp: Path, *, database: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    """A ``greenroom start`` config: SQLite under ``tmp/data`` unless ``database`` says otherwise."""
    config: dict[str, Any] = {
        "backend": {
            "database": database or {"client": "sqlite", "connection": {"directory": str(tmp / "data")}},
            "auth": {
                "externalAccess": [{"type": "static", "options": {"token": SERVICE_TOKEN, "subject": SERVICE_SUBJECT}}]
            },
            "logger": {"level": "info"},
        },
    }
    for key, value in extra.items():
        config.setdefault(key, {}).update(value)
    return config


def database_options(db: str, prefix: str) -> dict[str, Any]:
    """:func:`host_config` keywords for ``db``: on ``postgres`` schemas and events channel under ``prefix``."""
    if db != "postgres":
        return {"database": None, "events": {}}
    database = {"client": "pg", "connection": pg_connection_config(), "pluginDivisionMode": "schema", "prefix": prefix}
    return {"database": database, "events": {"postgres": {"channel": f"{prefix}events"}}}


@dataclass
class Served:
    """One ``greenroom start`` process group (master and workers) on a port."""

    proc: subprocess.Popen[bytes]
    url: str
    log: Path
    config_path: Path
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def output(self) -> str:
        """Everything the process printed so far."""
        return self.log.read_text(errors="replace")

    def readiness(self) -> int | None:
        """The readiness status code, or ``None`` when the connection is refused."""
        try:
            return httpx.get(f"{self.url}/.backstage/health/v1/readiness", timeout=2).status_code
        except httpx.TransportError:
            return None

    def signal(self, sig: int) -> None:
        """Send ``sig`` to the master only (as an orchestrator does)."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.proc.pid, sig)

    def kill_all(self) -> None:
        """SIGKILL the whole process group (master and workers) and reap it."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(30)

    def headers(self) -> dict[str, str]:
        """The static service token's ``Authorization`` header."""
        return {"Authorization": f"Bearer {SERVICE_TOKEN}"}


def start_process(
    config: dict[str, Any],
    tmp: Path,
    *,
    port: int | None = None,
    workers: int = 1,
    env: dict[str, str] | None = None,
    name: str = "host",
) -> subprocess.Popen[bytes]:
    """Start ``greenroom start`` without waiting; its output goes to ``tmp/<name>.log``."""
    port = port or free_port()
    config_path = tmp / f"{name}-config.yaml"
    config_path.write_text(yaml.safe_dump(config))
    log = (tmp / f"{name}.log").open("ab")
    return subprocess.Popen(
        [*GREENROOM, "start", "--config", str(config_path), "--workers", str(workers), "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        cwd=str(tmp),
        env={**os.environ, **(env or {})},
    )


@contextlib.contextmanager
def serve(
    config: dict[str, Any],
    tmp: Path,
    *,
    workers: int = 1,
    port: int | None = None,
    env: dict[str, str] | None = None,
    name: str = "host",
) -> Iterator[Served]:
    """Run ``greenroom start`` until readiness is 200; stop it (SIGTERM, then SIGKILL) afterwards."""
    port = port or free_port()
    proc = start_process(config, tmp, port=port, workers=workers, env=env, name=name)
    served = Served(proc, f"http://127.0.0.1:{port}", tmp / f"{name}.log", tmp / f"{name}-config.yaml", env or {})
    try:

        def ready() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"greenroom start exited with {proc.returncode}:\n{served.output}")
            return served.readiness() == 200

        wait_for(ready, READY_TIMEOUT, "readiness 200", interval=0.2)
        yield served
    finally:
        if proc.poll() is None:
            served.signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                served.kill_all()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # a worker left behind


# -- private servers -------------------------------------------------------------------


def _binary(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


def _missing(what: str) -> None:
    if IN_CI:
        pytest.fail(f"{what} is needed by the fault suite")
    pytest.skip(f"{what} is not installed")


class PrivatePostgres:
    """A throw-away PostgreSQL cluster on a free port, which a test may stop and start at will.

    As root the server runs as the ``postgres`` user (PostgreSQL refuses to run as root).
    """

    def __init__(self) -> None:
        initdb, pg_ctl = _binary("initdb"), _binary("pg_ctl")
        if not initdb or not pg_ctl:
            _missing("PostgreSQL (initdb, pg_ctl)")
        self._initdb, self._pg_ctl = str(initdb), str(pg_ctl)
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="greenroom-pg-"))
        self.data = self.dir / "data"
        self._as_postgres = os.geteuid() == 0
        if self._as_postgres:
            shutil.chown(self.dir, "postgres", "postgres")

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        command = " ".join(_quote(a) for a in args)
        argv = ["su", "postgres", "-s", "/bin/sh", "-c", command] if self._as_postgres else ["sh", "-c", command]
        result = subprocess.run(argv, capture_output=True, text=True, timeout=120)
        if check and result.returncode != 0:
            raise AssertionError(f"{command} failed: {result.stdout}{result.stderr}")
        return result

    @property
    def connection(self) -> dict[str, Any]:
        """``backend.database.connection`` for this cluster."""
        return {"host": "127.0.0.1", "port": self.port, "user": "postgres", "database": "postgres"}

    @property
    def dsn(self) -> str:
        """An asyncpg/psql DSN of the maintenance database."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def init(self) -> None:
        """Create the cluster (trust auth on loopback, small and unsynced: it is thrown away)."""
        self._run(self._initdb, "-D", str(self.data), "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8")
        self.start()

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=60"
        self._run(
            self._pg_ctl,
            "-D",
            str(self.data),
            "-l",
            str(self.dir / "server.log"),
            "-w",
            "-t",
            "60",
            "-o",
            options,
            "start",
        )

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``fast`` disconnects every client, as a restart does)."""
        self._run(self._pg_ctl, "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop", check=False)

    def destroy(self) -> None:
        """Stop the server and delete the cluster."""
        self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)


def _quote(arg: str) -> str:
    import shlex

    return shlex.quote(arg)


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    """A private PostgreSQL cluster, deleted after the test."""
    server = PrivatePostgres()
    try:
        server.init()
        yield server
    finally:
        server.destroy()


class PrivateRedis:
    """A private ``redis-server`` on a free port (no persistence), restartable by the test."""

    def __init__(self) -> None:
        binary = shutil.which("redis-server")
        if not binary:
            _missing("redis-server")
        self._binary = str(binary)
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.dir = Path(tempfile.mkdtemp(prefix="greenroom-redis-"))

    def start(self) -> None:
        """Start the server and wait until it answers PING."""
        subprocess.run(
            [
                self._binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "yes",
                "--dir",
                str(self.dir),
                "--pidfile",
                str(self.dir / "redis.pid"),
                "--logfile",
                str(self.dir / "redis.log"),
            ],
            check=True,
            timeout=30,
        )
        wait_for(self.ping, 30, "redis-server to answer PING")

    def ping(self) -> bool:
        """Whether the server answers PING."""
        import socket

        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        """Shut the server down (every client connection drops) and wait until it is gone."""
        pid_file = self.dir / "redis.pid"
        if not pid_file.exists():
            return
        pid = int(pid_file.read_text().strip() or 0)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)

        def gone() -> bool:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return True
            return False

        wait_for(gone, 30, "redis-server to exit")
        pid_file.unlink(missing_ok=True)


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    """A private Redis server, shut down after the test."""
    server = PrivateRedis()
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(server.dir, ignore_errors=True)
