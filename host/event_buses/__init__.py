"""Choose and build the bus that carries events between processes.

``events.bus`` selects it:

* ``inprocess`` - nothing leaves the process; only valid with one worker.
* ``postgres`` - ``LISTEN``/``NOTIFY`` on ``events.postgres.connection``, or
  else on ``backend.database.connection`` (its ``database``, else ``postgres``).
* ``redis`` - pub/sub at ``events.redis.url``.

Without ``events.bus`` the default is ``postgres`` when
``backend.database.client`` is PostgreSQL and ``inprocess`` otherwise.
Optional: ``events.postgres.channel``, ``events.postgres.payloadRetention``,
``events.redis.channel`` (processes talk only on the same channel).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import make_url

from host.config import Config, ConfigError
from host.connection_errors import ConnectionFailedError, bus_failure
from host.events import EventBus, InProcessBus

if TYPE_CHECKING:
    from host.database import DatabaseManager
    from host.event_buses.postgres import PostgresBus
    from host.event_buses.redis import RedisBus
    from host.logging import Logger

__all__ = [
    "BUS_KINDS",
    "PostgresBus",
    "RedisBus",
    "bus_failure_for",
    "bus_kind",
    "check_bus_for_workers",
    "create_bus",
]

BUS_KINDS = ("inprocess", "postgres", "redis")
#: The bus classes, imported on first use: a worker on the Redis bus never loads asyncpg's
#: listener and one on PostgreSQL never loads the Redis client (about 7 MiB per worker).
_LAZY_BUSES = {"PostgresBus": "host.event_buses.postgres", "RedisBus": "host.event_buses.redis"}


def __getattr__(name: str) -> Any:
    if name in _LAZY_BUSES:
        import importlib

        return getattr(importlib.import_module(_LAZY_BUSES[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


_PG_CLIENTS = ("pg", "postgres", "postgresql")


def bus_kind(config: Config) -> str:
    """Return the configured bus kind, or the default for the configured database."""
    kind = config.get_optional_string("events.bus")
    if kind is None:
        return "postgres" if _database_client(config) in _PG_CLIENTS else "inprocess"
    if kind not in BUS_KINDS:
        raise ConfigError(f"Invalid events.bus config, must be one of {', '.join(BUS_KINDS)}, got '{kind}'")
    return kind


def check_bus_for_workers(config: Config, workers: int) -> None:
    """Fail fast when ``workers`` processes could not exchange events (signals, cache invalidation).

    Raises :class:`~host.config.ConfigError` when more than one worker would
    use the in-process bus.
    """
    if workers <= 1 or bus_kind(config) != "inprocess":
        return
    if config.get_optional_string("events.bus") == "inprocess":
        reason = "events.bus: inprocess only works with a single worker"
    else:
        reason = "SQLite with more than one worker needs events.bus: redis or postgres"
    raise ConfigError(
        f"{reason} (got {workers} workers). Set events.bus: redis with events.redis.url, or "
        "events.bus: postgres with events.postgres.connection (or use PostgreSQL as backend.database), "
        "so that events and signals published in one worker reach the others; or run with --workers 1."
    )


def create_bus(config: Config, database_manager: DatabaseManager | None, logger: Logger) -> EventBus:
    """Build the configured bus (not started: :class:`host.events.RootEventsService` starts it).

    ``database_manager`` is accepted for the root events factory's
    convenience; the bus reads the connection settings from ``config``.
    """
    kind = bus_kind(config)
    bus_logger = logger.child(bus=kind)
    if kind == "redis":
        url = config.get_optional_string("events.redis.url")
        if not url:
            raise ConfigError("events.bus: redis needs events.redis.url (for example redis://127.0.0.1:6379/0)")
        channel = config.get_optional_string("events.redis.channel")
        from host.event_buses.redis import RedisBus

        return RedisBus(url, bus_logger, channel=channel) if channel else RedisBus(url, bus_logger)
    if kind == "postgres":
        options: dict[str, Any] = {}
        if channel := config.get_optional_string("events.postgres.channel"):
            options["channel"] = channel
        if retention := config.get_optional_duration("events.postgres.payloadRetention"):
            options["payload_retention"] = retention
        from host.event_buses.postgres import PostgresBus

        return PostgresBus(postgres_connect_kwargs(config), bus_logger, **options)
    return InProcessBus()


def bus_failure_for(config: Config, error: BaseException) -> ConnectionFailedError:
    """Describe ``error``, raised while the configured bus connected, for an operator."""
    kind = bus_kind(config)
    if kind == "redis":
        url = make_url(config.get_optional_string("events.redis.url") or "redis://localhost")
        return bus_failure(
            "redis",
            host=url.host,
            port=url.port,
            database=url.database,
            user=url.username,
            config_key="events.redis.url",
            error=error,
        )
    kwargs = postgres_connect_kwargs(config)
    if "dsn" in kwargs:
        url = make_url(kwargs["dsn"])
        kwargs = {"host": url.host, "port": url.port, "database": url.database, "user": url.username}
    key = "events.postgres.connection" if config.has("events.postgres.connection") else "backend.database.connection"
    return bus_failure(
        "postgres",
        host=kwargs.get("host"),
        port=kwargs.get("port"),
        database=kwargs.get("database"),
        user=kwargs.get("user"),
        config_key=key,
        error=error,
    )


def postgres_connect_kwargs(config: Config) -> dict[str, Any]:
    """:func:`asyncpg.connect` arguments for the bus: ``events.postgres.connection`` or the database's."""
    conn = config.get_optional("events.postgres.connection")
    if conn is None:
        if _database_client(config) not in _PG_CLIENTS:
            raise ConfigError(
                "events.bus: postgres needs events.postgres.connection when backend.database is not PostgreSQL"
            )
        conn = config.get_optional("backend.database.connection")
    if isinstance(conn, str):
        url = make_url(conn)
        return {"dsn": url.set(drivername="postgresql").render_as_string(hide_password=False)}
    if not isinstance(conn, dict):
        raise ConfigError(
            "backend.database.connection (or events.postgres.connection) is required for the postgres bus"
        )
    kwargs: dict[str, Any] = {
        "host": conn.get("host", "127.0.0.1"),
        "user": conn.get("user"),
        "password": conn.get("password"),
        "database": conn.get("database") or "postgres",
    }
    if conn.get("port"):
        kwargs["port"] = int(conn["port"])
    if conn.get("ssl") is not None:
        kwargs["ssl"] = conn["ssl"]
    return {key: value for key, value in kwargs.items() if value is not None}


def _database_client(config: Config) -> str:
    return (config.get_optional_string("backend.database.client") or "sqlite").lower()
