"""The ``greenroom`` command line.

* ``greenroom start [--config FILE ...] [--workers N] [--host H] [--port P]``
  serves the backend through gunicorn with uvicorn workers.
* ``greenroom migrate [--config FILE ...]`` starts every plugin once without
  serving, which applies every plugin's migrations, then stops.
* ``greenroom config check [--config FILE ...] [--print] [--connect]``
  validates the merged config against every schema (see
  :mod:`host.config_check`) and prints it with secrets redacted.
* Installed packages add commands through the entry-point group
  ``greenroom.cli`` (for example ``greenroom deliveries`` of the
  notifications plugin, and ``greenroom template run`` of the
  ``greenroom-scaffolder-notifications`` package).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

import yaml

from host.config import Config, ConfigError
from host.services import core_services


def _load(paths: Sequence[str]) -> Config:
    return Config.load(paths)


def validate_config(config: Config) -> list[str]:
    """The host's own config problems (see :func:`host.config_check.host_problems`)."""
    from host.config_check import host_problems

    return host_problems(config)


def _redacted(config: Config) -> dict[str, Any]:
    from host.logging import redact_url_passwords

    secrets = set(config.secret_values())

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        if isinstance(node, str):
            return "***" if node in secrets else redact_url_passwords(node)
        return node

    redacted: dict[str, Any] = walk(config.as_dict())
    return redacted


def cmd_config_check(args: argparse.Namespace) -> int:
    """``greenroom config check``: errors fail (exit 1), warnings are printed."""
    from host.config_check import check_config

    try:
        config = _load(args.config)
    except ConfigError as error:
        _print_problems(str(error).split("; "))
        return 1
    if args.workers is not None:
        config = Config.load(args.config, overrides={"backend": {"workers": args.workers}})
    findings = check_config(config, connect=args.connect)
    if args.print:
        print(yaml.safe_dump(_redacted(config), sort_keys=True))
    for finding in findings:
        if finding.level == "warning":
            print(f"Config warning: {finding}", file=sys.stderr)
    errors = [str(f) for f in findings if f.level == "error"]
    if errors:
        _print_problems(errors)
        return 1
    warnings = len(findings)
    if not args.quiet:
        print(f"Config OK ({warnings} warning{'s' if warnings != 1 else ''})" if warnings else "Config OK")
    return 0


def _print_problems(problems: Sequence[str]) -> None:
    for problem in problems:
        print(f"Config error: {problem}", file=sys.stderr)


def cmd_migrate(args: argparse.Namespace) -> int:
    """``greenroom migrate``: a failure is one message (the traceback only with ``LOG_LEVEL=debug``)."""
    code = run_headless(args.config, until_signalled=False, failure="Migration failed")
    if code == 0:
        print("Migrations applied")
    return code


def run_headless(
    config_paths: Sequence[str],
    *,
    overrides: dict[str, Any] | None = None,
    until_signalled: bool = True,
    failure: str = "Startup failed",
) -> int:
    """Start the backend without an HTTP server, run it until SIGTERM or SIGINT, stop it; return an exit code.

    Every feature starts as in a web worker (modules register their processors,
    channels and config; scheduled tasks take turns with the other processes;
    the events bus connects), but nothing listens on a port: for processes
    that only do background work beside the web workers, such as
    ``greenroom deliveries dispatch``. The stop is a worker's graceful one
    (each plugin's shutdown hooks, bounded by ``backend.lifecycle.shutdownTimeout``).
    With ``until_signalled=False`` it stops as soon as it has started
    (``greenroom migrate``). ``overrides`` are merged over the config files.

    A config error, a SQLite data directory in use by a running host, or a
    failed startup is one line on stderr (``failure: ...``; the traceback at
    debug level) and exit code 1; a graceful stop is 0.
    """
    from host.app import create_app

    try:
        refused = _lock_sqlite_directories(Config.load(config_paths, overrides=overrides))
    except ConfigError as error:
        _print_problems(str(error).split("; "))
        return 1
    if refused:  # a running host owns these SQLite files
        print(f"Startup error: {refused}", file=sys.stderr)
        return 1
    try:
        app = create_app(config_paths, overrides=overrides)
    except ConfigError as error:
        _print_problems(str(error).split("; "))
        return 1
    except Exception as error:  # noqa: BLE001 - any failure is one short message (traceback at debug)
        return _failed(failure, error)

    async def run() -> None:
        stop = asyncio.Event()
        if until_signalled:
            loop = asyncio.get_running_loop()
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(signum, stop.set)
        try:
            await app.start()
            if until_signalled:
                logger = await app.backend.get_service(core_services.root_logger)
                logger.info("Running without an HTTP server (pid %s) until SIGTERM or SIGINT", os.getpid())
                await stop.wait()
                logger.info("Stopping: finishing background work")
        finally:
            await app.stop()

    try:
        asyncio.run(run())
    except Exception as error:  # noqa: BLE001 - any failure is one short message (traceback at debug)
        return _failed(failure, error)
    return 0


def cmd_plugins(args: argparse.Namespace) -> int:
    """``greenroom plugins``: every installed feature, processor and hook implementation."""
    from host.inventory import format_entries, installed_entries, to_json

    entries = installed_entries()
    print(to_json(entries) if args.json else format_entries(entries))
    return 1 if any(entry.error for entry in entries) else 0


def _failed(what: str, error: BaseException) -> int:
    import logging

    from host.connection_errors import short_error

    logging.getLogger("greenroom").debug(what, exc_info=error)
    print(f"{what}: {short_error(error)}", file=sys.stderr)
    return 1


def cmd_start(args: argparse.Namespace) -> int:
    """``greenroom start``: gunicorn with uvicorn workers."""
    from gunicorn.app.base import BaseApplication

    try:
        config = _load(args.config)
    except ConfigError as error:
        print(f"Config error: {error}", file=sys.stderr)
        return 1
    workers = args.workers or int(config.get_optional_number("backend.workers") or 1)
    host = args.host or config.get_optional_string("backend.listen.host") or "127.0.0.1"
    port = args.port or int(config.get_optional_number("backend.listen.port") or 7007)
    overrides = {"backend": {"workers": workers, "listen": {"host": host, "port": port}}}
    # Validate in a child process: the checks import the database and auth stacks,
    # which the gunicorn master would otherwise keep in memory for its whole life.
    check = subprocess.run(
        [
            sys.executable,
            "-m",
            "host.cli",
            "config",
            "check",
            "--quiet",
            "--workers",
            str(workers),
            *(arg for path in args.config for arg in ("--config", path)),
        ],
    )
    if check.returncode != 0:
        return 1
    try:
        refused = _lock_sqlite_directories(config)
    except ConfigError as error:  # e.g. a data directory that cannot be created
        _print_problems([str(error)])
        return 1
    if refused:
        print(f"Startup error: {refused}", file=sys.stderr)
        return 1
    os.environ["GREENROOM_CONFIG"] = os.pathsep.join(os.path.abspath(p) for p in args.config)
    ping = config.get_optional_duration("backend.websocket.pingInterval")
    if ping is not None:
        os.environ["GREENROOM_WS_PING_INTERVAL"] = str(ping.total_seconds())

    from host.environment import log_format
    from host.logging import gunicorn_logger_class

    class _Server(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            self.cfg.set("bind", [f"{host}:{port}"])
            self.cfg.set("workers", workers)
            self.cfg.set("worker_class", "host.worker.GreenroomWorker")
            self.cfg.set("graceful_timeout", _graceful_timeout(config))
            self.cfg.set("timeout", 120)
            self.cfg.set("keepalive", 5)
            self.cfg.set("proc_name", "greenroom")
            self.cfg.set("accesslog", None)
            for key, value in _control_socket_settings(config, self.cfg.settings).items():
                self.cfg.set(key, value)
            self.cfg.set("logger_class", gunicorn_logger_class(log_format(config), config.secret_values()))

        def load(self) -> Any:
            from host.app import create_app

            return create_app(args.config, overrides=overrides)

    _Server().run()
    return 0


def _graceful_timeout(config: Config) -> int:
    """Seconds gunicorn gives a worker after SIGTERM before it kills it.

    The drain delay (``backend.lifecycle.serverShutdownDelay``, default none) comes
    first; then in-flight requests and background work get
    ``backend.lifecycle.shutdownTimeout`` (default 30 s).
    """
    delay = config.get_optional_duration("backend.lifecycle.serverShutdownDelay")
    timeout = config.get_optional_duration("backend.lifecycle.shutdownTimeout")
    seconds = (delay.total_seconds() if delay else 0) + (timeout.total_seconds() if timeout else 30)
    return max(1, math.ceil(seconds))


def _control_socket_settings(config: Config, known: dict[str, Any]) -> dict[str, Any]:
    """gunicorn's control socket (``gunicornc``, gunicorn 25.1+): off unless ``backend.controlSocket`` names one.

    gunicorn's default path (``$XDG_RUNTIME_DIR/gunicorn.ctl`` or
    ``~/.gunicorn/gunicorn.ctl``) is one per user, so every instance on a
    machine would take it over from the previous one and remove it on exit.
    """
    if "control_socket" not in known:
        return {}  # an older gunicorn without the control socket
    path = config.get_optional_path("backend.controlSocket")  # relative to the config file that names it
    if path is None:
        return {"control_socket_disable": True}
    return {"control_socket_disable": False, "control_socket": os.path.abspath(path), "control_socket_mode": 0o600}


def _lock_sqlite_directories(config: Config) -> str | None:
    """Take the instance lock of every SQLite directory for this master and its workers.

    Returns why the host must not start (another host holds a directory), or ``None``.
    The locks are held until the process exits; the workers share them.
    """
    from host import instance_lock
    from host.database_layout import DatabaseLayout

    try:
        for directory in DatabaseLayout(config).sqlite_directories():
            instance_lock.acquire(directory, share_with_instance=False)
    except instance_lock.DataDirectoryInUse as error:
        return str(error)
    os.environ[instance_lock.INSTANCE_ENV] = str(os.getpid())
    return None


def build_parser(plugin_commands: bool = True) -> argparse.ArgumentParser:
    """The argument parser (exposed for tests and docs); ``plugin_commands`` adds the installed packages' commands."""
    parser = argparse.ArgumentParser(prog="greenroom", description="Greenroom backend plugin host")
    sub = parser.add_subparsers(dest="command", required=True)

    def add_config(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--config",
            "-c",
            action="append",
            default=[],
            metavar="FILE",
            help="app-config YAML file; repeat to merge several (later files win)",
        )

    start = sub.add_parser("start", help="serve the backend with gunicorn and uvicorn workers")
    add_config(start)
    start.add_argument("--workers", "-w", type=int, help="number of worker processes (default backend.workers)")
    start.add_argument("--host", help="interface to bind (default backend.listen.host)")
    start.add_argument("--port", "-p", type=int, help="port to bind (default backend.listen.port)")
    start.set_defaults(func=cmd_start)

    migrate = sub.add_parser("migrate", help="apply every plugin's database migrations and exit")
    add_config(migrate)
    migrate.set_defaults(func=cmd_migrate)

    plugins = sub.add_parser("plugins", help="list installed features, processors and hook implementations")
    plugins.add_argument("--json", action="store_true", help="print JSON instead of text")
    plugins.set_defaults(func=cmd_plugins)

    config = sub.add_parser("config", help="configuration tools")
    config_sub = config.add_subparsers(dest="config_command", required=True)
    check = config_sub.add_parser("check", help="validate the merged configuration")
    add_config(check)
    check.add_argument("--print", action="store_true", help="print the merged config with secrets redacted")
    check.add_argument("--quiet", action="store_true", help="print problems only")
    check.add_argument("--workers", type=int, help="check as if started with this many workers")
    check.add_argument("--connect", action="store_true", help="also check that the databases and the bus answer")
    check.set_defaults(func=cmd_config_check)

    if plugin_commands:
        _add_plugin_commands(sub, add_config)
    return parser


#: Entry-point group of commands that installed packages add to ``greenroom``.
CLI_ENTRY_POINT_GROUP = "greenroom.cli"


def _add_plugin_commands(sub: Any, add_config: Any) -> None:
    """Let each ``greenroom.cli`` entry point (``register(subparsers, add_config)``) add its commands.

    A command that fails to load is reported on stderr and left out; the others still work.
    """
    from importlib.metadata import entry_points

    for entry_point in sorted(entry_points(group=CLI_ENTRY_POINT_GROUP), key=lambda ep: ep.name):
        try:
            entry_point.load()(sub, add_config)
        except Exception as error:  # noqa: BLE001 - a broken plugin must not break the CLI
            print(
                f"greenroom: command {entry_point.name} ({entry_point.value}) failed to load: {error}", file=sys.stderr
            )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``greenroom`` script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    # ``greenroom start`` becomes the gunicorn master: loading the plugins' commands would import their
    # database and model stacks (about 60 MiB) into a process that keeps them for its whole life.
    args = build_parser(plugin_commands=argv[:1] != ["start"]).parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
