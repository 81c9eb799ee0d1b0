"""The catalog service other plugins depend on, in-process.

The catalog plugin provides it under id ``catalog.service``, for two refs:

* :data:`host.user_directory_ref` (:class:`host.UserDirectory`), the contract
  plugins such as notifications use: users behind entity refs, their entities
  and email addresses. It does not import this package.
* :data:`catalog_service_ref` (:class:`CatalogService`), the whole service
  (queries, ownership refs) for plugins that depend on the catalog itself::

    async def init(catalog: CatalogService) -> None:
        users = await catalog.resolve_users("group:default/team-a")

    reg.register_init(deps={"catalog": catalog_service_ref}, init=init)

Both are built by :data:`catalog_service_factory`, which the catalog plugin
brings (``create_backend_plugin(..., services=[...])``). Without the catalog
plugin a dependency on ``catalog_service_ref`` fails startup, and the user
directory fails every call.

Plugins initialise in parallel, so the service may be called before the
catalog plugin has finished its first ingestion: every method waits while the
catalog plugin's init runs (it provides its :class:`Catalog` through
:data:`catalog_provided_ref`, a :class:`host.Provided`). When the catalog
plugin failed to start, it raises :class:`host.errors.ServiceUnavailableError`
at once.
"""

from __future__ import annotations

from typing import Any

from host import (
    Provided,
    ServiceFactory,
    ServiceRef,
    create_provided_ref,
    create_service_factory,
    create_service_ref,
    user_directory_ref,
)
from plugin_catalog.catalog import Catalog, FilterSpec


class CatalogService:
    """The catalog as seen by another plugin; every method waits for the catalog plugin's init first."""

    def __init__(self, provided: Provided[Catalog]) -> None:
        self._provided = provided

    async def _catalog(self) -> Catalog:
        return await self._provided.get()

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
        self,
        entity_refs: list[str] | str,
        excluded_entity_refs: list[str] | str | None = None,
        via: dict[str, tuple[str, str]] | None = None,
    ) -> list[str]:
        """Canonical user refs behind ``entity_refs`` (notifications spec, section 3).

        ``via``, when given, is filled with ``{reached_ref: (from_ref, relation)}``.
        """
        return await (await self._catalog()).resolve_users(entity_refs, excluded_entity_refs, via)

    async def get_user_ownership_refs(self, user_ref: str) -> list[str]:
        """The user ref plus every group it is directly a member of."""
        return await (await self._catalog()).get_user_ownership_refs(user_ref)

    async def list_users_with_email(self) -> list[tuple[str, str]]:
        """``(user ref, email)`` of every user with ``spec.profile.email``."""
        return await (await self._catalog()).list_users_with_email()


#: The catalog plugin provides its :class:`Catalog` here at the end of its init.
catalog_provided_ref: ServiceRef[Provided[Catalog]] = create_provided_ref("catalog.provided", plugin_id="catalog")

#: Plugin-scoped ref of the whole catalog service (id ``catalog.service``, as :data:`host.user_directory_ref`).
catalog_service_ref: ServiceRef[CatalogService] = create_service_ref(user_directory_ref.id, "plugin")


def _catalog_service(provided: Provided[Catalog]) -> CatalogService:
    return CatalogService(provided)


# -- start provide-directory --
#: Builds ``catalog.service`` (typed against the contract, so mypy checks that :class:`CatalogService`
#: fulfils :class:`host.UserDirectory`); the catalog plugin brings it, and it serves both refs.
catalog_service_factory: ServiceFactory = create_service_factory(
    user_directory_ref, _catalog_service, deps={"provided": catalog_provided_ref}
)
# -- end provide-directory --
