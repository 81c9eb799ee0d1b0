"""Backstage-compatible error types and the JSON error body.

Every error a plugin raises is turned into the body Backstage clients expect::

    {"error": {"name": "NotFoundError", "message": "Not found"},
     "request": {"method": "GET", "url": "/x"},
     "response": {"statusCode": 404}}

Raise one of the classes below from a route handler; anything else becomes a
500 whose message is hidden from the client and logged instead, except that a
database that cannot be reached (:func:`unavailable_error`) becomes a 503 with
``Retry-After``.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from sqlalchemy import exc as sa_exc

#: Seconds a client is asked to wait (``Retry-After``) when the database is unavailable.
RETRY_AFTER_SECONDS = 5
#: SQL text kept in a logged database error; the rest (and every parameter) is cut.
MAX_LOGGED_SQL = 300


class BackstageError(Exception):
    """Base class for errors that map to an HTTP status and an error name."""

    status_code: int = 500
    #: Extra response headers (e.g. ``Retry-After``).
    headers: dict[str, str] = {}

    def __init__(self, message: str = "", cause: BaseException | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.cause = cause

    @property
    def name(self) -> str:
        """The error name sent on the wire (the class name)."""
        return type(self).__name__

    def __str__(self) -> str:
        if self.cause is not None:
            return f"{self.message}; caused by {format_error(self.cause)}"
        return self.message


class InputError(BackstageError):
    """The request was malformed (400)."""

    status_code = 400


class AuthenticationError(BackstageError):
    """The caller could not be authenticated (401)."""

    status_code = 401


class NotAllowedError(BackstageError):
    """The caller is authenticated but not allowed (403)."""

    status_code = 403


class NotFoundError(BackstageError):
    """The resource does not exist or is not visible to the caller (404)."""

    status_code = 404


class ConflictError(BackstageError):
    """The request conflicts with the current state (409)."""

    status_code = 409


class NotImplementedError_(BackstageError):
    """The operation is not implemented (501)."""

    status_code = 501

    @property
    def name(self) -> str:
        return "NotImplementedError"


class ServiceUnavailableError(BackstageError):
    """A dependency is not available yet (503)."""

    status_code = 503


class ForwardedError(BackstageError):
    """Wraps another error while keeping its name and status."""

    def __init__(self, message: str, cause: BaseException) -> None:
        super().__init__(message, cause)
        self.status_code = getattr(cause, "status_code", 500)

    @property
    def name(self) -> str:
        return getattr(self.cause, "name", type(self.cause).__name__)


class DatabaseUnavailableError(ServiceUnavailableError):
    """The database cannot be reached or written right now (503, ``Retry-After``).

    The wire name stays ``ServiceUnavailableError``; the cause is logged, never sent.
    """

    headers = {"Retry-After": str(RETRY_AFTER_SECONDS)}

    def __init__(self, cause: BaseException | None = None) -> None:
        super().__init__("The service is temporarily unavailable, try again later", cause)

    @property
    def name(self) -> str:
        return "ServiceUnavailableError"


#: SQLite errors that mean "cannot use the database now", not "bad statement".
_SQLITE_UNAVAILABLE = (
    "database is locked",
    "disk i/o error",
    "database or disk is full",
    "unable to open database file",
    "readonly database",
    "database table is locked",
)
#: asyncpg errors about the connection rather than the statement.
_ASYNCPG_UNAVAILABLE = {
    "InterfaceError",
    "ConnectionDoesNotExistError",
    "InternalClientError",
    "ConnectionFailureError",
    "PostgresConnectionError",
    "CannotConnectNowError",
    "TooManyConnectionsError",
    "AdminShutdownError",
    "CrashShutdownError",
}


def _chain(error: BaseException) -> list[BaseException]:
    """``error``, what it wraps (``orig``) and its causes/contexts, at most 10 deep."""
    found: list[BaseException] = []
    pending: list[BaseException | None] = [error]
    while pending and len(found) < 10:
        current = pending.pop(0)
        if current is None or any(current is seen for seen in found):
            continue
        found.append(current)
        pending.extend([getattr(current, "orig", None), getattr(current, "cause", None), current.__cause__])
    return found


def is_database_unavailable(error: BaseException) -> bool:
    """Whether ``error`` means the database is down, restarting, unreachable, full or locked.

    Covers SQLAlchemy's disconnect detection and pool timeouts, connection
    errors of asyncpg (SQLSTATE classes 08, 53 and 57P) and of the socket layer,
    and SQLite's locked/full/unreadable errors. A bad statement is not one.
    """
    for item in _chain(error):
        if isinstance(item, sa_exc.DBAPIError) and item.connection_invalidated:
            return True
        if isinstance(item, (sa_exc.TimeoutError, sa_exc.InterfaceError, sa_exc.DisconnectionError, OSError)):
            return True
        if type(item).__module__.startswith("asyncpg") and type(item).__name__ in _ASYNCPG_UNAVAILABLE:
            return True
        sqlstate = getattr(item, "sqlstate", None)
        if isinstance(sqlstate, str) and sqlstate.startswith(("08", "53", "57P")):
            return True
        if isinstance(item, sqlite3.OperationalError) and any(m in str(item).lower() for m in _SQLITE_UNAVAILABLE):
            return True
    return False


def unavailable_error(error: BaseException) -> DatabaseUnavailableError | None:
    """A 503 to answer instead of ``error`` when it means the database is unavailable, else ``None``."""
    if isinstance(error, DatabaseUnavailableError):
        return error
    return DatabaseUnavailableError(error) if is_database_unavailable(error) else None


def trim_for_log(error: BaseException) -> BaseException:
    """Shorten the SQL carried by a SQLAlchemy error (in place) so a log line stays small.

    Engines are created with ``hide_parameters=True``, so parameters never
    appear; the statement is cut to :data:`MAX_LOGGED_SQL` characters.
    """
    for item in _chain(error):
        if isinstance(item, sa_exc.StatementError):
            statement = item.statement or ""
            if len(statement) > MAX_LOGGED_SQL:
                item.statement = statement[:MAX_LOGGED_SQL] + f"... ({len(statement)} characters)"
            item.params = None
            item.hide_parameters = True
    return error


def format_error(error: BaseException) -> str:
    """Format an error the way Backstage does: ``Name: message``."""
    name = getattr(error, "name", None) or type(error).__name__
    return f"{name}: {error}"


def error_body(
    error: BackstageError | None,
    *,
    status: int,
    method: str,
    url: str,
    name: str | None = None,
    message: str | None = None,
) -> dict[str, Any]:
    """Build Backstage's JSON error body.

    Internal (5xx) errors that are not ``BackstageError`` instances never have
    their message exposed; callers pass ``name``/``message`` explicitly then.
    """
    err: dict[str, Any] = {
        "name": name or (error.name if error else "Error"),
        "message": message if message is not None else (error.message if error else ""),
    }
    if error is not None and error.cause is not None and isinstance(error, InputError):
        cause = error.cause
        cause_name = getattr(cause, "name", "Error")
        err["message"] = f"{error.message}; caused by {cause_name}: {cause}"
        # A cause may carry extra fields, as Node errors do (``code``, ``input``...).
        err["cause"] = {**getattr(cause, "fields", {}), "name": cause_name, "message": str(cause)}
    return {
        "error": err,
        "request": {"method": method, "url": url},
        "response": {"statusCode": status},
    }
