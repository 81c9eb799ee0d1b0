"""Entity references: ``kind:namespace/name``, parsed leniently, printed canonically.

Shared by the catalog (which stores entities by ref) and every plugin that
reads refs (notification recipients). Backstage compares refs
case-insensitively, so every ref this module returns is lowercase. Parsing accepts a missing kind or namespace when a default is
given::

    >>> parse_entity_ref("Group:team-a")
    ('group', 'default', 'team-a')
    >>> stringify_entity_ref("User", "Default", "Alice")
    'user:default/alice'
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from host.errors import InputError

DEFAULT_NAMESPACE = "default"


def parse_entity_ref(
    ref: str,
    default_kind: str | None = None,
    default_namespace: str | None = DEFAULT_NAMESPACE,
) -> tuple[str, str, str]:
    """Split ``ref`` into lowercase ``(kind, namespace, name)``.

    ``ref`` may be ``kind:namespace/name``, ``kind:name``, ``namespace/name``
    or ``name``; missing parts come from the defaults. Raises
    :class:`host.errors.InputError` when the ref is empty, malformed, or a
    part is missing with no default.
    """
    if not isinstance(ref, str) or not ref.strip():
        raise InputError(f"Entity reference must be a non-empty string, got {ref!r}")
    if "\x00" in ref:
        raise InputError(f"Entity reference {ref!r} contains a NUL character")
    text = ref.strip()
    kind: str | None = default_kind
    namespace: str | None = default_namespace
    rest = text
    colon = text.find(":")
    slash = text.find("/")
    if colon != -1 and (slash == -1 or colon < slash):
        kind, rest = text[:colon], text[colon + 1 :]
    if "/" in rest:
        namespace, rest = rest.split("/", 1)
    name = rest
    parts = {"kind": kind, "namespace": namespace, "name": name}
    for label, value in parts.items():
        if not value:
            raise InputError(f"Entity reference '{ref}' had missing or empty {label}")
        if any(ch in value for ch in ":/"):
            raise InputError(f"Entity reference '{ref}' was not on the form [<kind>:][<namespace>/]<name>")
    assert kind and namespace  # narrowed above
    return kind.lower(), namespace.lower(), name.lower()


def stringify_entity_ref(kind: str, namespace: str | None, name: str) -> str:
    """Return the canonical lowercase ``kind:namespace/name``."""
    return f"{kind}:{namespace or DEFAULT_NAMESPACE}/{name}".lower()


def normalize_entity_ref(
    ref: str, default_kind: str | None = None, default_namespace: str | None = DEFAULT_NAMESPACE
) -> str:
    """Parse ``ref`` with the given defaults and return its canonical form."""
    return stringify_entity_ref(*parse_entity_ref(ref, default_kind, default_namespace))


def entity_ref_of(entity: Mapping[str, Any]) -> str:
    """The canonical ref of an entity envelope (``kind`` and ``metadata``)."""
    metadata = entity.get("metadata") or {}
    return stringify_entity_ref(str(entity["kind"]), metadata.get("namespace"), str(metadata["name"]))
