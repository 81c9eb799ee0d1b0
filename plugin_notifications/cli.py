"""``greenroom deliveries``: the operators' view of the notifications outbox.

* ``greenroom deliveries list [--status failed|dead|pending|...] [--limit N] [--json]``
* ``greenroom deliveries retry ID ... | --all-dead``: pending again, attempts reset
* ``greenroom deliveries purge --older-than 30d``: finished rows (and their sends)
* ``greenroom deliveries metrics``: the counters, queue depth and lag (JSON)
* ``greenroom deliveries dispatch [--nice N]``: a dispatcher-only process

Registered through the entry-point group ``greenroom.cli``. ``list``,
``retry``, ``purge`` and ``metrics`` work on the configured notifications
database directly, so they run next to a serving host (PostgreSQL, or
SQLite, whose writes wait for each other). ``dispatch`` starts the whole
backend without an HTTP server (:func:`host.run_headless`), so the channel
modules and their config are loaded as in a web worker, and runs its
dispatcher (whatever ``notifications.delivery.dispatcher`` says) until
SIGTERM or SIGINT; web workers configured with ``dispatcher: false`` then
only write outbox rows, and their sends wake it through the events bus.
It needs a database other processes may share (PostgreSQL): a SQLite data
directory belongs to one running host.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from host import Config, ConfigError, parse_duration, run_headless
from plugin_notifications.outbox import DEAD, FAILED, MUTED, PENDING, SENT, SKIPPED
from plugin_notifications.outbox_store import OutboxStore

PLUGIN_ID = "notifications"
STATUSES = (PENDING, FAILED, DEAD, SENT, MUTED, SKIPPED)


def register(sub: Any, add_config: Callable[[argparse.ArgumentParser], None]) -> None:
    """Add ``deliveries`` to the ``greenroom`` command line (entry point of ``greenroom.cli``)."""
    deliveries = sub.add_parser("deliveries", help="list, retry and purge notification deliveries (the outbox)")
    commands = deliveries.add_subparsers(dest="deliveries_command", required=True)

    listing = commands.add_parser("list", help="list deliveries (default: failed and dead ones)")
    add_config(listing)
    listing.add_argument(
        "--status", action="append", choices=STATUSES, help="only this status (repeatable; default failed and dead)"
    )
    listing.add_argument("--limit", type=int, default=100, help="at most this many (default 100)")
    listing.add_argument("--json", action="store_true", help="print JSON lines instead of a table")
    listing.set_defaults(func=_command(_list))

    retry = commands.add_parser("retry", help="make dead or failed deliveries pending again")
    add_config(retry)
    retry.add_argument("ids", nargs="*", metavar="ID", help="delivery ids (as listed)")
    retry.add_argument("--all-dead", action="store_true", help="every dead delivery")
    retry.set_defaults(func=_command(_retry))

    purge = commands.add_parser("purge", help="delete finished deliveries older than a duration")
    add_config(purge)
    purge.add_argument("--older-than", required=True, help="a duration such as 30d, 12h or P30D")
    purge.set_defaults(func=_command(_purge))

    metrics = commands.add_parser("metrics", help="print the delivery counters, queue depth and lag as JSON")
    add_config(metrics)
    metrics.set_defaults(func=_command(_metrics))

    dispatch = commands.add_parser(
        "dispatch", help="run only the delivery dispatcher (no HTTP server) until SIGTERM or SIGINT"
    )
    add_config(dispatch)
    dispatch.add_argument(
        "--nice",
        type=_niceness,
        default=0,
        metavar="N",
        help="lower this process's CPU priority by N (os.nice, 0-19) so web workers on the machine come first",
    )
    dispatch.set_defaults(func=_dispatch)


#: What ``greenroom deliveries dispatch`` merges over the config files: the dispatcher runs here.
DISPATCHER_ON = {"notifications": {"delivery": {"dispatcher": True}}}


def _dispatch(args: argparse.Namespace) -> int:
    """``greenroom deliveries dispatch``: the backend without HTTP, for its dispatcher, until a signal."""
    if args.nice:
        os.nice(args.nice)
    return run_headless(args.config, overrides=DISPATCHER_ON, failure="Dispatcher startup failed")


def _niceness(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 19:
        raise argparse.ArgumentTypeError("must be from 0 to 19 (only root may raise a priority)")
    return value


def _command(run: Callable[[OutboxStore, argparse.Namespace], Any]) -> Callable[[argparse.Namespace], int]:
    def main(args: argparse.Namespace) -> int:
        try:
            config = Config.load(args.config)
        except ConfigError as error:
            print(f"Config error: {error}", file=sys.stderr)
            return 1

        async def go() -> int:
            engine = await _engine(config)
            try:
                result = await run(OutboxStore(engine), args)
                return int(result or 0)
            except sa.exc.OperationalError as error:
                if "no such table" in str(error) or "does not exist" in str(error):
                    print("The notifications database has no outbox yet: run `greenroom migrate`", file=sys.stderr)
                    return 1
                raise
            finally:
                await engine.dispose()

        try:
            return asyncio.run(go())
        except (ConfigError, ValueError) as error:
            print(f"Error: {error}", file=sys.stderr)
            return 1

    return main


async def _engine(config: Config) -> AsyncEngine:
    """The notifications plugin's engine, as the host configures it.

    SQLite is opened directly rather than through the host's database manager, which
    would take the data directory's instance lock a running host holds.
    """
    from host import DatabaseManager

    manager = DatabaseManager(config)
    if manager.client_for(PLUGIN_ID) != "sqlite":
        return await manager.create_engine(PLUGIN_ID)
    path = manager.sqlite_path(PLUGIN_ID)
    if path != ":memory:" and not path.startswith("file:") and not await asyncio.to_thread(Path(path).exists):
        raise ValueError(f"No notifications database at {path}")
    return create_async_engine(f"sqlite+aiosqlite:///{path}", connect_args={"timeout": 30})


async def _list(store: OutboxStore, args: argparse.Namespace) -> int:
    found = await store.list_deliveries(args.status or (FAILED, DEAD), limit=max(1, args.limit))
    if args.json:
        for item in found:
            print(json.dumps(item))
        return 0
    columns = ("id", "channel", "status", "attempts", "user", "notification", "updated", "lastError")
    print("\t".join(columns))
    for item in found:
        print("\t".join("" if item[name] is None else str(item[name]) for name in columns))
    return 0


async def _retry(store: OutboxStore, args: argparse.Namespace) -> int:
    if not args.ids and not args.all_dead:
        print("Name delivery ids or use --all-dead", file=sys.stderr)
        return 2
    count = await store.retry(args.ids, all_dead=args.all_dead)
    print(f"{count} deliveries pending again")
    return 0


async def _purge(store: OutboxStore, args: argparse.Namespace) -> int:
    age = _duration(args.older_than)
    count = await store.purge(age)
    print(f"{count} outbox rows deleted")
    return 0


async def _metrics(store: OutboxStore, args: argparse.Namespace) -> int:
    print(json.dumps(await store.metrics(), indent=2))
    return 0


def _duration(text: str) -> timedelta:
    """``30d``, ``12h``, ``45m``, ``90s`` or anything the config accepts (``P30D``, ``30 days``)."""
    units = {"d": "days", "h": "hours", "m": "minutes", "s": "seconds"}
    if text[:-1].isdigit() and text[-1:] in units:
        return timedelta(**{units[text[-1]]: int(text[:-1])})
    return parse_duration(text)
