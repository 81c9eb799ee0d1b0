"""Structured logging: a root logger and one child per plugin.

Log lines are JSON (``backend.logger.format: json``, the default when
``auth.environment: production``) or readable text (``text``). Every value that config marks
as secret (tokens, passwords, keys) is replaced by ``***`` before a line is
written (by the :class:`Redactor` the root logger owns; no process-wide state), and so is any bearer token and the password of any URL
(``postgresql://user:***@host``).

A JSON line holds ``timestamp`` (UTC, milliseconds), ``level``, ``message``,
``pid``, the logger's fields (``plugin``, ...) and, inside a request, its
``requestId``. An error marked ``actionable`` (a connection failure that says
what to check) is logged as its message alone; its traceback is written only
at debug level. gunicorn's and uvicorn's own lines use the same format
(:func:`gunicorn_logger_class`).
"""

from __future__ import annotations

import contextvars
import logging
import os
import re
import sys
import threading
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import orjson
from gunicorn.glogging import Logger as _GunicornBaseLogger

_LEVELS = {
    "error": logging.ERROR,
    "warn": logging.WARNING,
    "warning": logging.WARNING,
    "info": logging.INFO,
    "debug": logging.DEBUG,
}
_BEARER = re.compile(r"(Bearer\s+)[A-Za-z0-9\-_.~+/=]+", re.IGNORECASE)
# scheme://user:PASSWORD@host - the user part may be empty (redis://:PASSWORD@host)
_URL_PASSWORD = re.compile(r"(\b[a-z][a-z0-9+.\-]*://[^:/?#@\s]*:)[^@/?#\s]+(?=@)", re.IGNORECASE)


def redact_url_passwords(text: str) -> str:
    """Replace the password of every ``scheme://user:password@host`` URL in ``text`` with ``***``."""
    return _URL_PASSWORD.sub(r"\1***", text)


class Redactor:
    """Replaces known secret strings, bearer tokens and passwords inside URLs with ``***``."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: set[str] = set()
        self._lock = threading.Lock()
        self._pattern: re.Pattern[str] | None = None
        self.add(secrets)

    def add(self, secrets: Iterable[str]) -> None:
        """Register more secret values."""
        with self._lock:
            self._secrets.update(s for s in secrets if s and len(s) >= 4)
            ordered = sorted(self._secrets, key=len, reverse=True)
            self._pattern = re.compile("|".join(re.escape(s) for s in ordered)) if ordered else None

    def __call__(self, text: str) -> str:
        """Return ``text`` with every secret replaced."""
        if self._pattern is not None:
            text = self._pattern.sub("***", text)
        return redact_url_passwords(_BEARER.sub(r"\1***", text))


#: The id of the request being served (set by :class:`host.access_log.AccessLog`), on every line logged for it.
REQUEST_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar("greenroom_request_id", default=None)


def _timestamp(record: logging.LogRecord) -> str:
    return datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _error_text(formatter: logging.Formatter, record: logging.LogRecord) -> str | None:
    """The traceback, or only the message of an actionable error unless debug logging is on."""
    if not record.exc_info or record.exc_info[1] is None:
        return None
    from host.connection_errors import find_actionable

    actionable = find_actionable(record.exc_info[1])
    if actionable is not None and not logging.getLogger("greenroom").isEnabledFor(logging.DEBUG):
        return f"{getattr(actionable, 'name', type(actionable).__name__)}: {actionable}"
    return formatter.formatException(record.exc_info)


class _Formatter(logging.Formatter):
    """Redacts with the redactor of the :class:`Logger` that wrote the line, else with its own."""

    def __init__(self, redactor: Redactor | None = None) -> None:
        super().__init__()
        self.redactor = redactor or Redactor()

    def _redact(self, record: logging.LogRecord, text: str) -> str:
        redactor = getattr(record, "greenroom_redactor", None) or self.redactor
        return str(redactor(text))


class _JsonFormatter(_Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "timestamp": _timestamp(record),
            "level": record.levelname.lower(),
            "message": record.getMessage(),
            "pid": record.process,
        }
        fields = getattr(record, "fields", None)
        if fields is None:  # a line from another library (gunicorn, uvicorn)
            entry["service"] = record.name.split(".")[0]
        else:
            entry.update(fields)
        request_id = REQUEST_ID.get()
        if request_id is not None:
            entry.setdefault("requestId", request_id)
        error = _error_text(self, record)
        if error is not None:
            entry["error"] = error
        return self._redact(record, orjson.dumps(entry, default=str).decode())


class _TextFormatter(_Formatter):
    def format(self, record: logging.LogRecord) -> str:
        fields = getattr(record, "fields", None) or {"service": record.name.split(".")[0]}
        plugin = fields.get("plugin") or fields.get("service", "greenroom")
        extra = " ".join(f"{k}={v}" for k, v in fields.items() if k not in ("plugin", "service"))
        stamp = _timestamp(record)[11:23]
        line = f"{stamp} {plugin} {record.levelname.lower()} {record.getMessage()}"
        if extra:
            line += f" {extra}"
        request_id = REQUEST_ID.get()
        if request_id is not None and "requestId" not in fields:
            line += f" requestId={request_id}"
        error = _error_text(self, record)
        if error is not None:
            line += "\n" + error
        return self._redact(record, line)


class Logger:
    """A structured logger: ``logger.info("sent %s", name, count=3)``; ``child(plugin="x")`` adds fields.

    The message is formatted lazily with ``%`` and ``args`` (as in :mod:`logging`), only when the
    line is written; keyword arguments become the line's fields.
    """

    def __init__(
        self, base: logging.Logger, fields: dict[str, Any] | None = None, redactor: Redactor | None = None
    ) -> None:
        self._base = base
        self.fields = dict(fields or {})
        #: What this logger and its children hide; add a secret learnt later with ``redactor.add``.
        self.redactor = redactor or Redactor()

    def child(self, **fields: Any) -> Logger:
        """Return a logger that adds ``fields`` to every line (and shares this one's redactor)."""
        return Logger(self._base, {**self.fields, **fields}, self.redactor)

    def _log(self, level: int, message: str, args: tuple[Any, ...], exc_info: Any, fields: dict[str, Any]) -> None:
        if not self._base.isEnabledFor(level):
            return
        if isinstance(exc_info, BaseException):
            exc_info = (type(exc_info), exc_info, exc_info.__traceback__)
        request_id = REQUEST_ID.get()
        if request_id is not None:  # captured now: a handler may format the line later
            fields = {**fields, "requestId": request_id}
        extra = {"fields": {**self.fields, **fields}, "greenroom_redactor": self.redactor}
        self._base.log(level, message, *args, exc_info=exc_info, extra=extra)

    def debug(self, message: str, *args: Any, **fields: Any) -> None:
        """Log at debug level."""
        self._log(logging.DEBUG, message, args, None, fields)

    def info(self, message: str, *args: Any, **fields: Any) -> None:
        """Log at info level."""
        self._log(logging.INFO, message, args, None, fields)

    def warning(self, message: str, *args: Any, exc_info: Any = None, **fields: Any) -> None:
        """Log at warning level."""
        self._log(logging.WARNING, message, args, exc_info, fields)

    warn = warning

    def error(self, message: str, *args: Any, exc_info: Any = None, **fields: Any) -> None:
        """Log at error level; pass ``exc_info=error`` to include a traceback."""
        self._log(logging.ERROR, message, args, exc_info, fields)


def create_root_logger(level: str | None = None, fmt: str | None = None, secrets: Iterable[str] = ()) -> Logger:
    """Configure the ``greenroom`` logging tree and return the root :class:`Logger`.

    The logger owns a :class:`Redactor` of ``secrets``, shared by its children; lines of other
    loggers are redacted with it too (the most recent root logger's, in a process running several).
    """
    redactor = Redactor(secrets)
    base = logging.getLogger("greenroom")
    level_name = (level or os.environ.get("LOG_LEVEL") or "info").lower()
    if level_name not in _LEVELS:
        raise ValueError(f"Invalid log level '{level_name}', must be one of error, warn, info, debug")
    base.setLevel(_LEVELS[level_name])
    fmt = fmt or "text"
    if not any(getattr(h, "_greenroom", False) for h in base.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler._greenroom = True  # type: ignore[attr-defined]
        base.addHandler(handler)
        base.propagate = False
    for existing in base.handlers:
        if getattr(existing, "_greenroom", False):
            existing.setFormatter(_JsonFormatter(redactor) if fmt == "json" else _TextFormatter(redactor))
    return Logger(base, {"service": "greenroom"}, redactor)


def gunicorn_logger_class(fmt: str, secrets: Iterable[str] = ()) -> type:
    """A gunicorn ``logger_class`` writing gunicorn's lines (and its uvicorn workers') in format ``fmt``.

    ``secrets`` (the config's secret values) are redacted from them.
    """
    redactor = Redactor(secrets)

    class GunicornLogger(_GunicornBaseLogger):  # type: ignore[misc]
        def setup(self, cfg: Any) -> None:
            super().setup(cfg)
            formatter = _JsonFormatter(redactor) if fmt == "json" else _TextFormatter(redactor)
            for handler in self.error_log.handlers:
                handler.setFormatter(formatter)

    return GunicornLogger
