"""SIGKILL during a 1,000-user group send: after a restart the send is all there or not at all.

The write is slowed by a trigger the test adds to the notifications table (so
the kill reliably lands inside it), and the test waits until the host is
inside the write before it kills: on SQLite until rows appear or the write
lock is held for a while, on PostgreSQL until the host's backend sleeps in the
trigger. Then the whole ``greenroom start`` process group gets SIGKILL, the
host starts again on the same data, and the send's rows are counted.
"""

from __future__ import annotations

import sqlite3
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import PG_DSN, drop_pg_schemas
from tests.faults.conftest import database_options, host_config, serve, wait_for, write_org

pytestmark = pytest.mark.faults

GROUP = "crowd"
SIZE = 1000
NOTIFICATIONS_APP = "greenroom_plugin_notifications"


def _send(url: str, headers: dict[str, str], title: str) -> httpx.Response:
    return httpx.post(
        f"{url}/api/notifications",
        headers=headers,
        timeout=120,
        json={"recipients": {"type": "entity", "entityRef": f"group:default/{GROUP}"}, "payload": {"title": title}},
    )


class SqliteProbe:
    """Looks at the notifications SQLite file from outside the host."""

    def __init__(self, data: Path) -> None:
        self.path = data / "notifications.sqlite"

    def slow_down(self, title: str) -> None:
        """Make every insert of ``title`` cost a cross join of 300 x 300 rows."""
        with sqlite3.connect(self.path, timeout=30) as db:
            db.execute("CREATE TABLE fault_pad (x INTEGER)")
            db.executemany("INSERT INTO fault_pad VALUES (?)", [(i,) for i in range(300)])
            db.execute(f"""CREATE TRIGGER fault_slow AFTER INSERT ON notification
                WHEN NEW.title = '{title}' BEGIN SELECT count(*) FROM fault_pad a, fault_pad b; END""")

    def count(self, title: str) -> int:
        with sqlite3.connect(self.path, timeout=30) as db:
            return int(db.execute("SELECT count(*) FROM notification WHERE title = ?", (title,)).fetchone()[0])

    def write_locked(self) -> bool:
        db = sqlite3.connect(self.path, timeout=0, isolation_level=None)
        try:
            db.execute("BEGIN IMMEDIATE")
            db.execute("ROLLBACK")
            return False
        except sqlite3.OperationalError:
            return True
        finally:
            db.close()

    def inside_write(self, title: str) -> Any:
        """Rows of the send are visible, or the write lock is held for 150 ms on end."""
        since: float | None = None

        def check() -> bool:
            nonlocal since
            if 0 < self.count(title) < SIZE:
                return True
            if not self.write_locked():
                since = None
                return False
            since = since or time.monotonic()
            return time.monotonic() - since > 0.15

        return check


class PostgresProbe:
    """Looks at the notifications schema on the shared PostgreSQL from outside the host."""

    def __init__(self, schema: str) -> None:
        self.schema = schema

    def _sql(self, sql: str, *args: Any) -> Any:
        import asyncio

        import asyncpg

        async def run() -> Any:
            conn = await asyncpg.connect(PG_DSN)
            try:
                return await conn.fetchval(sql, *args)
            finally:
                await conn.close()

        return asyncio.run(run())

    def slow_down(self, title: str) -> None:
        """Make every insert of ``title`` sleep 3 ms in a row trigger (COPY fires them too)."""
        self._sql(f"""CREATE FUNCTION "{self.schema}".fault_slow() RETURNS trigger LANGUAGE plpgsql AS
                      $$ BEGIN PERFORM pg_sleep(0.003); RETURN NEW; END $$""")
        self._sql(f"""CREATE TRIGGER fault_slow AFTER INSERT ON "{self.schema}".notification FOR EACH ROW
                      WHEN (NEW.title = '{title}') EXECUTE FUNCTION "{self.schema}".fault_slow()""")

    def count(self, title: str) -> int:
        return int(self._sql(f'SELECT count(*) FROM "{self.schema}".notification WHERE title = $1', title))

    def busy_backends(self) -> int:
        return int(
            self._sql(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND state = 'active'",
                NOTIFICATIONS_APP,
            )
        )

    def inside_write(self, title: str) -> Any:
        """The host's backend sleeps in the trigger."""
        return lambda: self._sql(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND wait_event = 'PgSleep'",
            NOTIFICATIONS_APP,
        )


@pytest.mark.parametrize("db", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_sigkill_during_group_send_keeps_all_or_nothing(db: str, tmp_path: Path) -> None:
    org = tmp_path / "org.yaml"
    write_org(org, GROUP, SIZE)
    prefix = f"gr_{uuid.uuid4().hex[:8]}_"
    config = host_config(
        tmp_path,
        **database_options(db, prefix),
        catalog={"locations": [{"type": "file", "target": str(org)}]},
    )
    probe: Any = SqliteProbe(tmp_path / "data") if db == "sqlite" else PostgresProbe(f"{prefix}notifications")
    title = f"fan-out {uuid.uuid4().hex[:8]}"
    try:
        with serve(config, tmp_path, name="first") as host:
            # the group resolves to every member: a send of another title reaches all of them
            warm = _send(host.url, host.headers(), "warm-up")
            assert warm.status_code == 200 and len(warm.json()) == SIZE, warm.text[:300]
            probe.slow_down(title)
            outcome: list[Any] = []
            sender = threading.Thread(target=lambda: outcome.append(_try_send(host.url, host.headers(), title)))
            sender.start()
            wait_for(probe.inside_write(title), 60, "the host to be inside the fan-out write", interval=0.005)
            host.kill_all()
            sender.join(30)
            assert outcome and outcome[0] is None, f"the send finished before the kill: {outcome}"
        if db == "postgres":
            wait_for(lambda: probe.busy_backends() == 0, 60, "the killed host's backends to finish")
        with serve(config, tmp_path, name="second") as again:
            assert again.readiness() == 200
            stored = probe.count(title)
        assert stored in (0, SIZE), f"{stored} of {SIZE} rows of one send survived a SIGKILL"
    finally:
        if db == "postgres":
            import asyncio

            asyncio.run(drop_pg_schemas(prefix))


def _try_send(url: str, headers: dict[str, str], title: str) -> int | None:
    try:
        return _send(url, headers, title).status_code
    except httpx.TransportError:
        return None
