"""Turning ``entity`` recipients into user refs (spec section 3).

The default resolution is the user directory's (``host.user_directory_ref``,
provided by the catalog: ``resolve_users``): user
refs are taken as they are, groups expand to their members and child
groups, other entities to their owner. A module may install its own
resolver through the extension point. Whatever comes back, only refs of
kind ``user`` are kept, canonical (``user:guest`` -> ``user:default/guest``,
the form user tokens carry), once each, in order.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from host import InputError, UserDirectory, await_me_maybe, normalize_entity_ref
from plugin_notifications.processing import RecipientResolver


def is_user_ref(ref: Any) -> bool:
    """Whether ``ref`` parses as an entity ref of kind ``user`` (case-insensitive)."""
    if not isinstance(ref, str) or ":" not in ref:
        return False
    kind, _, rest = ref.partition(":")
    return kind.lower() == "user" and bool(rest) and not rest.endswith("/")


def _is_canonical_user(ref: Any) -> bool:
    """Whether ``ref`` is already ``user:<namespace>/<name>`` as :func:`normalize_entity_ref` writes it."""
    if type(ref) is not str or not ref.startswith("user:") or not ref.islower() or ref != ref.strip():
        return False
    namespace, slash, name = ref[5:].partition("/")
    return bool(slash and namespace and name) and ":" not in ref[5:] and "/" not in name and "\x00" not in ref


def only_users(refs: Iterable[Any]) -> list[str]:
    """The user refs of ``refs`` in canonical form, de-duplicated, first occurrence first.

    Backstage stores a ref such as ``user:guest`` verbatim, and the user (whose token says
    ``user:default/guest``) never sees it; here it reaches them. Malformed refs are dropped.
    """
    canonical = []
    for ref in refs:
        if _is_canonical_user(ref):  # PERF: what the catalog returns; a 10,000-user group skips the parser
            canonical.append(ref)
        elif is_user_ref(ref):
            try:
                canonical.append(normalize_entity_ref(ref))
            except InputError:
                continue
    return list(dict.fromkeys(canonical))


class EntityRefError(Exception):
    """What Backstage's ``parseEntityRef`` throws for a ref it cannot read (``name`` is the JS class)."""

    def __init__(self, message: str, name: str = "Error") -> None:
        super().__init__(message)
        self.name = name


def check_entity_ref(ref: str) -> None:
    """Refuse ``ref`` as Backstage's ``parseEntityRef`` does (default kind none, namespace ``default``)."""
    if not ref:
        raise EntityRefError("Entity reference must not be empty")
    colon, slash = ref.find(":"), ref.find("/")
    if slash != -1 and slash < colon:
        colon = -1
    kind = None if colon == -1 else ref[:colon]
    namespace = None if slash == -1 else ref[colon + 1 : slash]
    name = ref[max(colon + 1, slash + 1) :]
    if "" in (kind, namespace, name):
        raise EntityRefError(f'Entity reference "{ref}" was not on the form [<kind>:][<namespace>/]<name>', "TypeError")
    if not kind:
        raise EntityRefError(
            f"Entity reference {json.dumps(ref, ensure_ascii=False)} had missing or empty kind "
            '(e.g. did not start with "component:" or similar)'
        )


def check_recipient_refs(entity_refs: Iterable[str]) -> None:
    """Refuse a user send whose refs Backstage cannot parse, with its ``Failed to send user notifications``."""
    try:
        for ref in entity_refs:
            check_entity_ref(ref)
    except EntityRefError as error:
        raise InputError("Failed to send user notifications", cause=error) from None


class DirectoryRecipientResolver:
    """The default resolver: delegates to the user directory's ``resolve_users``."""

    def __init__(self, directory: UserDirectory) -> None:
        self._directory = directory

    async def resolve_notification_recipients(
        self, *, entity_refs: list[str], excluded_entity_refs: list[str]
    ) -> dict[str, Any]:
        """Resolve through the user directory (spec section 3), with how each user was reached."""
        via: dict[str, tuple[str, str]] = {}
        users = list(await self._directory.resolve_users(entity_refs, excluded_entity_refs, via=via))
        return {"userEntityRefs": users, "via": via}


@dataclass(frozen=True)
class Resolution:
    """The users of a send and, where the resolver says, how each was reached."""

    users: list[str]
    #: ``{reached_ref: (from_ref, relation)}``; refs asked for directly are not in it.
    via: dict[str, tuple[str, str]] = field(default_factory=dict)

    def path(self, user: str) -> list[dict[str, str | None]]:
        """From the requested ref down to ``user``: ``[{entityRef, relation}]`` (relation from the previous step)."""
        return resolution_path(self.via, user)


def resolution_path(via: dict[str, Any], user: str) -> list[dict[str, str | None]]:
    """Walk ``via`` (``{ref: (from_ref, relation)}``) up from ``user``; return the path top-down."""
    steps: list[dict[str, str | None]] = []
    ref: str | None = user
    seen: set[str] = set()
    while ref is not None and ref not in seen:
        seen.add(ref)
        source = via.get(ref)
        steps.append({"entityRef": ref, "relation": source[1] if source else None})
        ref = source[0] if source else None
    return list(reversed(steps))


def compact_via(via: dict[str, tuple[str, str]], users: Sequence[str]) -> dict[str, Any]:
    """``via`` as a send row stores it: per edge, not per user.

    ``{"edges": {ref: [from, relation]}, "members": [[from, relation, users | None], ...]}``:
    ``edges`` holds the steps between non-user refs (group to child group), ``members``
    the users reached over each (group, relation), and the edge that reached the most
    users lists them as ``None``: "every other recipient of the send". A 10,000-user
    group send stores one edge and no user list. Recipients that no edge reached (asked
    for directly) are listed under ``"direct"`` when an edge with ``None`` exists.
    :func:`via_for` reads it back (and the per-user form stored before).
    """
    edges: dict[str, list[str]] = {}
    grouped: dict[tuple[str, str], list[str]] = {}
    for ref, (source, relation) in via.items():
        if is_user_ref(ref):
            grouped.setdefault((source, relation), []).append(ref)
        else:
            edges[ref] = [source, relation]
    members: list[list[Any]] = [[source, relation, refs] for (source, relation), refs in grouped.items()]
    compact: dict[str, Any] = {"edges": edges, "members": members}
    if members:
        largest = max(members, key=lambda entry: len(entry[2]))
        largest[2] = None
        compact["direct"] = [user for user in users if user not in via]
    return compact


def via_for(resolution: dict[str, Any], user: str) -> dict[str, Any]:
    """The ``{ref: (from, relation)}`` steps that reached ``user``, from a stored send resolution."""
    if "via" in resolution:  # sends stored before edges were compacted
        return dict(resolution.get("via") or {})
    via: dict[str, Any] = dict(resolution.get("edges") or {})
    everyone_else = None
    for source, relation, users in resolution.get("members") or []:
        if users is None:
            everyone_else = (source, relation)
        elif user in users:
            via[user] = (source, relation)
            return via
    if everyone_else is not None and user not in (resolution.get("direct") or ()):
        via[user] = everyone_else
    return via


async def resolve_recipients(
    resolver: RecipientResolver, entity_refs: list[str], excluded_entity_refs: list[str]
) -> Resolution:
    """Run ``resolver`` (sync or async; list or ``{userEntityRefs, via?}`` result) and keep user refs."""
    result = await await_me_maybe(
        resolver.resolve_notification_recipients(entity_refs=entity_refs, excluded_entity_refs=excluded_entity_refs)
    )
    via: dict[str, tuple[str, str]] = {}
    if isinstance(result, dict):
        raw_via = result.get("via")
        if isinstance(raw_via, dict):
            via = {
                str(ref): (str(step[0]), str(step[1]))
                for ref, step in raw_via.items()
                if isinstance(step, (list, tuple)) and len(step) == 2
            }
        result = result.get("userEntityRefs") or result.get("user_entity_refs") or []
    excluded = set(only_users(excluded_entity_refs))
    return Resolution([ref for ref in only_users(result or []) if ref not in excluded], via)
