"""The ``greenroom`` CLI: start (gunicorn + uvicorn workers), migrate and config check."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from tests.conftest import free_port

GREENROOM = [sys.executable, "-m", "host.cli"]


def write_config(tmp_path: Path, extra: dict | None = None) -> Path:
    config = {
        "backend": {
            "database": {"connection": {"directory": str(tmp_path / "data")}},
            "features": {"include": ["auth"]},
            "auth": {"externalAccess": [{"type": "static", "options": {"token": "cli-test-token", "subject": "cli"}}]},
        }
    }
    if extra:
        for key, value in extra.items():
            config.setdefault(key, {}).update(value)
    path = tmp_path / "app-config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@contextlib.contextmanager
def greenroom_start(config: Path, workers: int) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """``greenroom start --config config --workers N`` on a free port, ready; yields its URL and process."""
    port = free_port()
    proc = subprocess.Popen(
        [*GREENROOM, "start", "--config", str(config), "--workers", str(workers), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if httpx.get(f"{url}/.backstage/health/v1/readiness", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None:
                raise AssertionError(proc.stdout.read().decode() if proc.stdout else "server exited")
            time.sleep(0.2)
        else:
            raise AssertionError("server did not become ready")
        yield url, proc
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    config = write_config(tmp_path, {"events": {"bus": "redis", "redis": {"url": "redis://127.0.0.1:6379/0"}}})
    with greenroom_start(config, workers=2) as started:
        yield started


@pytest.mark.redis
def test_start_serves_health_with_two_workers(served: tuple[str, subprocess.Popen[bytes]]) -> None:
    url, proc = served
    assert httpx.get(f"{url}/.backstage/health/v1/liveness").json() == {"status": "ok"}
    assert httpx.get(f"{url}/.backstage/health/v1/readiness").json() == {"status": "ok"}
    children = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout.split()
    assert len(children) == 2, children
    # both workers serve real requests and share the signing key in the database
    tokens = {httpx.post(f"{url}/api/auth/guest/refresh").json()["backstageIdentity"]["token"] for _ in range(6)}
    for token in tokens:
        info = httpx.get(f"{url}/api/auth/v1/userinfo", headers={"Authorization": f"Bearer {token}"})
        assert info.status_code == 200


def test_start_refuses_sqlite_with_two_workers_and_no_bus(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    result = subprocess.run(
        [*GREENROOM, "start", "--config", str(config), "--workers", "2", "--port", str(free_port())],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "SQLite with more than one worker needs events.bus: redis or postgres" in result.stderr


def test_config_check(tmp_path: Path) -> None:
    good = write_config(tmp_path)
    result = subprocess.run(
        [*GREENROOM, "config", "check", "--config", str(good), "--print"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "Config OK" in result.stdout
    assert "cli-test-token" not in result.stdout  # secrets are redacted

    bad = tmp_path / "bad.yaml"
    bad.write_text(
        yaml.safe_dump(
            {
                "backend": {
                    "auth": {"externalAccess": [{"type": "static", "options": {"token": "short", "subject": "x"}}]}
                }
            }
        )
    )
    result = subprocess.run(
        [*GREENROOM, "config", "check", "--config", str(bad)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1
    assert "at least 8 characters" in result.stderr

    env = dict(os.environ)
    env.pop("GREENROOM_MISSING_VAR", None)
    missing = tmp_path / "missing.yaml"
    missing.write_text("app:\n  title: ${GREENROOM_MISSING_VAR}\n")
    result = subprocess.run(
        [*GREENROOM, "config", "check", "--config", str(missing)], capture_output=True, text=True, timeout=60, env=env
    )
    assert result.returncode == 1
    assert "GREENROOM_MISSING_VAR" in result.stderr


def test_config_check_print_redacts_passwords_inside_urls(tmp_path: Path) -> None:
    config = tmp_path / "urls.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "backend": {
                    "database": {"client": "pg", "connection": "postgresql://greenroom:pg-s3cret%40x@db:5432/gr"}
                },
                "events": {"bus": "redis", "redis": {"url": "redis://:redis-s3cret@cache:6379/0"}},
            }
        )
    )
    result = subprocess.run(
        [*GREENROOM, "config", "check", "--config", str(config), "--print"], capture_output=True, text=True, timeout=60
    )
    assert "pg-s3cret" not in result.stdout + result.stderr and "redis-s3cret" not in result.stdout + result.stderr
    printed = yaml.safe_load(result.stdout.split("Config OK")[0])
    assert printed["backend"]["database"]["connection"] == "postgresql://greenroom:***@db:5432/gr"
    assert printed["events"]["redis"]["url"] == "redis://:***@cache:6379/0"


def test_migrate_creates_the_databases(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    result = subprocess.run(
        [*GREENROOM, "migrate", "--config", str(config)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "data" / "auth.sqlite").exists()
