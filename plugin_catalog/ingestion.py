"""Reading entities from ``catalog.locations``.

Each location is ``{type: file, target: path}``; a file may hold several YAML
documents. ``kind: Location`` entities pull in more files through
``spec.target``/``spec.targets``, resolved relative to the file that declares
them. Problems (a missing file, bad YAML, an invalid entity, a duplicate ref)
become :class:`IngestionError` records; they never stop the rest of the
ingestion.

Like Backstage, every configured location also becomes a ``Location`` entity
named ``generated-<sha1 of "type:target">`` (see :func:`location_entity`). A
file that cannot be read or parsed is recorded in
:attr:`IngestionResult.failed_locations`, so a refresh can keep the entities
it produced last time.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from host import entity_ref_of
from plugin_catalog.models import (
    MANAGED_BY_LOCATION,
    MANAGED_BY_ORIGIN_LOCATION,
    EntityValidationError,
    validate_entity,
)
from plugin_catalog.relations import outgoing_relations

#: libyaml's loader when PyYAML was built with it (about ten times faster), else the pure-Python one.
_YAML_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


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
    read: set[str] = field(default_factory=set)
    """Locations (``file:/abs/path``) that were read and parsed."""
    failed_locations: set[str] = field(default_factory=set)
    """Locations that could not be read or parsed; their earlier entities should stay."""
    invalid: dict[str, str] = field(default_factory=dict)
    """Ref of each document that failed validation -> its location; an earlier valid version should stay."""


def location_entity(location: LocationSpec, base_dir: Path) -> dict[str, Any]:
    """The ``Location`` entity Backstage generates for a configured location.

    The name is ``generated-`` plus the SHA-1 of ``type:target``, with a file
    target made absolute first, as Backstage's ``locationSpecToMetadataName``.
    """
    target = str((base_dir / location.target).resolve()) if location.type == "file" else location.target
    ref = f"{location.type}:{target}"
    return {
        "apiVersion": "backstage.io/v1alpha1",
        "kind": "Location",
        "metadata": {
            "name": f"generated-{hashlib.sha1(ref.encode()).hexdigest()}",  # a name, not a secret
            "namespace": "default",
            "annotations": {MANAGED_BY_LOCATION: ref, MANAGED_BY_ORIGIN_LOCATION: ref},
        },
        "spec": {"type": location.type, "target": target},
    }


def read_locations(locations: Iterable[LocationSpec], base_dir: Path) -> IngestionResult:
    """Read every location (relative file targets resolve against ``base_dir``).

    Blocking file I/O: call it through :func:`asyncio.to_thread`.
    """
    reader = _Reader()
    for location in locations:
        generated = location_entity(location, base_dir)
        reader.result.entities.append(generated)
        reader.claim(generated, "config")
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
            self._fail(where, f"cannot read file: {error.strerror or error}")
            return
        try:
            # NOTE(catalog): parse the whole file first, so a broken file yields nothing rather than a part.
            documents = list(yaml.load_all(text, Loader=_YAML_LOADER))
        except yaml.YAMLError as error:
            self._fail(where, f"invalid YAML: {error}")
            return
        self.result.read.add(where)
        origin = origin or where
        for index, document in enumerate(documents):
            if document is not None:
                self._add(document, f"{where}#{index}", where, origin, path.parent)

    def _add(self, document: Any, position: str, where: str, origin: str, directory: Path) -> None:
        try:
            entity = validate_entity(document)
            outgoing_relations(entity)
        except EntityValidationError as error:
            ref = _guess_ref(document)
            self._error(position, str(error), ref)
            if ref is not None:
                self.result.invalid.setdefault(ref, where)
            return
        if not self.claim(entity, position):
            return
        annotations = entity["metadata"].setdefault("annotations", {})
        annotations.setdefault(MANAGED_BY_LOCATION, where)
        annotations.setdefault(MANAGED_BY_ORIGIN_LOCATION, origin)
        self.result.entities.append(entity)
        if entity["kind"].lower() == "location":
            spec = entity.get("spec") or {}
            targets = ([spec["target"]] if spec.get("target") else []) + list(spec.get("targets") or [])
            for target in targets:
                self.read(LocationSpec(spec.get("type") or "file", target), directory, origin)

    def claim(self, entity: dict[str, Any], position: str) -> bool:
        """Record where ``entity`` was defined; ``False`` (and an error) when its ref was already taken."""
        ref = entity_ref_of(entity)
        if ref in self._seen_refs:
            self._error(position, f"duplicate entity, already defined at {self._seen_refs[ref]}", ref)
            return False
        self._seen_refs[ref] = position
        return True

    def _fail(self, location: str, reason: str) -> None:
        self.result.failed_locations.add(location)
        self._error(location, reason)

    def _error(self, location: str, reason: str, entity_ref: str | None = None) -> None:
        self.result.errors.append(IngestionError(location, reason, entity_ref))


def location_targets(entity: dict[str, Any]) -> list[str]:
    """The file locations (``file:/abs/path``) a stored ``Location`` entity points at.

    Targets resolve against the directory of the entity's own location, as
    during ingestion; other kinds and non-file locations give nothing.
    """
    spec = entity.get("spec") or {}
    where = (entity.get("metadata", {}).get("annotations") or {}).get(MANAGED_BY_LOCATION, "")
    if str(entity.get("kind", "")).lower() != "location" or (spec.get("type") or "file") != "file":
        return []
    if not where.startswith("file:"):
        return []
    directory = Path(where.removeprefix("file:")).parent
    targets = ([spec["target"]] if spec.get("target") else []) + list(spec.get("targets") or [])
    return [f"file:{(directory / target).resolve()}" for target in targets if isinstance(target, str)]


def _guess_ref(document: Any) -> str | None:
    """Best-effort ref of an invalid document, for the error report."""
    try:
        return entity_ref_of(document)
    except Exception:  # noqa: BLE001 - the document is invalid; any failure means "unknown"
        return None
