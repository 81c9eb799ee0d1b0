"""``greenroom deliveries dispatch``: delivery in a process of its own, beside web workers that only write the outbox.

The web host runs in this process with ``notifications.delivery.dispatcher:
false``; the dispatcher process reads the same config but posts the webhook to
another path of the receiver, so every request shows which process delivered
it. Its poll interval is ten minutes: a send it delivers at once reached it
through the events bus (PostgreSQL ``LISTEN``/``NOTIFY``).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import signal
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from host.config import deep_merge
from host.testing import eventually
from tests.channel_delivery import send, settled
from tests.conftest import start_host
from tests.http_receiver import Receiver

ROOT = Path(__file__).resolve().parents[2]
SECRET = "whsec_" + base64.b64encode(os.urandom(32)).decode()
JANE = "user:default/jane"
READY = "Running without an HTTP server"


def webhook_config(receiver: Receiver, path: str, **delivery: Any) -> dict[str, Any]:
    """One webhook endpoint, ``webhook:main``, posting to ``path`` on ``receiver``."""
    endpoint = {"url": f"http://127.0.0.1:{receiver.port}{path}", "secret": SECRET, "name": "main"}
    return {
        "notifications": {
            "delivery": {"pollInterval": {"minutes": 10}, **delivery},
            "processors": {"webhook": {"endpoints": [endpoint], "timeout": {"seconds": 5}}},
        }
    }


async def dispatch_process(
    config: dict[str, Any], tmp_path: Path, *args: str
) -> tuple[asyncio.subprocess.Process, Path]:
    """Start ``greenroom deliveries dispatch ARGS`` on ``config``; its output goes to the returned log file."""
    config_path = tmp_path / "dispatcher.yaml"
    config_path.write_text(yaml.safe_dump(config))
    log = tmp_path / "dispatcher.log"
    with log.open("wb") as output:
        proc = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "host.cli", "deliveries", "dispatch", "--config", str(config_path), *args),
            cwd=str(ROOT),
            stdout=output,
            stderr=asyncio.subprocess.STDOUT,
        )
    return proc, log


@pytest.mark.postgres
async def test_a_dispatch_process_delivers_the_sends_of_web_workers_without_a_dispatcher(tmp_path: Path) -> None:
    with Receiver().start() as receiver:
        async with start_host("postgres", config=webhook_config(receiver, "/web", dispatcher=False)) as web:
            [first] = await send(web, JANE)  # written to the outbox; the web host does not deliver it
            settings = deep_merge(
                web.config, {**webhook_config(receiver, "/dispatcher"), "backend": {"logger": {"level": "info"}}}
            )
            proc, log = await dispatch_process(settings, tmp_path, "--nice", "5")
            try:
                await eventually(lambda: READY in log.read_text(), timeout=30)
                assert os.getpriority(os.PRIO_PROCESS, proc.pid) == min(19, os.nice(0) + 5)
                await eventually(lambda: receiver.accepted(), timeout=10)  # its first round found the waiting row
                [second] = await send(web, JANE)  # sent while it sleeps: the bus wakes it
                await eventually(lambda: len(receiver.accepted()) == 2, timeout=10)
                assert [request.path for request in receiver.requests] == ["/dispatcher", "/dispatcher"], (
                    log.read_text()
                )
                for note in (first, second):
                    assert (await settled(web, JANE, note["id"], "webhook:main"))["status"] == "sent"

                proc.send_signal(signal.SIGTERM)
                assert await asyncio.wait_for(proc.wait(), 30) == 0, log.read_text()
                assert "Stopping: finishing background work" in log.read_text()
            finally:
                if proc.returncode is None:
                    with contextlib.suppress(ProcessLookupError):
                        proc.kill()
                    await proc.wait()


async def test_a_dispatch_process_is_refused_a_sqlite_directory_a_running_host_holds(tmp_path: Path) -> None:
    async with start_host("sqlite", config={"notifications": {}}) as web:
        proc, log = await dispatch_process(web.config, tmp_path)
        assert await asyncio.wait_for(proc.wait(), 60) == 1
    assert "is in use by another Greenroom host" in log.read_text()
