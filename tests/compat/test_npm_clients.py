"""Backstage's own npm clients work unchanged against Greenroom.

``npm/clients.mjs`` drives every public method of ``NotificationsClient``
(``@backstage/plugin-notifications`` 0.6.2) and ``SignalClient``
(``@backstage/plugin-signals`` 0.0.37), installed from npm by
``scripts/install-npm-clients.sh`` (part of ``make test``), and asserts as it
goes. It runs against an in-process host on SQLite and against a real
``greenroom start --workers 2`` on PostgreSQL, where every request opens a new
connection so that requests and the signals socket spread over both workers.
The same script passes against the real Backstage (docs/compat.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.compat.conftest import BENCH_TOKEN, compat_config
from tests.conftest import IN_CI, start_host
from tests.signals.test_signals_workers import greenroom_start

NPM_DIR = Path(__file__).with_name("npm")
SCRIPT = NPM_DIR / "clients.mjs"
METHODS = {
    "SignalClient.create",
    "SignalClient.subscribe",
    "SignalSubscriber.unsubscribe",
    "NotificationsClient.getNotifications",
    "NotificationsClient.getNotification",
    "NotificationsClient.getStatus",
    "NotificationsClient.updateNotifications",
    "NotificationsClient.getNotificationSettings",
    "NotificationsClient.updateNotificationSettings",
    "NotificationsClient.getTopics",
}


def require_clients() -> str:
    """The ``node`` binary, once the npm clients are installed; skip (fail under CI) otherwise."""
    node = shutil.which("node")
    reason = None
    if node is None:
        reason = "node is needed to run Backstage's npm clients"
    elif not (NPM_DIR / "node_modules" / "@backstage" / "plugin-notifications").is_dir():
        reason = "the npm clients are not installed: run scripts/install-npm-clients.sh"
    if reason:
        if IN_CI:
            pytest.fail(reason)
        pytest.skip(reason)
    assert node is not None
    return node


@contextlib.asynccontextmanager
async def in_process_sqlite(catalog_dir: Path) -> AsyncIterator[str]:
    """A test host on SQLite (one process), configured like the peer; yield its URL."""
    async with start_host("sqlite", config=compat_config(catalog_dir)) as host:
        yield host.url


@contextlib.asynccontextmanager
async def two_workers_postgres(catalog_dir: Path) -> AsyncIterator[str]:
    """``greenroom start --workers 2`` on PostgreSQL, configured like the peer; yield its URL."""
    async with greenroom_start("postgres", workers=2, overrides=compat_config(catalog_dir)) as url:
        yield url


HOSTS = {"sqlite": in_process_sqlite, "postgres-2-workers": two_workers_postgres}


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres-2-workers", marks=pytest.mark.postgres)])
async def test_backstage_npm_clients_work_unchanged(kind: str, compat_catalog: Path) -> None:
    node = require_clients()
    async with HOSTS[kind](compat_catalog) as url:
        proc = await asyncio.create_subprocess_exec(
            node,
            "--experimental-websocket",
            str(SCRIPT),
            url,
            BENCH_TOKEN,
            cwd=NPM_DIR,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            stdout, stderr = await asyncio.wait_for(proc.communicate(), 120)
        finally:
            if proc.returncode is None:
                proc.kill()
    assert proc.returncode == 0, f"{stdout.decode()}\n{stderr.decode()}"
    lines = [json.loads(line) for line in stdout.decode().splitlines()]
    assert lines[-1]["method"] == "done"
    assert set(lines[-1]["methods"]) == METHODS
