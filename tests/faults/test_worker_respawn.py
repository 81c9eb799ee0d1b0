"""A worker that cannot start while the database is away does not take the whole instance down.

gunicorn halts the master (and every healthy worker) when a worker exits with
its boot-error code, which is right on the first start but not for a worker
that replaces one that died: a worker killed while PostgreSQL restarts used to
stop the whole instance. Now only the first start fails fast; a replacement
that cannot start exits normally and gunicorn starts another, while the
surviving worker keeps answering (readiness 503 until the database is back).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import uuid
from pathlib import Path

import httpx
import pytest

from tests.faults.conftest import PrivatePostgres, host_config, serve, wait_for

pytestmark = [pytest.mark.faults, pytest.mark.postgres]

STARTED = "Plugin initialization complete"


def _workers(master: int) -> list[int]:
    found = subprocess.run(["pgrep", "-P", str(master)], capture_output=True, text=True)
    return [int(pid) for pid in found.stdout.split()]


def test_a_replacement_worker_that_cannot_start_leaves_the_instance_up(
    tmp_path: Path, private_postgres: PrivatePostgres
) -> None:
    database = {"client": "pg", "connection": private_postgres.connection, "prefix": f"gr_{uuid.uuid4().hex[:6]}_"}
    with serve(host_config(tmp_path, database=database), tmp_path, workers=2) as host:
        wait_for(lambda: host.output.count(STARTED) >= 2, 60, "both workers to start")
        private_postgres.stop("fast")
        victim = _workers(host.proc.pid)[0]
        os.kill(victim, signal.SIGKILL)
        # the replacement's startup fails (no database); wait until it has exited
        failed = wait_for(
            lambda: re.search(rf"Worker \(pid:(?!{victim}\))\d+\) exited with code (\d+)", host.output),
            60,
            "the replacement worker to fail its startup",
        )
        assert failed.group(1) != "3", "gunicorn's boot-error code halts the master"
        assert host.proc.poll() is None, f"the instance stopped:\n{host.output[-3000:]}"
        assert host.readiness() == 503  # the surviving worker answers: the database is away
        private_postgres.start()
        wait_for(lambda: host.output.count(STARTED) >= 3, 90, "a replacement worker to start")
        wait_for(lambda: host.readiness() == 200, 30, "readiness 200 again")
        for _ in range(4):  # both workers serve
            sent = httpx.post(
                f"{host.url}/api/notifications",
                headers=host.headers(),
                timeout=10,
                json={"recipients": {"type": "broadcast"}, "payload": {"title": "back"}},
            )
            assert sent.status_code == 200, sent.text
        assert len(_workers(host.proc.pid)) == 2
