"""The ``catalog`` backend plugin and its ``auth`` sign-in module.

``catalog_plugin`` brings the ``catalog.service`` factory (the user directory
contract and ``catalog_service_ref``), migrates its database, ingests ``catalog.locations``
once during ``init``, provides its :class:`Catalog` through ``catalog_provided_ref``
(which makes ``catalog.service`` usable), serves ``/api/catalog`` and schedules a
global refresh every ``catalog.refresh.frequency`` (default 30 minutes).

``catalog_sign_in_module`` extends the ``auth`` plugin: signed-in users own
their own ref plus every group they are directly a member of.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from host import (
    Config,
    Provided,
    Registrar,
    core_services,
    create_backend_module,
    create_backend_plugin,
    sign_in_resolver_extension_point,
)
from plugin_catalog.api import add_routes
from plugin_catalog.catalog import DEFAULT_MAX_FILTER_CONDITIONS, Catalog
from plugin_catalog.config_schema import CatalogConfig
from plugin_catalog.openapi import build_openapi_document
from plugin_catalog.refresh import CatalogRefresher, locations_from_config
from plugin_catalog.service import catalog_provided_ref, catalog_service_factory, catalog_service_ref
from plugin_catalog.store import CatalogStore

MIGRATIONS = Path(__file__).parent / "migrations"
DEFAULT_FREQUENCY = timedelta(minutes=30)
#: Default of ``catalog.query.statementTimeout`` (PostgreSQL cancels longer catalog reads).
DEFAULT_STATEMENT_TIMEOUT = timedelta(seconds=30)
REFRESH_TASK_ID = "catalog-refresh"


async def _start(
    config: Config,
    logger: Any,
    database: Any,
    router: Any,
    http_auth: Any,
    scheduler: Any,
    provided: Provided[Catalog],
) -> None:
    """Migrate, ingest once, serve the routes, schedule refreshes, then provide the catalog."""
    await database.migrate(MIGRATIONS)
    timeout = config.get_optional_duration("catalog.query.statementTimeout") or DEFAULT_STATEMENT_TIMEOUT
    store = CatalogStore(await database.get_engine(), statement_timeout_ms=int(timeout.total_seconds() * 1000))
    refresher = CatalogRefresher(store, locations_from_config(config), Path.cwd(), logger)
    await refresher.refresh()
    max_conditions = config.get_optional_number("catalog.query.maxFilterConditions")
    catalog = Catalog(store, int(max_conditions) if max_conditions is not None else DEFAULT_MAX_FILTER_CONDITIONS)
    add_routes(router, catalog, http_auth, refresher)
    router.add_openapi(build_openapi_document())
    frequency = config.get_optional_duration("catalog.refresh.frequency") or DEFAULT_FREQUENCY
    await scheduler.schedule_task(
        id=REFRESH_TASK_ID,
        frequency=frequency,
        timeout=max(frequency, timedelta(minutes=10)),
        initial_delay=frequency,
        scope="global",
        fn=refresher.refresh,
    )
    provided.provide(catalog)


def _register(reg: Registrar) -> None:
    reg.register_init(
        deps={
            "config": core_services.config,
            "logger": core_services.logger,
            "database": core_services.database,
            "router": core_services.http_router,
            "http_auth": core_services.http_auth,
            "scheduler": core_services.scheduler,
            "provided": catalog_provided_ref,
        },
        init=_start,
    )


def _register_sign_in(reg: Registrar) -> None:
    def init(sign_in: Any, catalog: Any) -> None:
        sign_in.set_ownership_resolver(catalog.get_user_ownership_refs)

        async def user_exists(user_ref: str) -> bool:
            return await catalog.get_entity_by_ref(user_ref) is not None

        sign_in.set_user_lookup(user_exists)

    reg.register_init(
        deps={"sign_in": sign_in_resolver_extension_point, "catalog": catalog_service_ref},
        init=init,
    )


#: The catalog backend plugin (``/api/catalog``).
# -- start provide-directory --
catalog_plugin = create_backend_plugin(
    "catalog", _register, config_schema={"catalog": CatalogConfig}, services=[catalog_service_factory]
)
# -- end provide-directory --

#: Auth module: ownership refs of signed-in users come from catalog group membership, and the proxy
#: provider signs in only users the catalog knows.
catalog_sign_in_module = create_backend_module("auth", "catalog-sign-in", _register_sign_in)
