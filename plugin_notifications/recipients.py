"""Turning ``entity`` recipients into user refs (spec section 3).

The default resolution is the catalog's (``catalog.resolve_users``): user
refs are taken as they are, groups expand to their members and child
groups, other entities to their owner. A module may install its own
resolver through the extension point. Whatever comes back, only refs of
kind ``user`` are kept, canonical (``user:guest`` -> ``user:default/guest``,
the form user tokens carry), once each, in order.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable
from typing import Any

from host.errors import InputError
from plugin_catalog import normalize_entity_ref
from plugin_notifications.processing import RecipientResolver


def is_user_ref(ref: Any) -> bool:
    """Whether ``ref`` parses as an entity ref of kind ``user`` (case-insensitive)."""
    if not isinstance(ref, str) or ":" not in ref:
        return False
    kind, _, rest = ref.partition(":")
    return kind.lower() == "user" and bool(rest) and not rest.endswith("/")


def only_users(refs: Iterable[Any]) -> list[str]:
    """The user refs of ``refs`` in canonical form, de-duplicated, first occurrence first.

    Backstage stores a ref such as ``user:guest`` verbatim, and the user (whose token says
    ``user:default/guest``) never sees it; here it reaches them. Malformed refs are dropped.
    """
    canonical = []
    for ref in refs:
        if is_user_ref(ref):
            try:
                canonical.append(normalize_entity_ref(ref))
            except InputError:
                continue
    return list(dict.fromkeys(canonical))


class CatalogRecipientResolver:
    """The default resolver: delegates to the catalog service's ``resolve_users``."""

    def __init__(self, catalog: Any) -> None:
        self._catalog = catalog

    async def resolve_notification_recipients(
        self, *, entity_refs: list[str], excluded_entity_refs: list[str]
    ) -> list[str]:
        """Resolve through the catalog (spec section 3)."""
        return list(await self._catalog.resolve_users(entity_refs, excluded_entity_refs))


async def resolve_recipients(
    resolver: RecipientResolver, entity_refs: list[str], excluded_entity_refs: list[str]
) -> list[str]:
    """Run ``resolver`` (sync or async; list or ``{userEntityRefs}`` result) and keep user refs."""
    result = resolver.resolve_notification_recipients(
        entity_refs=entity_refs, excluded_entity_refs=excluded_entity_refs
    )
    if inspect.isawaitable(result):
        result = await result
    if isinstance(result, dict):
        result = result.get("userEntityRefs") or result.get("user_entity_refs") or []
    excluded = set(only_users(excluded_entity_refs))
    return [ref for ref in only_users(result or []) if ref not in excluded]
