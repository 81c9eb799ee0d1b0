"""Large group fan-out (issue 16): every member gets exactly one row and one signal, written in batches."""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

import sqlalchemy as sa

from tests.conftest import start_host
from tests.notifications.conftest import Api, capture_signals, eventually, notifications_config, user
from tests.notifications.test_delivery import write_big_group

GROUP = "group:default/everyone"


async def _member_rows(api: Api) -> Counter[str]:
    """How many ``notification`` rows each user holds."""
    engine = await api.database_engine()
    async with engine.connect() as conn:
        rows = await conn.execute(sa.text('SELECT "user", count(*) FROM notification GROUP BY "user"'))
        return Counter({str(name): int(count) for name, count in rows})


async def test_five_thousand_member_group_gets_one_row_and_one_signal_each(db_kind: str, tmp_path: Path) -> None:
    """A 5,000-member group send: 5,000 answered, one stored row and one new_notification signal per member."""
    size = 5000
    config = notifications_config()
    config["catalog"]["locations"].append({"type": "file", "target": str(write_big_group(tmp_path, size))})
    async with start_host(db_kind, config=config) as handle:
        api = Api(handle)
        signals = await capture_signals(handle)
        items = await api.send_ok(user(GROUP), title="all hands", description="at noon", topic="org")
        members = {f"user:default/u{index:04d}" for index in range(size)}
        assert len(items) == size
        assert {item["user"] for item in items} == members
        assert len({item["id"] for item in items}) == size
        assert all(item["payload"]["title"] == "all hands" and item["origin"] for item in items)
        rows = await _member_rows(api)
        assert set(rows) == members and set(rows.values()) == {1}
        ids = {item["user"]: item["id"] for item in items}

        def all_signalled() -> dict[str, str] | None:
            found = {
                signal["recipients"]["entityRef"][0]: signal["message"]["notification_id"]
                for signal in signals
                if signal["message"].get("action") == "new_notification"
            }
            return found if len(found) >= size else None

        assert await eventually(all_signalled, timeout=15) == ids
        body = await api.list("user:default/u4999")
        assert body["totalCount"] == 1
        assert body["notifications"][0]["id"] == ids["user:default/u4999"]
        assert body["notifications"][0]["payload"]["description"] == "at noon"


async def test_large_fan_out_is_written_in_bounded_batches(db_kind: str, tmp_path: Path) -> None:
    """With ``fanOutBatchSize`` 300, a 2,000-user send is written in 7 batches and stored complete."""
    config = notifications_config(fanOutBatchSize=300)
    config["catalog"]["locations"].append({"type": "file", "target": str(write_big_group(tmp_path, 2000))})
    config["backend"]["logger"] = {"level": "debug"}
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    logging.getLogger("greenroom").addHandler(handler)
    try:
        async with start_host(db_kind, config=config) as handle:
            api = Api(handle)
            items = await api.send_ok(user(GROUP), title="batched")
            assert len(items) == 2000
            rows = await _member_rows(api)
            assert len(rows) == 2000 and set(rows.values()) == {1}
            assert {item["user"] for item in items} == set(rows)
    finally:
        logging.getLogger("greenroom").removeHandler(handler)
    messages = [record.getMessage() for record in records]
    assert any(message.startswith("Stored 2000 notifications of send ") for message in messages), messages[-20:]
    assert any(message.endswith(" in 7 batches") for message in messages)
