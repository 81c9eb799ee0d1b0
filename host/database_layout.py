"""Which database each plugin uses, read from ``backend.database`` (no SQLAlchemy needed).

Kept apart from :mod:`host.database` so the gunicorn master can find the
SQLite directories it must lock without importing the database stack.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from host.config import Config, ConfigError

DEFAULT_SQLITE_DIRECTORY = ".greenroom/data"


class DataDirectoryError(ConfigError):
    """The SQLite data directory cannot be created; the message says which and what to check."""

    #: Loggers print the message instead of the traceback (see :mod:`host.logging`).
    actionable = True


class DatabaseLayout:
    """Per-plugin database settings: client, connection and SQLite file."""

    def __init__(self, config: Config) -> None:
        self._config = config

    def _plugin_config(self, plugin_id: str) -> Config:
        return self._config.get_config(f"backend.database.plugin.{plugin_id}", default={})

    def client_for(self, plugin_id: str) -> str:
        """Normalised client name for ``plugin_id``: ``sqlite`` or ``pg``."""
        raw = (
            self._plugin_config(plugin_id).get_optional_string("client")
            or self._config.get_optional_string("backend.database.client")
            or "sqlite"
        )
        if raw in ("pg", "postgres", "postgresql"):
            return "pg"
        if raw in ("sqlite", "sqlite3", "better-sqlite3"):
            return "sqlite"
        raise ValueError(f"Unsupported database client type '{raw}' specified for plugin '{plugin_id}'")

    def skip_migrations(self, plugin_id: str) -> bool:
        """Whether migrations are skipped for ``plugin_id``."""
        override = self._plugin_config(plugin_id).get_optional_boolean("skipMigrations")
        if override is not None:
            return override
        return bool(self._config.get_optional_boolean("backend.database.skipMigrations"))

    def _connection(self, plugin_id: str) -> Any:
        plugin_conn = self._plugin_config(plugin_id).get_optional("connection")
        if plugin_conn is not None:
            return plugin_conn
        return self._config.get_optional("backend.database.connection")

    def _connection_option(self, plugin_id: str, key: str) -> Any:
        conn = self._connection(plugin_id)
        return conn.get(key) if isinstance(conn, dict) else None

    def _sqlite_directory(self, plugin_id: str) -> Path:
        """The SQLite directory of ``plugin_id``, relative to the config file that names it."""
        own = self._plugin_config(plugin_id)
        source, key = (
            (own, "connection.directory")
            if own.get_optional("connection") is not None
            else (self._config, "backend.database.connection.directory")
        )
        if isinstance(source.get_optional(key), str):
            return source.get_optional_path(key) or Path(DEFAULT_SQLITE_DIRECTORY)
        return Path(DEFAULT_SQLITE_DIRECTORY)

    def sqlite_path(self, plugin_id: str) -> str:
        """The SQLite file of ``plugin_id`` (``:memory:`` when configured so)."""
        conn = self._connection(plugin_id) or {}
        if isinstance(conn, str):
            return conn
        if conn.get("filename") == ":memory:":
            return ":memory:"
        directory = self._sqlite_directory(plugin_id)
        try:
            Path(directory).mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as error:
            raise DataDirectoryError(
                f"Cannot create the SQLite data directory '{directory}': {error.strerror or error}. Check "
                "backend.database.connection.directory (or the plugin's own connection); the user running "
                "Greenroom must be able to create and write it."
            ) from error
        return str(Path(directory) / f"{plugin_id}.sqlite")

    def sqlite_directories(self) -> list[Path]:
        """The SQLite data directories the config names (the default and per-plugin ones), resolved."""
        overridden = self._config.get_config("backend.database.plugin", default={}).keys()
        # a plugin without its own database config uses the defaults; "-" is no plugin id
        found = {
            Path(self.sqlite_path(pid)).parent.resolve()
            for pid in ("-", *overridden)
            if self.client_for(pid) == "sqlite" and self.sqlite_path(pid) != ":memory:"
        }
        return sorted(found)
