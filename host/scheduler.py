"""The scheduler service: periodic tasks, run by one worker at a time.

``scope="global"`` tasks (the default) are coordinated through the plugin's
database table ``greenroom_tasks``: every process runs a worker loop, but a
run starts only for the process that wins a conditional ``UPDATE`` that sets
a fresh ticket, so across gunicorn workers and host instances sharing the
database a task runs on one of them at a time. Expired tickets (a worker that
died mid-run) are cleared after the task's timeout. ``scope="local"`` tasks
run in every process.

``fn`` may be a coroutine function or a plain function; a plain one runs in a
worker thread (:func:`asyncio.to_thread`), so a blocking task never stalls the
event loop. A run longer than the task's ``timeout`` counts as failed (a plain
function's thread finishes on its own).

Frequency is a :class:`~datetime.timedelta`, a duration config value, or
``{"cron": "0 0 * * *"}``; ``{"trigger": "manual"}`` runs only when triggered.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import os
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from croniter import croniter

from host.aio import await_me_maybe
from host.config import parse_duration
from host.database import PluginDatabase
from host.errors import ConflictError, InputError, NotFoundError
from host.logging import Logger

_MIGRATIONS = Path(__file__).with_name("scheduler_migrations")
_metadata = sa.MetaData()
tasks_table = sa.Table(
    "greenroom_tasks",
    _metadata,
    sa.Column("id", sa.String(255), primary_key=True),
    sa.Column("settings_json", sa.Text(), nullable=False),
    sa.Column("next_run_start_at", sa.DateTime(timezone=True)),
    sa.Column("current_run_ticket", sa.String(64)),
    sa.Column("current_run_started_at", sa.DateTime(timezone=True)),
    sa.Column("current_run_expires_at", sa.DateTime(timezone=True)),
    sa.Column("last_run_ended_at", sa.DateTime(timezone=True)),
    sa.Column("last_run_error_json", sa.Text()),
)

TaskFn = Callable[[], Awaitable[None] | None]


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


@dataclass
class Schedule:
    """When a task runs."""

    cadence: timedelta | None = None
    cron: str | None = None
    manual: bool = False

    @classmethod
    def parse(cls, frequency: Any) -> Schedule:
        """Build from a timedelta, ``{"cron": ...}``, ``{"trigger": "manual"}`` or a duration value."""
        if isinstance(frequency, timedelta):
            return cls(cadence=frequency)
        if isinstance(frequency, dict) and "cron" in frequency:
            if not croniter.is_valid(frequency["cron"]):
                raise InputError(f"Invalid cron expression '{frequency['cron']}'")
            return cls(cron=frequency["cron"])
        if isinstance(frequency, dict) and frequency.get("trigger") == "manual":
            return cls(manual=True)
        return cls(cadence=parse_duration(frequency))

    def next_after(self, previous: datetime | None, now: datetime) -> datetime | None:
        """The next start time."""
        if self.manual:
            return None
        if self.cron:
            upcoming: datetime = croniter(self.cron, now).get_next(datetime)
            return upcoming
        assert self.cadence is not None
        base = (previous + self.cadence) if previous else now + self.cadence
        return max(base, now)

    def as_json(self) -> str:
        """Stored form (for operators reading the table)."""
        cadence = "manual" if self.manual else self.cron or f"PT{self.cadence.total_seconds() if self.cadence else 0}S"
        return json.dumps({"version": 2, "cadence": cadence})


class PluginScheduler:
    """Schedules tasks for one plugin."""

    def __init__(self, plugin_id: str, database: PluginDatabase, logger: Logger, check_period: float = 5.0) -> None:
        self.plugin_id = plugin_id
        self._database = database
        self._logger = logger
        self._check_period = check_period
        self._tasks: dict[str, dict[str, Any]] = {}
        self._workers: list[asyncio.Task[None]] = []
        self._wakeups: dict[str, asyncio.Event] = {}
        self._migrated = False
        self._closing = False

    async def _engine(self) -> Any:
        if not self._migrated:
            await self._database.migrate(_MIGRATIONS, version_table="greenroom_scheduler_alembic_version")
            self._migrated = True
        return await self._database.get_engine()

    async def schedule_task(
        self,
        *,
        id: str,
        frequency: Any,
        timeout: timedelta,  # noqa: ASYNC109 - each run's limit (Backstage's option), not this call's
        fn: TaskFn,
        initial_delay: timedelta | None = None,
        scope: str = "global",
    ) -> None:
        """Run ``fn`` on ``frequency``; ``scope="global"`` runs it on one process at a time."""
        if not id:
            raise InputError("Task ID must not be empty")
        if id in self._tasks:
            raise ConflictError(f"Task {id} is already scheduled")
        schedule = Schedule.parse(frequency)
        self._tasks[id] = {"scope": scope, "schedule": schedule, "timeout": timeout, "fn": fn}
        self._wakeups[id] = asyncio.Event()
        delay = initial_delay or timedelta()
        if scope == "local":
            self._workers.append(asyncio.create_task(self._local_loop(id, schedule, delay, fn)))
            return
        engine = await self._engine()
        if schedule.manual:
            first = None
        elif schedule.cron:
            first = schedule.next_after(None, _now() + delay)
        else:
            first = _now() + delay
        async with engine.begin() as conn:
            existing = (
                await conn.execute(sa.select(tasks_table.c.next_run_start_at).where(tasks_table.c.id == id))
            ).first()
            if existing is None:
                with contextlib.suppress(sa.exc.IntegrityError):  # another worker inserted it first
                    await conn.execute(
                        tasks_table.insert().values(id=id, settings_json=schedule.as_json(), next_run_start_at=first)
                    )
            else:
                keep = _aware(existing[0])
                next_at = min(keep, first) if keep and first else (keep or first)
                await conn.execute(
                    tasks_table.update()
                    .where(tasks_table.c.id == id)
                    .values(settings_json=schedule.as_json(), next_run_start_at=next_at)
                )
        self._workers.append(asyncio.create_task(self._global_loop(id, schedule, timeout, fn)))

    async def trigger_task(self, id: str) -> None:
        """Make ``id`` run as soon as possible."""
        task = self._tasks.get(id)
        if task is None:
            raise NotFoundError(f"Task {id} does not exist")
        if task["scope"] == "global":
            engine = await self._engine()
            async with engine.begin() as conn:
                row = (
                    await conn.execute(sa.select(tasks_table.c.current_run_ticket).where(tasks_table.c.id == id))
                ).first()
                if row is not None and row[0]:
                    raise ConflictError(f"Task {id} is currently running")
                await conn.execute(tasks_table.update().where(tasks_table.c.id == id).values(next_run_start_at=_now()))
        self._wakeups[id].set()

    def get_scheduled_tasks(self) -> list[dict[str, Any]]:
        """The tasks this plugin scheduled in this process."""
        return [{"id": k, "scope": v["scope"]} for k, v in self._tasks.items()]

    async def close(self) -> None:
        """Stop every worker loop."""
        self._closing = True
        for worker in self._workers:
            worker.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)

    async def _sleep(self, id: str, seconds: float) -> None:
        event = self._wakeups[id]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), max(seconds, 0.0))
        event.clear()

    async def _run(self, id: str, fn: TaskFn, limit: timedelta) -> str | None:
        try:
            async with asyncio.timeout(limit.total_seconds()):
                if inspect.iscoroutinefunction(fn):
                    await fn()
                else:  # a plain function may block: it runs in a thread, the loop keeps serving
                    await await_me_maybe(await asyncio.to_thread(fn))
            return None
        except Exception as error:
            self._logger.error("Task %s failed", id, exc_info=error, task=id)
            return json.dumps({"name": type(error).__name__, "message": str(error)})

    async def _local_loop(self, id: str, schedule: Schedule, delay: timedelta, fn: TaskFn) -> None:
        await self._sleep(id, delay.total_seconds())
        previous: datetime | None = None
        while not self._closing:
            await self._run(id, fn, self._tasks[id]["timeout"])
            previous = _now()
            next_at = schedule.next_after(previous, _now())
            await self._sleep(id, (next_at - _now()).total_seconds() if next_at else 3600 * 24 * 365)

    async def _global_loop(self, id: str, schedule: Schedule, limit: timedelta, fn: TaskFn) -> None:
        check = self._check_period
        if schedule.cadence is not None:
            check = min(check, max(schedule.cadence.total_seconds(), 0.05))
        engine = await self._engine()
        while not self._closing:
            try:
                ticket = uuid.uuid4().hex
                now = _now()
                async with engine.begin() as conn:
                    await conn.execute(
                        tasks_table.update()
                        .where(
                            tasks_table.c.id == id,
                            tasks_table.c.current_run_ticket.is_not(None),
                            tasks_table.c.current_run_expires_at < now,
                        )
                        .values(
                            current_run_ticket=None, last_run_error_json='{"message":"Task timed out and was lost"}'
                        )
                    )
                    claimed = await conn.execute(
                        tasks_table.update()
                        .where(
                            tasks_table.c.id == id,
                            tasks_table.c.next_run_start_at <= now,
                            tasks_table.c.current_run_ticket.is_(None),
                        )
                        .values(
                            current_run_ticket=ticket, current_run_started_at=now, current_run_expires_at=now + limit
                        )
                    )
                if claimed.rowcount == 1:
                    started = time.time()
                    error = await self._run(id, fn, limit)
                    finished = _now()
                    self._logger.debug(
                        "Task %s ran",
                        id,
                        task=id,
                        pid=os.getpid(),
                        started=started,
                        finished=time.time(),
                        failed=error is not None,
                    )
                    async with engine.begin() as conn:
                        row = (
                            await conn.execute(sa.select(tasks_table.c.next_run_start_at).where(tasks_table.c.id == id))
                        ).first()
                        previous = _aware(row[0]) if row else None
                        await conn.execute(
                            tasks_table.update()
                            .where(tasks_table.c.id == id, tasks_table.c.current_run_ticket == ticket)
                            .values(
                                current_run_ticket=None,
                                current_run_started_at=None,
                                current_run_expires_at=None,
                                last_run_ended_at=finished,
                                last_run_error_json=error,
                                next_run_start_at=schedule.next_after(previous, finished),
                            )
                        )
            except asyncio.CancelledError:
                raise
            except Exception as error:  # database hiccup: try again next period
                self._logger.warning("Task worker for %s failed to check the schedule", id, exc_info=error)
            await self._sleep(id, check)
