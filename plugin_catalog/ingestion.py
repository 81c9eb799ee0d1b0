"""Reading entities from ``catalog.locations``.

Each location is ``{type: file, target: path}``; a file may hold several YAML
documents. ``kind: Location`` entities pull in more files through
``spec.target``/``spec.targets``, resolved relative to the file that declares
them. Problems (a missing file, bad YAML, an invalid entity, a duplicate ref)
become :class:`IngestionError` records; they never stop the rest of the
ingestion.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from plugin_catalog.models import EntityValidationError, validate_entity
from plugin_catalog.refs import entity_ref_of
from plugin_catalog.relations import outgoing_relations

#: libyaml's loader when PyYAML was built with it (about ten times faster), else the pure-Python one.
_YAML_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

MANAGED_BY_LOCATION = "backstage.io/managed-by-location"
MANAGED_BY_ORIGIN_LOCATION = "backstage.io/managed-by-origin-location"


@dataclass(frozen=True)
class LocationSpec:
    """One place to read entities from."""

    type: str
    target: str

    def __str__(self) -> str:
        return f"{self.type}:{self.target}"


@dataclass(frozen=True)
class IngestionError:
    """An entity or location that could not be ingested, and why."""

    location: str
    reason: str
    entity_ref: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON form used in logs and the refresh response."""
        out: dict[str, Any] = {"location": self.location, "reason": self.reason}
        if self.entity_ref:
            out["entityRef"] = self.entity_ref
        return out


@dataclass
class IngestionResult:
    """The valid entities read (in order, unique by ref) and the errors met."""

    entities: list[dict[str, Any]] = field(default_factory=list)
    errors: list[IngestionError] = field(default_factory=list)


def read_locations(locations: Iterable[LocationSpec], base_dir: Path) -> IngestionResult:
    """Read every location (relative file targets resolve against ``base_dir``).

    Blocking file I/O: call it through :func:`asyncio.to_thread`.
    """
    reader = _Reader()
    for location in locations:
        reader.read(location, base_dir, origin=None)
    return reader.result


class _Reader:
    def __init__(self) -> None:
        self.result = IngestionResult()
        self._seen_refs: dict[str, str] = {}
        self._seen_files: set[Path] = set()

    def read(self, location: LocationSpec, base_dir: Path, origin: str | None) -> None:
        if location.type != "file":
            self._error(str(location), f"unsupported location type '{location.type}', only 'file' is supported")
            return
        path = (base_dir / location.target).resolve()
        where = f"file:{path}"
        if path in self._seen_files:
            return
        self._seen_files.add(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as error:
            self._error(where, f"cannot read file: {error.strerror or error}")
            return
        origin = origin or where
        try:
            for index, document in enumerate(yaml.load_all(text, Loader=_YAML_LOADER)):
                if document is not None:
                    self._add(document, f"{where}#{index}", where, origin, path.parent)
        except yaml.YAMLError as error:
            self._error(where, f"invalid YAML: {error}")

    def _add(self, document: Any, position: str, where: str, origin: str, directory: Path) -> None:
        try:
            entity = validate_entity(document)
            outgoing_relations(entity)
        except EntityValidationError as error:
            self._error(position, str(error), _guess_ref(document))
            return
        ref = entity_ref_of(entity)
        if ref in self._seen_refs:
            self._error(position, f"duplicate entity, already defined at {self._seen_refs[ref]}", ref)
            return
        self._seen_refs[ref] = position
        annotations = entity["metadata"].setdefault("annotations", {})
        annotations.setdefault(MANAGED_BY_LOCATION, where)
        annotations.setdefault(MANAGED_BY_ORIGIN_LOCATION, origin)
        self.result.entities.append(entity)
        if ref.startswith("location:"):
            spec = entity.get("spec") or {}
            targets = ([spec["target"]] if spec.get("target") else []) + list(spec.get("targets") or [])
            for target in targets:
                self.read(LocationSpec(spec.get("type") or "file", target), directory, origin)

    def _error(self, location: str, reason: str, entity_ref: str | None = None) -> None:
        self.result.errors.append(IngestionError(location, reason, entity_ref))


def _guess_ref(document: Any) -> str | None:
    """Best-effort ref of an invalid document, for the error report."""
    try:
        return entity_ref_of(document)
    except Exception:  # noqa: BLE001 - the document is invalid; any failure means "unknown"
        return None
