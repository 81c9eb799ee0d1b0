"""SIGTERM to a real ``greenroom start``: readiness turns 503 before the listener closes,
and in-flight post-processing still finishes.

A slow processor (its own distribution, installed on ``PYTHONPATH``) is in the
middle of post-processing a notification when the master gets SIGTERM. The
test polls readiness until the connection is refused and records every answer.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import httpx
import pytest
import yaml

from tests.conftest import install_distribution
from tests.faults.conftest import host_config, serve, wait_for

pytestmark = pytest.mark.faults

FIXTURE = Path(__file__).parent / "fixtures" / "slow_processor_dist"
USER = "user:default/night-owl"
DELAY_SECONDS = 2.0


@pytest.fixture(scope="module")
def slow_processor_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return install_distribution(FIXTURE, tmp_path_factory.mktemp("slow-processor"))


def test_sigterm_drains_before_closing(tmp_path: Path, slow_processor_site: Path) -> None:
    org = tmp_path / "org.yaml"
    org.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "backstage.io/v1alpha1",
                "kind": "User",
                "metadata": {"name": "night-owl"},
                "spec": {"memberOf": []},
            }
        )
    )
    config = host_config(
        tmp_path,
        catalog={"locations": [{"type": "file", "target": str(org)}]},
        backend={
            "lifecycle": {
                "serverShutdownDelay": {"milliseconds": int(DELAY_SECONDS * 1000)},
                "shutdownTimeout": {"seconds": 15},
            }
        },
    )
    processor_log = tmp_path / "processor.log"
    env = {
        "PYTHONPATH": str(slow_processor_site),
        "GREENROOM_SLOW_PROCESSOR_LOG": str(processor_log),
        "GREENROOM_SLOW_PROCESSOR_SECONDS": "4",
    }
    with serve(config, tmp_path, env=env) as host:
        sent = httpx.post(
            f"{host.url}/api/notifications",
            headers=host.headers(),
            timeout=30,
            json={"recipients": {"type": "entity", "entityRef": USER}, "payload": {"title": "late mail"}},
        )
        assert sent.status_code == 200, sent.text
        wait_for(
            lambda: processor_log.exists() and "start late mail" in processor_log.read_text(),
            30,
            "the slow processor to start",
        )
        host.signal(signal.SIGTERM)
        signalled = time.monotonic()
        answers: list[tuple[float, int | None]] = []
        while time.monotonic() - signalled < 30:
            status = host.readiness()
            answers.append((time.monotonic() - signalled, status))
            if status is None:
                break
            time.sleep(0.05)
        statuses = [status for _, status in answers]
        assert statuses[-1] is None, f"the listener never closed: {answers[-3:]}"
        assert 503 in statuses, f"readiness never answered 503 before the listener closed: {answers}"
        first_503 = statuses.index(503)
        assert set(statuses[first_503:-1]) == {503}, f"readiness went back to 200: {answers}"
        closed_after = answers[-1][0]
        assert closed_after >= DELAY_SECONDS * 0.9, f"the listener closed after {closed_after:.2f} s"
        assert host.proc.wait(30) == 0, host.output
    assert "done late mail" in processor_log.read_text(), "in-flight post-processing was cut off"
