"""Large sends write one planning row; a dispatcher plans their deliveries after the answer.

``planLaterAbove: 2`` makes the three-member ``group:default/team`` (jane, john, sub) such a send.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from host.testing import eventually
from tests.conftest import SERVICE_TOKEN, HostHandle, start_host
from tests.notifications.conftest import Api
from tests.outbox.conftest import Recorder, outbox_config, recorder_module

JANE, JOHN, SUB = "user:default/jane", "user:default/john", "user:default/sub"
TEAM = {"type": "entity", "entityRef": "group:default/team"}
SUB_MUTES_RECORDER = {"channels": [{"id": "Recorder", "origins": [{"id": "test-service", "enabled": False}]}]}


async def recorder_log(api: Api, item: dict[str, Any]) -> dict[str, Any]:
    log = (await api.get(item["user"], f"/{item['id']}/deliveries")).json()
    [entry] = [entry for entry in log["channels"] if entry["channel"] == "recorder"]
    return dict(entry)


async def metrics(host: HostHandle) -> dict[str, Any]:
    response = await host.client.get(
        "/api/notifications/delivery-metrics", headers={"Authorization": f"Bearer {SERVICE_TOKEN}"}
    )
    return dict(response.json())


@pytest.mark.parametrize("scope", ["recipient", "send"])
async def test_a_large_send_is_planned_by_the_dispatcher(db_kind: str, scope: str) -> None:
    recorder = Recorder(scope=scope)
    async with start_host(
        db_kind, config=outbox_config(planLaterAbove=2), features=[recorder_module(recorder)]
    ) as host:
        api = Api(host)
        assert (await api.post(SUB, "/settings", SUB_MUTES_RECORDER)).status_code == 200
        items = {item["user"]: item for item in await api.send_ok(TEAM, title="planned later")}
        await eventually(lambda: recorder.delivered)
        if scope == "recipient":
            await eventually(lambda: len(recorder.delivered) == 2)
            assert {d.recipients[0]: d.notification.id for d in recorder.delivered} == {
                JANE: items[JANE]["id"],
                JOHN: items[JOHN]["id"],
            }
        else:
            [delivery] = recorder.delivered
            assert sorted(delivery.recipients) == [JANE, JOHN]
        assert {d.notification.payload.title for d in recorder.delivered} == {"planned later"}
        assert {d.entity_refs for d in recorder.delivered} == {("group:default/team",)}

        async def jane_sent() -> bool:
            return (await recorder_log(api, items[JANE]))["status"] == "sent"

        await eventually(jane_sent)
        sub = await recorder_log(api, items[SUB])
        assert (sub["status"], sub["setting"]) == ("muted", "user origin")
        assert (await metrics(host))["sendsToPlan"] == 0


async def test_before_planning_the_log_and_metrics_show_it_and_a_restart_loses_nothing(
    db_kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    recorder = Recorder()
    storage = {"data_dir": str(tmp_path), "prefix": f"gr_{uuid.uuid4().hex[:8]}_"}
    monkeypatch.setenv("GREENROOM_TEST_KEEP_DB", "1")  # the second host reuses the first one's database
    config = outbox_config(planLaterAbove=2, dispatcher=False)  # a web worker: nobody plans here
    async with start_host(db_kind, config=config, features=[recorder_module(recorder)], **storage) as host:
        api = Api(host)
        items = {item["user"]: item for item in await api.send_ok(TEAM)}
        entry = await recorder_log(api, items[JANE])
        assert (entry["status"], entry["setting"], entry["attempts"]) == ("pending", "planning", 0)
        figures = await metrics(host)
        assert figures["sendsToPlan"] == 1 and figures["queueDepth"] == 3  # three users, one channel
        assert (await api.post(SUB, "/settings", SUB_MUTES_RECORDER)).status_code == 200  # read when planned
    monkeypatch.delenv("GREENROOM_TEST_KEEP_DB")
    async with start_host(
        db_kind, config=outbox_config(planLaterAbove=2), features=[recorder_module(recorder)], **storage
    ) as host:
        api = Api(host)
        await eventually(lambda: len(recorder.delivered) == 2)
        assert sorted(d.recipients[0] for d in recorder.delivered) == [JANE, JOHN]
        assert (await recorder_log(api, items[SUB]))["status"] == "muted"
        figures = await eventually(lambda: _settled(host))
        assert figures["sendsToPlan"] == 0 and figures["channels"]["recorder"]["sent"] == 2


async def _settled(host: HostHandle) -> dict[str, Any] | None:
    figures = await metrics(host)
    return figures if figures["queueDepth"] == 0 else None
