"""Relations between entities, derived from their specs and kept both ways.

=======================  ==================  ======================  ==================
spec field               on kinds            relation (source side)  mirrored as
=======================  ==================  ======================  ==================
``spec.memberOf``        User                ``memberOf`` -> group   ``hasMember``
``spec.members``         Group               ``hasMember`` -> user   ``memberOf``
``spec.parent``          Group               ``childOf`` -> group    ``parentOf``
``spec.children``        Group               ``parentOf`` -> group   ``childOf``
``spec.owner``           any                 ``ownedBy`` -> group    ``ownerOf``
``spec.system``          Component/API/...   ``partOf`` -> system    ``hasPart``
``spec.domain``          System              ``partOf`` -> domain    ``hasPart``
=======================  ==================  ======================  ==================

Targets are parsed with the default kind above and the entity's own
namespace, like Backstage does, and stored canonical (lowercase).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from host import InputError, entity_ref_of, normalize_entity_ref
from plugin_catalog.models import EntityValidationError

MEMBER_OF = "memberOf"
HAS_MEMBER = "hasMember"
CHILD_OF = "childOf"
PARENT_OF = "parentOf"
OWNED_BY = "ownedBy"
OWNER_OF = "ownerOf"
PART_OF = "partOf"
HAS_PART = "hasPart"

#: Every relation type and its reverse.
INVERSE = {
    MEMBER_OF: HAS_MEMBER,
    HAS_MEMBER: MEMBER_OF,
    CHILD_OF: PARENT_OF,
    PARENT_OF: CHILD_OF,
    OWNED_BY: OWNER_OF,
    OWNER_OF: OWNED_BY,
    PART_OF: HAS_PART,
    HAS_PART: PART_OF,
}

Relation = tuple[str, str, str]
"""``(source_ref, type, target_ref)``, all refs canonical."""

# (spec field, kinds it applies to or None for all, relation type, default target kind, is a list)
_RULES: tuple[tuple[str, frozenset[str] | None, str, str, bool], ...] = (
    ("memberOf", frozenset({"user"}), MEMBER_OF, "group", True),
    ("members", frozenset({"group"}), HAS_MEMBER, "user", True),
    ("parent", frozenset({"group"}), CHILD_OF, "group", False),
    ("children", frozenset({"group"}), PARENT_OF, "group", True),
    ("owner", None, OWNED_BY, "group", False),
    ("system", frozenset({"component", "api", "resource"}), PART_OF, "system", False),
    ("domain", frozenset({"system"}), PART_OF, "domain", False),
)


def outgoing_relations(entity: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The ``(type, target_ref)`` pairs an entity's own spec declares.

    Raises :class:`~plugin_catalog.models.EntityValidationError` when a
    reference in the spec cannot be parsed.
    """
    kind = str(entity["kind"]).lower()
    namespace = (entity.get("metadata") or {}).get("namespace") or "default"
    spec = entity.get("spec") or {}
    found: list[tuple[str, str]] = []
    for field, kinds, relation, default_kind, is_list in _RULES:
        if kinds is not None and kind not in kinds:
            continue
        value = spec.get(field)
        if value is None:
            continue
        values = value if is_list else [value]
        if not isinstance(values, list):
            raise EntityValidationError(f"spec.{field} must be a list of entity references")
        for target in values:
            try:
                ref = normalize_entity_ref(target, default_kind, namespace)
            except InputError as error:
                raise EntityValidationError(f"spec.{field}: {error.message}") from None
            found.append((relation, ref))
    return found


def build_relations(entities: Iterable[Mapping[str, Any]]) -> set[Relation]:
    """Every relation among ``entities``, each stored in both directions."""
    relations: set[Relation] = set()
    for entity in entities:
        source = entity_ref_of(entity)
        for relation, target in outgoing_relations(entity):
            relations.add((source, relation, target))
            relations.add((target, INVERSE[relation], source))
    return relations
