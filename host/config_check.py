"""``greenroom config check``: every finding about a merged config, before anything starts.

* the host's own checks (clients, static tokens, bus vs workers);
* each installed feature's entry point imports (the error names the distribution);
* plugin and module ids are unique (naming both distributions);
* the config against the host's and every feature's schema
  (:mod:`host.config_schema`): types, enums, durations, existing catalog
  files; unknown keys are warnings with a "did you mean";
* with ``connect=True``, that every plugin's database and the events bus answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import difflib
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import Any

from host.backend import duplicate_feature_ids, feature_source, load_feature, matches_any
from host.config import Config, ConfigError
from host.config_schema import HOST_CONFIG_SCHEMA, Finding, check_sections
from host.features import BackendPlugin

GROUP = "greenroom.backend_features"


@dataclass
class InstalledFeature:
    """One entry point of :data:`GROUP`: where it comes from and what loading it gave."""

    entry_point: EntryPoint
    enabled: bool
    feature: Any = None
    error: BaseException | None = None

    @property
    def source(self) -> str:
        """``entry point 'x' of distribution 'pkg 1.0'``."""
        return feature_source(self.entry_point)


def installed_features(config: Config) -> list[InstalledFeature]:
    """Load every entry point of :data:`GROUP`; ``enabled`` follows ``backend.features``."""
    discovery = config.get_optional_boolean("backend.features.discovery") is not False
    include = config.get_optional_string_list("backend.features.include")
    exclude = config.get_optional_string_list("backend.features.exclude") or []
    found: list[InstalledFeature] = []
    seen: set[str] = set()
    for ep in sorted(entry_points(group=GROUP), key=lambda e: e.name):
        if ep.name in seen:
            continue
        seen.add(ep.name)
        enabled = discovery and (include is None or matches_any(ep.name, include)) and not matches_any(ep.name, exclude)
        item = InstalledFeature(ep, enabled)
        try:
            item.feature = load_feature(ep.load())
        except Exception as error:  # noqa: BLE001 - reported as a finding, never raised
            item.error = error
        found.append(item)
    return found


def check_config(config: Config, *, connect: bool = False) -> list[Finding]:
    """Every finding for ``config`` (see the module docstring)."""
    findings = [Finding("error", problem) for problem in host_problems(config)]
    features = installed_features(config)
    for item in features:
        if item.error is not None and item.enabled:
            findings.append(
                Finding(
                    "error",
                    f"Cannot load {item.source} ({item.entry_point.value}): {type(item.error).__name__}: {item.error}",
                )
            )
    loaded = [(item.feature, item.source) for item in features if item.feature is not None and item.enabled]
    findings.extend(Finding("error", message) for message in duplicate_feature_ids(loaded))
    schemas = dict(HOST_CONFIG_SCHEMA)
    for item in features:
        schemas.update(getattr(item.feature, "config_schema", None) or {})
    findings.extend(check_sections(config.as_dict(), schemas, context={"base_dir": Path.cwd(), "config": config}))
    plugin_ids = sorted({f.plugin_id for f, _ in loaded if isinstance(f, BackendPlugin)})
    findings.extend(unknown_plugin_ids(config, plugin_ids))
    if connect and not any(f.level == "error" for f in findings):
        findings.extend(asyncio.run(_connect(config, plugin_ids)))
    return findings


#: Config maps keyed by plugin id.
PER_PLUGIN_KEYS = ("backend.database.plugin", "backend.startup.plugins")


def unknown_plugin_ids(config: Config, plugin_ids: list[str]) -> list[Finding]:
    """Warnings for per-plugin settings (:data:`PER_PLUGIN_KEYS`) naming a plugin that does not run."""
    findings: list[Finding] = []
    for key in PER_PLUGIN_KEYS:
        section = config.get_optional(key)
        for plugin_id in section if isinstance(section, dict) else ():
            if plugin_id not in plugin_ids:
                message = f"Config key '{key}.{plugin_id}' names a plugin that is not installed or not enabled"
                close = difflib.get_close_matches(plugin_id, plugin_ids, n=1, cutoff=0.75)
                findings.append(Finding("warning", message + (f", did you mean '{close[0]}'?" if close else "")))
    return findings


def host_problems(config: Config) -> list[str]:
    """The host's own checks that a schema cannot express; return the problems found."""
    from host.auth.keys import static_key_set
    from host.auth.plugin import check_providers
    from host.auth.tokens import parse_external_access
    from host.cors import read_cors_options
    from host.database import DatabaseManager
    from host.event_buses import check_bus_for_workers
    from host.server_limits import ServerLimits

    problems: list[str] = []
    workers = 1
    with contextlib.suppress(ConfigError):  # the schema reports a mistyped value
        workers = int(config.get_optional_number("backend.workers") or 1)
    checks: list[Callable[[], object]] = [
        lambda: DatabaseManager(config).client_for("config-check"),
        lambda: parse_external_access(config),
        lambda: check_providers(config),
        lambda: static_key_set(config),
        lambda: check_bus_for_workers(config, workers),
        lambda: ServerLimits.from_config(config),
        lambda: read_cors_options(config),
    ]
    for check in checks:
        try:
            check()
        except (ConfigError, ValueError) as error:
            problems.append(str(error))
    return problems


async def _connect(config: Config, plugin_ids: list[str]) -> list[Finding]:
    """Connect each plugin's database and the bus as startup would; a finding per failure."""
    from host.connection_errors import CONNECTION_ERRORS, short_error
    from host.database import DatabaseManager
    from host.event_buses import bus_failure_for, bus_kind, create_bus
    from host.logging import Logger, create_root_logger

    findings: list[Finding] = []
    manager = DatabaseManager(config)
    try:
        for plugin_id in plugin_ids:
            try:
                await manager.for_plugin(plugin_id).get_engine()
            except Exception as error:  # noqa: BLE001 - every failure is a finding
                findings.append(Finding("error", short_error(error)))
    finally:
        await manager.dispose()
    if bus_kind(config) != "inprocess":
        logger: Logger = create_root_logger("error")
        bus = create_bus(config, manager, logger)
        try:
            await bus.start(_ignore)
        except Exception as error:  # noqa: BLE001 - every failure is a finding
            known = isinstance(error, CONNECTION_ERRORS) or type(error).__module__.startswith("redis")
            findings.append(Finding("error", str(bus_failure_for(config, error)) if known else short_error(error)))
        finally:
            await bus.stop()
    return findings


async def _ignore(_event: Any) -> None:
    return None
