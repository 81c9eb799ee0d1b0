"""Backstage-style configuration: ``app-config.yaml`` files merged in order.

* Several files are deep-merged; later files win (lists are replaced).
* ``${ENV_VAR}`` anywhere in a string is substituted from the environment;
  ``$${X}`` escapes to a literal ``${X}``. A missing variable is an error that
  names the variable and the key. ``$env: NAME`` and ``$file: path`` objects
  are supported too.
* Keys are read with dotted paths and typed getters
  (``config.get_string("backend.baseUrl")``).
* A relative file-system path read with :meth:`Config.get_optional_path`
  (and a ``$file`` include) is relative to the directory of the config file
  that set it, not to the working directory; values given as ``overrides``
  are relative to the working directory.
* Values read through :meth:`Config.secret_values` (for example tokens and
  passwords) are known to the logger, which redacts them.
"""

from __future__ import annotations

import contextlib
import copy
import os
import re
from collections.abc import Iterable, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

import yaml

_ENV_PATTERN = re.compile(r"\$(\$?)\{([^}]+)\}")
_SECRET_KEYS = re.compile(r"(password|secret|token|key|credentials?)$", re.IGNORECASE)


def is_secret_key(key: str) -> bool:
    """Whether a config key (its last part) holds a secret: its value is never shown or logged."""
    return bool(_SECRET_KEYS.search(key.rsplit(".", 1)[-1]))


_MISSING = object()
_T = TypeVar("_T")

DEFAULT_CONFIG_PATH = Path(__file__).with_name("default-config.yaml")


class ConfigError(ValueError):
    """Raised for a missing or mistyped configuration value."""


class Config:
    """Read-only view of a merged configuration tree."""

    def __init__(
        self, data: Mapping[str, Any] | None = None, prefix: str = "", origins: dict[str, Path] | None = None
    ) -> None:
        self._data: dict[str, Any] = dict(data or {})
        self._prefix = prefix
        #: Full key (``a.b``, ``a.list[0].c``) -> directory of the config file that set it (shared by sub-configs).
        self._origins: dict[str, Path] = {} if origins is None else origins

    # -- construction --------------------------------------------------------

    @classmethod
    def load(
        cls,
        paths: Iterable[str | Path] = (),
        *,
        include_defaults: bool = True,
        overrides: Mapping[str, Any] | None = None,
        env: Mapping[str, str] | None = None,
    ) -> Config:
        """Load and merge config files (the embedded defaults first, then ``paths``).

        ``overrides`` is merged last; it is how tests and the CLI inject values.
        """
        env = os.environ if env is None else env
        merged: dict[str, Any] = {}
        origins: dict[str, Path] = {}
        problems: list[str] = []  # every missing variable or file, reported together
        files = [DEFAULT_CONFIG_PATH] if include_defaults else []
        files += [Path(p) for p in paths]
        for path in files:
            try:
                raw = yaml.safe_load(path.read_text()) or {}
            except FileNotFoundError as error:
                raise ConfigError(f"Config file not found: {path}") from error
            except yaml.YAMLError as error:
                raise ConfigError(f"Invalid YAML in config file {path}: {error}") from error
            if not isinstance(raw, dict):
                raise ConfigError(f"Config file {path} must contain a mapping at the top level")
            substituted = _substitute(raw, env, path.parent, "", problems)
            # the embedded defaults' relative paths (the SQLite directory) stay relative to the working directory
            _record_origins(
                substituted, Path.cwd() if path == DEFAULT_CONFIG_PATH else path.parent.resolve(), "", origins
            )
            merged = deep_merge(merged, substituted)
        if problems:
            raise ConfigError("; ".join(problems))
        if overrides:
            _record_origins(overrides, Path.cwd(), "", origins)
            merged = deep_merge(merged, dict(overrides))
        return cls(merged, origins=origins)

    # -- reads ---------------------------------------------------------------

    def get_optional(self, key: str, default: Any = None) -> Any:
        """Return the raw value at dotted ``key`` or ``default``."""
        node: Any = self._data
        for part in key.split(".") if key else []:
            if not isinstance(node, dict) or part not in node:
                return default
            node = node[part]
        return node

    def has(self, key: str) -> bool:
        """Whether ``key`` is present."""
        return self.get_optional(key, _MISSING) is not _MISSING

    def get(self, key: str) -> Any:
        """Return the value at ``key``; raise :class:`ConfigError` if missing."""
        value = self.get_optional(key, _MISSING)
        if value is _MISSING:
            raise ConfigError(f"Missing required config value at '{self._full(key)}'")
        return value

    def get_string(self, key: str) -> str:
        """Return a required string."""
        return self._typed(key, self.get(key), str, "string")

    def get_optional_string(self, key: str) -> str | None:
        """Return a string or ``None``."""
        value = self.get_optional(key)
        return None if value is None else self._typed(key, value, str, "string")

    def get_number(self, key: str) -> float:
        """Return a required number."""
        return self._number(key, self.get(key))

    def get_optional_number(self, key: str) -> float | None:
        """Return a number or ``None``."""
        value = self.get_optional(key)
        return None if value is None else self._number(key, value)

    def get_boolean(self, key: str) -> bool:
        """Return a required boolean."""
        return self._typed(key, self.get(key), bool, "boolean")

    def get_optional_boolean(self, key: str) -> bool | None:
        """Return a boolean or ``None``; the strings ``true``/``false`` are accepted."""
        value = self.get_optional(key)
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        return None if value is None else self._typed(key, value, bool, "boolean")

    def get_optional_string_list(self, key: str) -> list[str] | None:
        """Return a list of strings or ``None``."""
        value = self.get_optional(key)
        if value is None:
            return None
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"Invalid type in config for key '{self._full(key)}', expected string-array")
        return list(value)

    def get_config(self, key: str, default: Any = _MISSING) -> Config:
        """Return the sub-tree at ``key`` as a :class:`Config`."""
        value = self.get_optional(key, _MISSING)
        if value is _MISSING:
            if default is _MISSING:
                raise ConfigError(f"Missing required config value at '{self._full(key)}'")
            value = default
        if not isinstance(value, dict):
            raise ConfigError(f"Invalid type in config for key '{self._full(key)}', expected object")
        return Config(value, self._full(key), self._origins)

    def get_config_list(self, key: str) -> list[Config]:
        """Return a list of objects at ``key`` (empty when missing)."""
        value = self.get_optional(key) or []
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise ConfigError(f"Invalid type in config for key '{self._full(key)}', expected object-array")
        return [Config(v, f"{self._full(key)}[{i}]", self._origins) for i, v in enumerate(value)]

    def get_optional_path(self, key: str) -> Path | None:
        """A file-system path, or ``None``: a relative one is resolved against :meth:`base_dir` of ``key``."""
        value = self.get_optional_string(key)
        if not value:
            return None
        path = Path(value)
        return path if path.is_absolute() else self.base_dir(key) / path

    def base_dir(self, key: str) -> Path:
        """The directory of the config file that set ``key`` (the working directory when none did)."""
        return self._origins.get(self._full(key)) or Path.cwd()

    def get_optional_duration(self, key: str) -> timedelta | None:
        """Read a duration: ``{days: 1, hours: 2}``, ISO-8601 (``P1D``) or ``"1y"``-style text."""
        value = self.get_optional(key)
        if value is None:
            return None
        try:
            return parse_duration(value)
        except ValueError as error:
            raise ConfigError(f"Invalid duration at '{self._full(key)}': {error}") from error

    def keys(self) -> list[str]:
        """Keys at this level."""
        return list(self._data.keys())

    def as_dict(self) -> dict[str, Any]:
        """A deep copy of the underlying data."""
        return copy.deepcopy(self._data)

    def secret_values(self) -> list[str]:
        """Every string value stored under a key that looks secret, and every password inside a URL
        (for log redaction)."""
        found: list[str] = []

        def walk(node: Any, key: str) -> None:
            if isinstance(node, dict):
                for k, v in node.items():
                    walk(v, k)
            elif isinstance(node, list):
                for v in node:
                    walk(v, key)
            elif isinstance(node, str) and is_secret_key(key) and len(node) >= 4:
                found.append(node)
            elif isinstance(node, str) and "://" in node:
                with contextlib.suppress(ValueError):
                    password = urlsplit(node).password
                    if password and len(password) >= 4:
                        found.extend({password, unquote(password)})

        walk(self._data, "")
        return found

    # -- helpers -------------------------------------------------------------

    def _full(self, key: str) -> str:
        return f"{self._prefix}.{key}" if self._prefix and key else (self._prefix or key)

    def _typed(self, key: str, value: Any, kind: type[_T], label: str) -> _T:
        if kind is not bool and isinstance(value, bool):
            raise ConfigError(f"Invalid type in config for key '{self._full(key)}', got boolean, wanted {label}")
        if not isinstance(value, kind):
            raise ConfigError(
                f"Invalid type in config for key '{self._full(key)}', got {type(value).__name__}, wanted {label}"
            )
        return value

    def _number(self, key: str, value: Any) -> float:
        if isinstance(value, bool):
            raise ConfigError(f"Invalid type in config for key '{self._full(key)}', got boolean, wanted number")
        if isinstance(value, (int, float)):
            return value
        if isinstance(value, str):
            try:
                return float(value) if "." in value else int(value)
            except ValueError:
                pass
        raise ConfigError(f"Invalid type in config for key '{self._full(key)}', wanted number")


def deep_merge(base: dict[str, Any], other: Mapping[str, Any]) -> dict[str, Any]:
    """Merge ``other`` into a copy of ``base``; nested dicts merge, everything else replaces."""
    result = copy.deepcopy(base)
    for key, value in other.items():
        if isinstance(value, Mapping) and isinstance(result.get(key), dict):
            result[key] = deep_merge(result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result


def _record_origins(node: Any, base_dir: Path, key: str, origins: dict[str, Path]) -> None:
    """Record ``base_dir`` as the origin of every value under ``key`` (later files overwrite)."""
    if isinstance(node, Mapping):
        for child, value in node.items():
            _record_origins(value, base_dir, f"{key}.{child}" if key else str(child), origins)
    elif isinstance(node, list):
        origins[key] = base_dir
        for index, value in enumerate(node):
            _record_origins(value, base_dir, f"{key}[{index}]", origins)
    else:
        origins[key] = base_dir


def _substitute(node: Any, env: Mapping[str, str], base_dir: Path, path: str, problems: list[str]) -> Any:
    """Resolve ``${VAR}``, ``$env`` and ``$file`` in ``node``; append what is missing to ``problems``."""
    if isinstance(node, dict):
        if set(node) == {"$env"}:
            return _env_value(str(node["$env"]), env, path, problems)
        if set(node) == {"$file"}:
            file = base_dir / str(node["$file"])
            try:
                return file.read_text()
            except OSError as error:
                problems.append(f"Cannot read file '{file}' (config key '{path}'): {error.strerror or error}")
                return ""
        return {k: _substitute(v, env, base_dir, f"{path}.{k}" if path else k, problems) for k, v in node.items()}
    if isinstance(node, list):
        return [_substitute(v, env, base_dir, f"{path}[{i}]", problems) for i, v in enumerate(node)]
    if isinstance(node, str) and "${" in node:

        def replace(match: re.Match[str]) -> str:
            if match.group(1):
                return "${" + match.group(2) + "}"
            return _env_value(match.group(2).strip(), env, path, problems)

        return _ENV_PATTERN.sub(replace, node)
    return node


def _env_value(name: str, env: Mapping[str, str], path: str, problems: list[str]) -> str:
    if name not in env:
        problems.append(f"Environment variable '{name}' is not set (config key '{path}')")
        return ""
    return env[name]


_DURATION_UNITS = {
    "ms": timedelta(milliseconds=1),
    "milliseconds": timedelta(milliseconds=1),
    "s": timedelta(seconds=1),
    "seconds": timedelta(seconds=1),
    "m": timedelta(minutes=1),
    "minutes": timedelta(minutes=1),
    "h": timedelta(hours=1),
    "hours": timedelta(hours=1),
    "d": timedelta(days=1),
    "days": timedelta(days=1),
    "w": timedelta(weeks=1),
    "weeks": timedelta(weeks=1),
    "months": timedelta(days=30),
    "y": timedelta(days=365),
    "years": timedelta(days=365),
}
_ISO_DURATION = re.compile(
    r"^P(?:(?P<years>\d+)Y)?(?:(?P<months>\d+)M)?(?:(?P<weeks>\d+)W)?(?:(?P<days>\d+)D)?"
    r"(?:T(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?$"
)
_TEXT_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-z]+)\s*$", re.IGNORECASE)


def parse_duration(value: Any) -> timedelta:
    """Parse a Backstage duration (object, ISO-8601 string, ``"30 days"``/``"1y"``, or milliseconds)."""
    if isinstance(value, bool):
        raise ValueError("a boolean is not a duration")
    if isinstance(value, (int, float)):
        return timedelta(milliseconds=value)
    if isinstance(value, dict):
        total = timedelta()
        for unit, amount in value.items():
            if unit not in _DURATION_UNITS or not isinstance(amount, (int, float)) or isinstance(amount, bool):
                raise ValueError(f"unknown duration part {unit!r}")
            total += _DURATION_UNITS[unit] * amount
        return total
    if isinstance(value, str):
        iso = _ISO_DURATION.match(value)
        if iso and value != "P":
            parts = {k: float(v) for k, v in iso.groupdict().items() if v}
            return sum((_DURATION_UNITS[k] * v for k, v in parts.items()), timedelta())
        text = _TEXT_DURATION.match(value)
        if text and text.group(2).lower() in _DURATION_UNITS:
            return _DURATION_UNITS[text.group(2).lower()] * float(text.group(1))
        if text and text.group(2).lower() + "s" in _DURATION_UNITS:
            return _DURATION_UNITS[text.group(2).lower() + "s"] * float(text.group(1))
    raise ValueError(f"cannot parse {value!r} as a duration")
