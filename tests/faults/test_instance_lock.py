"""Two hosts on one SQLite data directory: the second is refused, the first keeps serving."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import httpx
import pytest

from tests.conftest import REDIS_URL
from tests.faults.conftest import GREENROOM, host_config, serve, start_process

pytestmark = [pytest.mark.faults, pytest.mark.redis]


def test_second_host_on_one_sqlite_directory_is_refused(tmp_path: Path) -> None:
    bus = {"bus": "redis", "redis": {"url": REDIS_URL, "channel": f"gr_lock_{uuid.uuid4().hex[:8]}"}}
    config = host_config(tmp_path, events=bus)
    # two workers of one instance share the lock: both start
    with serve(config, tmp_path, workers=2, name="first") as first:
        second = start_process(config, tmp_path, name="second")
        assert second.wait(60) != 0
        output = (tmp_path / "second.log").read_text()
        data = (tmp_path / "data").resolve()
        assert (
            f"The SQLite data directory {data} is in use by another Greenroom host (pid {first.proc.pid})" in output
        ), output
        migrate = subprocess.run(
            [*GREENROOM, "migrate", "--config", str(first.config_path)],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=tmp_path,
        )
        assert migrate.returncode == 1
        assert f"{data} is in use by another Greenroom host (pid {first.proc.pid})" in migrate.stderr
        assert first.readiness() == 200
        for _ in range(4):  # both workers still serve
            listed = httpx.get(f"{first.url}/api/catalog/entities/by-query", headers=first.headers())
            assert listed.status_code == 200
    # once the first host is gone the directory is free again
    with serve(config, tmp_path, name="third") as third:
        assert third.readiness() == 200
