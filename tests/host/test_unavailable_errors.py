"""Which errors mean "the database is unavailable" (503) and which stay errors of the statement."""

from __future__ import annotations

import sqlite3

import asyncpg.exceptions as pg
import pytest
from sqlalchemy import exc as sa_exc

from host.errors import InputError, is_database_unavailable, trim_for_log


def _wrapped(orig: BaseException, kind: type[sa_exc.DBAPIError] = sa_exc.OperationalError) -> sa_exc.DBAPIError:
    return kind("SELECT 1", {"secret": "value"}, orig)


@pytest.mark.parametrize(
    "error",
    [
        _wrapped(sqlite3.OperationalError("database is locked")),
        _wrapped(sqlite3.OperationalError("database or disk is full")),
        _wrapped(sqlite3.OperationalError("disk I/O error")),
        _wrapped(sqlite3.OperationalError("attempt to write a readonly database")),
        _wrapped(pg.CannotConnectNowError("the database system is starting up")),
        _wrapped(pg.AdminShutdownError("terminating connection due to administrator command")),
        _wrapped(pg.TooManyConnectionsError("sorry, too many clients already")),
        _wrapped(
            pg.ConnectionDoesNotExistError("connection was closed in the middle of operation"), sa_exc.InterfaceError
        ),
        ConnectionRefusedError(111, "Connection refused"),
        sa_exc.TimeoutError("QueuePool limit of size 4 overflow 4 reached"),
        InputError("Failed", cause=_wrapped(pg.CannotConnectNowError("starting up"))),
    ],
)
def test_outages(error: BaseException) -> None:
    assert is_database_unavailable(error)


@pytest.mark.parametrize(
    "error",
    [
        _wrapped(sqlite3.OperationalError("LIKE or GLOB pattern too complex")),
        _wrapped(sqlite3.OperationalError("no such table: x")),
        _wrapped(pg.UniqueViolationError("duplicate key"), sa_exc.IntegrityError),
        _wrapped(pg.UndefinedTableError("relation does not exist"), sa_exc.ProgrammingError),
        ValueError("bad"),
    ],
)
def test_statement_errors_are_not_outages(error: BaseException) -> None:
    assert not is_database_unavailable(error)


def test_logged_sql_is_trimmed_and_parameters_hidden() -> None:
    error = sa_exc.ProgrammingError("SELECT " + "x, " * 2000, {"p": "secret-value"}, ValueError("boom"))
    text = str(trim_for_log(error))
    assert "secret-value" not in text
    assert len(text) < 1000
