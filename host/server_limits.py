"""The resolved ``backend.limits`` values (see :mod:`host.limits` for the keys).

Apart from :mod:`host.limits` (which holds the ASGI body limit and imports
Falcon): gunicorn's master builds the worker objects, which read these, and
should not import the web stack it never uses.
"""

from __future__ import annotations

import os
import resource
from dataclasses import dataclass

from host.config import Config

__all__ = [
    "DEFAULT_MAX_CONNECTIONS",
    "RESERVED_FILES",
    "ServerLimits",
    "config_paths_from_env",
    "default_max_connections",
]

#: File descriptors kept free for database connections, log files and the listener.
RESERVED_FILES = 128
DEFAULT_MAX_CONNECTIONS = 1000


def default_max_connections() -> int:
    """1,000, or fewer when the process may open few files (``RLIMIT_NOFILE`` minus :data:`RESERVED_FILES`)."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return DEFAULT_MAX_CONNECTIONS
    return max(16, min(DEFAULT_MAX_CONNECTIONS, soft - RESERVED_FILES))


@dataclass(frozen=True)
class ServerLimits:
    """The resolved ``backend.limits`` values."""

    max_body_bytes: int = 100 * 1024
    max_header_bytes: int = 16 * 1024
    headers_timeout: float = 60.0
    keep_alive_timeout: float = 5.0
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    max_websocket_message_bytes: int = 64 * 1024

    @classmethod
    def from_config(cls, config: Config) -> ServerLimits:
        """Read ``backend.limits`` (missing keys keep their defaults); reject non-positive values."""
        limits = config.get_config("backend.limits", default={})
        defaults = cls()

        def number(key: str, default: float) -> float:
            value = limits.get_optional_number(key)
            if value is None:
                return default
            if value <= 0:
                raise ValueError(f"backend.limits.{key} must be a positive number, got {value}")
            return value

        def seconds(key: str, default: float) -> float:
            value = limits.get_optional_duration(key)
            if value is None:
                return default
            if value.total_seconds() <= 0:
                raise ValueError(f"backend.limits.{key} must be a positive duration")
            return value.total_seconds()

        return cls(
            max_body_bytes=int(number("maxBodyBytes", defaults.max_body_bytes)),
            max_header_bytes=int(number("maxHeaderBytes", defaults.max_header_bytes)),
            headers_timeout=seconds("headersTimeout", defaults.headers_timeout),
            keep_alive_timeout=seconds("keepAliveTimeout", defaults.keep_alive_timeout),
            max_connections=int(number("maxConnections", default_max_connections())),
            max_websocket_message_bytes=int(number("maxWebSocketMessageBytes", defaults.max_websocket_message_bytes)),
        )


def config_paths_from_env() -> list[str]:
    """Config files named in ``GREENROOM_CONFIG`` (separated by ``os.pathsep``)."""
    raw = os.environ.get("GREENROOM_CONFIG", "")
    return [p for p in raw.split(os.pathsep) if p]
