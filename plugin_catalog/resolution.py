"""Who the users behind an entity ref are (notifications spec, section 3).

Breadth-first, one batch of queries per round:

* user refs are accepted as they are, without a catalog lookup;
* a group adds its ``hasMember`` users and queues its ``parentOf`` child
  groups (parents are never followed);
* any other kind queues its first ``ownedBy`` target, which the next round
  classifies (a user owner is added, a group owner expanded);
* excluded refs are neither fetched nor expanded, and excluded users are
  removed from the result even when a group reached them;
* refs are visited once, so cycles end.

The result keeps the order in which users were first reached. Given a
``via`` dict, each reached ref is mapped to ``(ref that reached it,
relation)`` (``hasMember``, ``parentOf`` or ``ownedBy``), so the path from a
requested ref to each user can be rebuilt (the notifications delivery log).
"""

from __future__ import annotations

from collections.abc import Iterable

from host import normalize_entity_ref
from plugin_catalog.relations import HAS_MEMBER, OWNED_BY, PARENT_OF
from plugin_catalog.store import CatalogStore


def _kind(ref: str) -> str:
    return ref.split(":", 1)[0]


async def resolve_users(
    store: CatalogStore,
    entity_refs: Iterable[str],
    excluded_refs: Iterable[str] = (),
    via: dict[str, tuple[str, str]] | None = None,
) -> list[str]:
    """Return the canonical user refs behind ``entity_refs``, minus ``excluded_refs``.

    ``via``, when given, is filled with ``{reached_ref: (from_ref, relation)}``.

    Raises :class:`host.errors.InputError` for a ref that cannot be parsed.
    """
    excluded = {normalize_entity_ref(ref) for ref in excluded_refs}
    work = list(dict.fromkeys(normalize_entity_ref(ref) for ref in entity_refs))
    seen = set(work)
    users: dict[str, None] = {}
    while work:
        lookups = []
        for ref in work:
            if _kind(ref) == "user":
                users.setdefault(ref)
            elif ref not in excluded:
                lookups.append(ref)
        if not lookups:
            break
        existing = await store.existing_refs(lookups)
        found = [ref for ref in lookups if ref in existing]
        targets: dict[tuple[str, str], list[str]] = {}
        for source, relation, target in await store.relations_from(found, (HAS_MEMBER, PARENT_OF, OWNED_BY)):
            targets.setdefault((source, relation), []).append(target)
        follow: list[str] = []
        for ref in found:
            if _kind(ref) == "group":
                follow.extend(_expand_group(ref, targets, users, seen, via))
            else:
                follow.extend(_first_owner(ref, targets, seen, via))
        work = [ref for ref in dict.fromkeys(follow) if ref not in seen]
        seen.update(work)
    return [user for user in users if user not in excluded]


def _expand_group(
    ref: str,
    targets: dict[tuple[str, str], list[str]],
    users: dict[str, None],
    seen: set[str],
    via: dict[str, tuple[str, str]] | None,
) -> list[str]:
    """Add the group's member users to ``users``; return its child groups to visit next."""
    members = [member for member in targets.get((ref, HAS_MEMBER), []) if _kind(member) == "user"]
    children = targets.get((ref, PARENT_OF), [])
    if via is not None:
        for member in members:
            if member not in users and member not in seen:
                via.setdefault(member, (ref, HAS_MEMBER))
        for child in children:
            if child not in seen:
                via.setdefault(child, (ref, PARENT_OF))
    users.update((member, None) for member in members)
    return children


def _first_owner(
    ref: str,
    targets: dict[tuple[str, str], list[str]],
    seen: set[str],
    via: dict[str, tuple[str, str]] | None,
) -> list[str]:
    """The entity's first ``ownedBy`` target (at most one), for the next round to classify."""
    owners = targets.get((ref, OWNED_BY), [])[:1]
    if via is not None:
        for owner in owners:
            if owner not in seen:
                via.setdefault(owner, (ref, OWNED_BY))
    return owners
