"""Refreshing the catalog: read every location, derive relations, store the result."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from host import Config, ConfigError
from plugin_catalog.ingestion import IngestionError, LocationSpec, location_targets, read_locations
from plugin_catalog.relations import build_relations
from plugin_catalog.store import CatalogStore, KeepLastGood, RefreshStats


@dataclass
class RefreshReport:
    """Outcome of one refresh: counts and every ingestion error."""

    entities: int
    stats: RefreshStats
    errors: list[IngestionError] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """JSON form (the body of ``POST /refresh``)."""
        return {
            "entities": self.entities,
            "added": self.stats.added,
            "updated": self.stats.updated,
            "removed": self.stats.removed,
            "kept": self.stats.kept,
            "errors": [error.as_dict() for error in self.errors],
        }


def locations_from_config(config: Config) -> list[LocationSpec]:
    """Read ``catalog.locations`` (a list of ``{type, target}``); a relative ``file`` target is
    made absolute against the directory of the config file that set it."""
    locations = []
    for entry in config.get_config_list("catalog.locations"):
        kind = entry.get_optional_string("type") or "file"
        target = entry.get_string("target")
        if kind == "file" and target:
            target = str(entry.get_optional_path("target"))
        locations.append(LocationSpec(kind, target))
    if not all(location.target for location in locations):
        raise ConfigError("catalog.locations entries need a non-empty target")
    return locations


class CatalogRefresher:
    """Runs refreshes one at a time and remembers the last report."""

    def __init__(self, store: CatalogStore, locations: list[LocationSpec], base_dir: Path, logger: Any) -> None:
        self._store = store
        self._locations = locations
        self._base_dir = base_dir
        self._logger = logger
        self._lock = asyncio.Lock()
        self.last_report: RefreshReport | None = None

    async def refresh(self) -> RefreshReport:
        """Re-read every location and replace the stored catalog with what was read.

        Invalid entities are logged and reported, never raised; the valid
        ones are stored. A location that cannot be read or parsed keeps the
        entities it gave last time (reported as ``kept``): only a location
        read successfully removes entities.
        """
        async with self._lock:
            result = await asyncio.to_thread(read_locations, self._locations, self._base_dir)
            keep = KeepLastGood(result.failed_locations, result.read, location_targets, result.invalid)
            stats = await self._store.replace_all(result.entities, build_relations, keep)
            for error in result.errors:
                self._logger.warning(
                    "Skipped invalid catalog entry at %s: %s",
                    error.location,
                    error.reason,
                    location=error.location,
                    entity_ref=error.entity_ref,
                )
            if stats.kept:
                self._logger.warning(
                    "Kept %s entities of catalog locations that could not be read: %s",
                    stats.kept,
                    ", ".join(sorted(result.failed_locations)),
                )
            entities = len(result.entities) + stats.kept
            self._logger.info(
                "Catalog refreshed: %s entities, %s added, %s updated, %s removed, %s kept, %s errors",
                entities,
                stats.added,
                stats.updated,
                stats.removed,
                stats.kept,
                len(result.errors),
            )
            self.last_report = RefreshReport(entities, stats, result.errors)
            return self.last_report
