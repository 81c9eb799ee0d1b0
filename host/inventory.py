"""``greenroom plugins``: what is installed, read from the ``greenroom.*`` entry-point groups.

For ``greenroom.backend_features`` each entry point is loaded and described
(plugin, module or service factory, with its ids). Every other ``greenroom.*``
group (such as a plugin's processor group) lists its entry points with the
pluggy hooks they implement. Each line names the distribution and its version.
Nothing is started.
"""

from __future__ import annotations

import inspect
import json
from dataclasses import asdict, dataclass, field
from importlib.metadata import EntryPoint, distributions, entry_points
from typing import Any

FEATURES_GROUP = "greenroom.backend_features"
_GROUP_PREFIX = "greenroom."


@dataclass
class InstalledEntry:
    """One entry point of a ``greenroom.*`` group."""

    group: str
    name: str
    value: str
    distribution: str | None
    version: str | None
    kind: str = ""
    description: str = ""
    hooks: list[str] = field(default_factory=list)
    error: str | None = None


def _describe_feature(feature: Any) -> tuple[str, str]:
    from host.backend import load_feature

    feature = load_feature(feature)
    kind = getattr(feature, "feature_type", "")
    if hasattr(feature, "module_id"):
        return "module", f"module '{feature.module_id}' for plugin '{feature.plugin_id}'"
    if hasattr(feature, "plugin_id"):
        return "plugin", f"plugin '{feature.plugin_id}'"
    if kind == "service":
        return "service", f"service factory for '{feature.service.id}'"
    return kind or type(feature).__name__, repr(feature)


def hook_implementations(target: Any) -> list[str]:
    """Names of the attributes of ``target`` marked by any pluggy ``HookimplMarker``."""
    hooks = []
    for name in dir(target):
        if name.startswith("_"):
            continue
        value = getattr(target, name, None)
        if not inspect.isroutine(value):
            continue
        marks = getattr(value, "__dict__", {})
        if any(
            not key.startswith("_") and key.endswith("_impl") and isinstance(opts, dict) for key, opts in marks.items()
        ):
            hooks.append(name)
    return sorted(hooks)


def _entry(ep: EntryPoint) -> InstalledEntry:
    dist = getattr(ep, "dist", None)
    entry = InstalledEntry(
        group=ep.group,
        name=ep.name,
        value=ep.value,
        distribution=dist.metadata["Name"] if dist else None,
        version=dist.version if dist else None,
    )
    try:
        loaded = ep.load()
        if ep.group == FEATURES_GROUP:
            entry.kind, entry.description = _describe_feature(loaded)
        else:
            entry.kind, entry.hooks = "hooks", hook_implementations(loaded)
    except Exception as error:  # noqa: BLE001 - an entry point that does not import is reported, not fatal
        entry.error = f"{type(error).__name__}: {error}"
    return entry


def installed_entries() -> list[InstalledEntry]:
    """Every entry point of every ``greenroom.*`` group, features first, sorted by name."""
    found = {ep.group for dist in distributions() for ep in dist.entry_points}
    groups = sorted(
        (group for group in found if group.startswith(_GROUP_PREFIX)),
        key=lambda group: (group != FEATURES_GROUP, group),
    )
    return [_entry(ep) for group in groups for ep in sorted(entry_points(group=group), key=lambda e: e.name)]


def format_entries(entries: list[InstalledEntry]) -> str:
    """Human-readable listing, one block per group."""
    lines: list[str] = []
    for group in dict.fromkeys(entry.group for entry in entries):
        lines.append(f"{group}:")
        for entry in (e for e in entries if e.group == group):
            origin = f"{entry.distribution or '?'} {entry.version or ''}".strip()
            if entry.error:
                detail = f"ERROR {entry.error}"
            elif entry.kind == "hooks":
                detail = f"hooks: {', '.join(entry.hooks) or '(none)'}"
            else:
                detail = entry.description
            lines.append(f"  {entry.name:<24} {detail}  [{origin}] ({entry.value})")
    return "\n".join(lines)


def to_json(entries: list[InstalledEntry]) -> str:
    """The listing as JSON (a list of objects)."""
    return json.dumps([asdict(entry) for entry in entries], indent=2)
