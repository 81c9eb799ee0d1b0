"""The catalog service other plugins depend on, in-process.

Consumers add ``catalog_service_ref`` to their ``deps``; nothing needs to be
registered because the ref has a default factory::

    async def init(catalog):
        users = await catalog.resolve_users("group:default/team-a")

    reg.register_init(deps={"catalog": catalog_service_ref}, init=init)

Plugins initialise in parallel, so the service may be called before the
catalog plugin has finished its first ingestion: every method waits (30 s by
default) for the catalog plugin to attach its store to the root-scoped
:class:`CatalogHub`, then raises :class:`host.errors.ServiceUnavailableError`.
When the catalog plugin is not installed in this backend it raises at once.
"""

from __future__ import annotations

import asyncio
from typing import Any

from host import core_services
from host.errors import ServiceUnavailableError
from host.features import ServiceFactory, ServiceRef, create_service_factory, create_service_ref
from plugin_catalog.catalog import Catalog, FilterSpec

#: Seconds a service call waits for the catalog plugin to become ready.
READY_TIMEOUT = 30.0


class CatalogHub:
    """Root-scoped meeting point: the catalog plugin attaches its :class:`Catalog` here when ready."""

    def __init__(self) -> None:
        self._catalog: Catalog | None = None
        self._failure: str | None = None
        self._ready = asyncio.Event()

    def attach(self, catalog: Catalog) -> None:
        """Publish the ready catalog and wake every waiting caller."""
        self._catalog = catalog
        self._ready.set()

    def fail(self, reason: str) -> None:
        """Record that the catalog plugin failed to start; waiting callers fail at once."""
        self._failure = reason
        self._ready.set()

    async def wait(self, timeout: float) -> Catalog:
        """Return the catalog, waiting up to ``timeout`` seconds for it."""
        if not self._ready.is_set():
            try:
                await asyncio.wait_for(self._ready.wait(), timeout)
            except TimeoutError:
                raise ServiceUnavailableError(
                    f"The catalog did not become ready within {timeout:g} seconds"
                ) from None
        if self._catalog is None:
            raise ServiceUnavailableError(f"The catalog plugin failed to start: {self._failure}")
        return self._catalog


class CatalogService:
    """The catalog as seen by another plugin; every method waits for readiness first."""

    def __init__(self, hub: CatalogHub, instance_metadata: Any, ready_timeout: float = READY_TIMEOUT) -> None:
        self._hub = hub
        self._instance_metadata = instance_metadata
        self._ready_timeout = ready_timeout

    async def _catalog(self) -> Catalog:
        if self._instance_metadata is not None and not self._instance_metadata.is_installed("catalog"):
            raise ServiceUnavailableError("The catalog plugin is not installed")
        return await self._hub.wait(self._ready_timeout)

    async def get_entity_by_ref(self, ref: str) -> dict[str, Any] | None:
        """The entity with this ref, or ``None``."""
        return await (await self._catalog()).get_entity_by_ref(ref)

    async def get_entities_by_refs(
        self, refs: list[str], fields: list[str] | None = None
    ) -> list[dict[str, Any] | None]:
        """Entities in request order, ``None`` for missing ones."""
        return await (await self._catalog()).get_entities_by_refs(refs, fields)

    async def query_entities(
        self, filter: FilterSpec = None, limit: int | None = None, cursor: str | None = None
    ) -> dict[str, Any]:
        """A page ``{items, totalItems, pageInfo}`` like ``GET /entities/by-query``."""
        return await (await self._catalog()).query_entities(filter, limit, cursor)

    async def resolve_users(
        self, entity_refs: list[str] | str, excluded_entity_refs: list[str] | str | None = None
    ) -> list[str]:
        """Canonical user refs behind ``entity_refs`` (notifications spec, section 3)."""
        return await (await self._catalog()).resolve_users(entity_refs, excluded_entity_refs)

    async def get_user_ownership_refs(self, user_ref: str) -> list[str]:
        """The user ref plus every group it is directly a member of."""
        return await (await self._catalog()).get_user_ownership_refs(user_ref)

    async def list_users_with_email(self) -> list[tuple[str, str]]:
        """``(user ref, email)`` of every user with ``spec.profile.email``."""
        return await (await self._catalog()).list_users_with_email()


def _hub_factory(ref: ServiceRef[Any]) -> ServiceFactory:
    return create_service_factory(ref, lambda: CatalogHub())


#: Root-scoped hub shared by the catalog plugin and every consumer in this backend.
catalog_hub_ref: ServiceRef[CatalogHub] = create_service_ref("catalog.hub", "root", default_factory=_hub_factory)


def _service_factory(ref: ServiceRef[Any]) -> ServiceFactory:
    return create_service_factory(
        ref,
        lambda hub, instance_metadata: CatalogService(hub, instance_metadata),
        deps={"hub": catalog_hub_ref, "instance_metadata": core_services.instance_metadata},
    )


#: Plugin-scoped ref of the catalog service (id ``catalog.service``).
catalog_service_ref: ServiceRef[CatalogService] = create_service_ref(
    "catalog.service", "plugin", default_factory=_service_factory
)
