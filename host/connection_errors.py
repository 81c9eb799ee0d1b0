"""Connection failures an operator can act on.

A database or bus that does not answer raises :class:`ConnectionFailedError`
with one short message: who tried (the plugin or the bus), where (host, port,
database), what went wrong and what to check. Loggers print that message
instead of the traceback (which stays available at debug level), and the CLI
prints it alone.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator

import asyncpg


class ConnectionFailedError(Exception):
    """A database or events bus could not be reached; the message says where and what to check."""

    name = "ConnectionFailedError"
    #: Loggers print the message of such an error instead of its traceback (see :mod:`host.logging`).
    actionable = True


#: What a failed connection attempt raises (drivers wrap some of them; :func:`root_cause` unwraps).
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
)


def database_failure(
    who: str,
    *,
    host: str | None,
    port: int | None,
    database: str | None,
    user: str | None,
    config_key: str,
    error: BaseException,
) -> ConnectionFailedError:
    """The error for ``who`` (``"Plugin 'auth'"``) failing to reach its PostgreSQL database."""
    error = root_cause(error)
    where = f"PostgreSQL at {host or 'localhost'}:{port or 5432}, database '{database}'"
    reason, hint = _postgres_reason(error, host, port, database, user, config_key)
    return ConnectionFailedError(f"{who} cannot connect to {where} as user '{user}': {reason}. {hint}")


def bus_failure(
    kind: str,
    *,
    host: str | None,
    port: int | None,
    database: str | None,
    user: str | None,
    config_key: str,
    error: BaseException,
) -> ConnectionFailedError:
    """The error for the events bus (``kind`` ``postgres`` or ``redis``) failing to connect."""
    error = root_cause(error)
    if kind == "redis":
        where = f"Redis at {host or 'localhost'}:{port or 6379}"
        reason, hint = _network_reason(error, "Redis", host, port, config_key)
        return ConnectionFailedError(f"The events bus cannot connect to {where}: {reason}. {hint}")
    return database_failure(
        "The events bus", host=host, port=port, database=database, user=user, config_key=config_key, error=error
    )


def find_actionable(error: BaseException) -> BaseException | None:
    """The first error in ``error``'s cause/context chain (or startup result) marked ``actionable``."""
    for candidate in _chain(error):
        if getattr(candidate, "actionable", False):
            return candidate
    return None


def short_error(error: BaseException) -> str:
    """The message to show a person: the actionable error's if there is one, else ``error``'s own."""
    actionable = find_actionable(error)
    return str(actionable if actionable is not None else error)


def root_cause(error: BaseException) -> BaseException:
    """Return the driver's own error under SQLAlchemy's or redis' wrappers."""
    for candidate in _chain(error):
        if isinstance(candidate, (OSError, asyncio.TimeoutError, asyncpg.PostgresError)):
            return candidate
    return error


def _chain(error: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    pending = [error]
    while pending:
        current = pending.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        context = None if current.__suppress_context__ else current.__context__
        pending.extend(e for e in (current.__cause__, context, getattr(current, "orig", None)) if e is not None)
        result = getattr(current, "result", None)  # BackendStartupError: per-plugin failures
        for plugin in getattr(result, "plugins", None) or ():
            pending.extend(f for f in [plugin.failure, *(m.failure for m in plugin.modules)] if f is not None)


def _postgres_reason(
    error: BaseException, host: str | None, port: int | None, database: str | None, user: str | None, key: str
) -> tuple[str, str]:
    if isinstance(error, asyncpg.InvalidCatalogNameError):
        return (
            "the database does not exist",
            f"Create it (createdb -h {host or 'localhost'} -p {port or 5432} {database}, as a user allowed to), "
            f"give user '{user}' the CREATEDB privilege so Greenroom creates it, "
            f"or set {key}.database to one that exists.",
        )
    if isinstance(error, (asyncpg.InvalidPasswordError, asyncpg.InvalidAuthorizationSpecificationError)):
        return "authentication failed", f"Check {key}.user and {key}.password (and pg_hba.conf on the server)."
    if isinstance(error, asyncpg.InsufficientPrivilegeError):
        return f"permission denied ({error})", f"Grant the user the privilege, or check {key}.user."
    return _network_reason(error, "PostgreSQL", host, port, key)


def _network_reason(
    error: BaseException, service: str, host: str | None, port: int | None, key: str
) -> tuple[str, str]:
    if isinstance(error, socket.gaierror):
        return f"the host name '{host}' does not resolve", f"Check the host in {key}."
    if isinstance(error, (asyncio.TimeoutError, TimeoutError)):
        return "the connection timed out", f"Check that {host}:{port} is reachable (firewall, host in {key})."
    if (
        isinstance(error, ConnectionRefusedError)
        or "refused" in str(error).lower()
        or "Connect call failed" in str(error)
    ):
        return "connection refused", f"Is {service} running and listening there? Check the host and port in {key}."
    return f"{type(error).__name__}: {error}", f"Check {key}."
