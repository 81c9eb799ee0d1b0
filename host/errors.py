"""Backstage-compatible error types and the JSON error body.

Every error a plugin raises is turned into the body Backstage clients expect::

    {"error": {"name": "NotFoundError", "message": "Not found"},
     "request": {"method": "GET", "url": "/x"},
     "response": {"statusCode": 404}}

Raise one of the classes below from a route handler; anything else becomes a
500 whose message is hidden from the client and logged instead.
"""

from __future__ import annotations

from typing import Any


class BackstageError(Exception):
    """Base class for errors that map to an HTTP status and an error name."""

    status_code: int = 500

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
    def name(self) -> str:  # noqa: D102 - wire name without the trailing underscore
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
    def name(self) -> str:  # noqa: D102
        return getattr(self.cause, "name", type(self.cause).__name__)


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
        err["message"] = f"{error.message}; caused by Error: {cause}"
        err["cause"] = {"name": getattr(cause, "name", "Error"), "message": str(cause)}
    return {
        "error": err,
        "request": {"method": method, "url": url},
        "response": {"statusCode": status},
    }
