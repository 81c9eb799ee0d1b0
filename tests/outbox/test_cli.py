"""``greenroom deliveries`` (list, retry, purge, metrics) against a running host's database."""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from host.testing import eventually
from plugin_notifications.delivery import DeliveryOutcome
from tests.conftest import HostHandle, start_host
from tests.notifications.conftest import Api, user
from tests.outbox.conftest import Recorder, outbox_config, recorder_module

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


async def test_rows_of_many_deliveries_read_back_whole(
    db_kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A new row stores the columns its deliveries share once; every reader still sees one value per delivery."""
    team = ["user:default/jane", "user:default/john", "user:default/sub"]
    recorder = Recorder()
    storage = {"data_dir": str(tmp_path), "prefix": f"gr_{uuid.uuid4().hex[:8]}_"}
    monkeypatch.setenv("GREENROOM_TEST_KEEP_DB", "1")  # the second host reuses the first one's database
    config = outbox_config(dispatcher=False)  # rows stay as the send wrote them
    async with start_host(db_kind, config=config, features=[recorder_module(recorder)], **storage) as host:
        api = Api(host)
        items = await api.send_ok({"type": "entity", "entityRef": "group:default/team"})
        assert sorted(item["user"] for item in items) == team
        code, out, err = await greenroom(host, tmp_path, "list", "--status", "pending", "--json")
        assert code == 0, err
        listed = [json.loads(line) for line in out.splitlines()]
        assert sorted(entry["user"] for entry in listed) == team
        assert {(entry["status"], entry["attempts"], entry["lastError"]) for entry in listed} == {("pending", 0, None)}
        assert {entry["notification"] for entry in listed} == {item["id"] for item in items}
        code, out, _ = await greenroom(host, tmp_path, "metrics")
        assert json.loads(out)["queueDepth"] == 3
        for item in items:
            log = (await api.get(item["user"], f"/{item['id']}/deliveries")).json()
            assert [(c["channel"], c["status"], c["attempts"]) for c in log["channels"]][1:] == [
                ("recorder", "pending", 0)
            ]

    monkeypatch.delenv("GREENROOM_TEST_KEEP_DB")
    recorder.outcomes = [DeliveryOutcome.failed("550 no such mailbox")]  # the first delivery of the row only
    async with start_host(db_kind, config=outbox_config(), features=[recorder_module(recorder)], **storage) as host:
        await eventually(lambda: len(recorder.delivered) == 2)
        code, out, err = await greenroom(host, tmp_path, "list", "--status", "dead", "--json")
        [dead] = [json.loads(line) for line in out.splitlines()]
        assert dead["lastError"] == "550 no such mailbox" and dead["user"] not in {
            d.recipients[0] for d in recorder.delivered
        }
        code, out, _ = await greenroom(host, tmp_path, "retry", "--all-dead")
        assert out.strip() == "1 deliveries pending again"
        await eventually(lambda: len(recorder.delivered) == 3)
        assert sorted(d.recipients[0] for d in recorder.delivered) == team
