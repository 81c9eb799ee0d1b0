"""``greenroom deliveries`` (list, retry, purge, metrics) against a running host's database."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import yaml

from host.testing import eventually
from plugin_notifications.delivery import DeliveryOutcome
from tests.conftest import HostHandle
from tests.notifications.conftest import Api, user
from tests.outbox.conftest import Recorder

JANE = "user:default/jane"
ROOT = Path(__file__).resolve().parents[2]


async def greenroom(host: HostHandle, tmp_path: Path, *args: str) -> tuple[int, str, str]:
    """Run ``greenroom deliveries ARGS`` with the host's config; return (code, stdout, stderr)."""
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(host.config))
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "host.cli",
        "deliveries",
        *args,
        "--config",
        str(config),
        cwd=str(ROOT),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    return int(proc.returncode or 0), out.decode(), err.decode()


async def delivery_status(api: Api, notification_id: str) -> dict[str, Any]:
    log = (await api.get(JANE, f"/{notification_id}/deliveries")).json()
    return dict(log["channels"][1])


async def test_list_retry_purge_and_metrics(recorder_host: HostHandle, recorder: Recorder, tmp_path: Path) -> None:
    recorder.outcomes = [DeliveryOutcome.failed("550 mailbox unavailable")]
    api = Api(recorder_host)
    [item] = await api.send_ok(user("jane"), title="to the dead letters")

    async def dead() -> bool:
        return (await delivery_status(api, item["id"]))["status"] == "dead"

    await eventually(dead)
    code, out, err = await greenroom(recorder_host, tmp_path, "list", "--status", "dead", "--json")
    assert code == 0, err
    [listed] = [json.loads(line) for line in out.splitlines()]
    assert listed["notification"] == item["id"] and listed["user"] == JANE and listed["channel"] == "recorder"
    assert listed["status"] == "dead" and listed["lastError"] == "550 mailbox unavailable"

    code, out, err = await greenroom(recorder_host, tmp_path, "retry", "--all-dead")
    assert code == 0 and out.strip() == "1 deliveries pending again", err
    await eventually(lambda: recorder.delivered)  # the running host's dispatcher picks it up (poll)
    [delivery] = recorder.delivered
    assert delivery.id == listed["id"] and delivery.attempt == 1

    async def sent() -> bool:
        return (await delivery_status(api, item["id"]))["status"] == "sent"

    await eventually(sent)
    code, out, _ = await greenroom(recorder_host, tmp_path, "metrics")
    metrics = json.loads(out)
    assert metrics["channels"]["recorder"]["dead"] == 1 and metrics["channels"]["recorder"]["sent"] == 1
    assert metrics["queueDepth"] == 0

    code, out, _ = await greenroom(recorder_host, tmp_path, "purge", "--older-than", "1d")
    assert code == 0 and out.strip() == "0 outbox rows deleted"  # finished just now: kept
    code, out, _ = await greenroom(recorder_host, tmp_path, "purge", "--older-than", "0s")
    assert code == 0 and out.strip() == "1 outbox rows deleted"
    code, out, _ = await greenroom(recorder_host, tmp_path, "list", "--status", "sent", "--json")
    assert code == 0 and out == ""


async def test_retry_needs_ids_or_all_dead(recorder_host: HostHandle, tmp_path: Path) -> None:
    code, _, err = await greenroom(recorder_host, tmp_path, "retry")
    assert code == 2 and "--all-dead" in err
