"""On PostgreSQL the outbox's deliveries and the sends' resolutions are stored with LZ4 (migration 0008)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from tests.conftest import start_host
from tests.notifications.conftest import Api
from tests.outbox.conftest import Recorder, outbox_config, recorder_module


@pytest.mark.postgres
async def test_large_outbox_rows_are_lz4_compressed() -> None:
    users = [f"user:default/u{index:04d}" for index in range(400)]
    async with start_host(
        "postgres", config=outbox_config(dispatcher=False), features=[recorder_module(Recorder())]
    ) as host:
        api = Api(host)
        items = await api.send_ok({"type": "entity", "entityRef": users})
        assert len(items) == len(users)
        engine = await api.database_engine()
        async with engine.connect() as conn:
            declared = dict(
                (
                    await conn.execute(
                        sa.text(
                            "SELECT c.relname || '.' || a.attname, a.attcompression::text FROM pg_attribute a"
                            " JOIN pg_class c ON c.oid = a.attrelid"
                            " WHERE c.relnamespace = current_schema()::regnamespace"
                            " AND (c.relname, a.attname) IN"
                            " (('notification_outbox', 'items'), ('notification_send', 'resolution'))"
                        )
                    )
                ).all()
            )
            assert declared == {"notification_outbox.items": "l", "notification_send.resolution": "l"}
            stored = (
                await conn.execute(
                    sa.text("SELECT pg_column_compression(items), octet_length(items::text) FROM notification_outbox")
                )
            ).all()
        # 400 deliveries in two rows of 200 (recipientsPerRow), each large enough to be compressed
        assert [method for method, _ in stored] == ["lz4", "lz4"]
        assert all(size > 8000 for _, size in stored)
