"""The software catalog: entities, relations, the ``/api/catalog`` API and an in-process service.

Plugins that need only users and their addresses depend on ``host.user_directory_ref``
(which the catalog plugin provides); plugins that depend on the catalog itself use::

    from plugin_catalog import CatalogService, catalog_service_ref

Entity refs are parsed with :mod:`host.entity_refs` (re-exported here).
"""

from host import entity_ref_of, normalize_entity_ref, parse_entity_ref, stringify_entity_ref
from plugin_catalog.query import CATALOG_FILTER_EXISTS
from plugin_catalog.service import CatalogService, catalog_provided_ref, catalog_service_factory, catalog_service_ref

__all__ = [
    "CATALOG_FILTER_EXISTS",
    "CatalogService",
    "catalog_provided_ref",
    "catalog_service_factory",
    "catalog_service_ref",
    "entity_ref_of",
    "normalize_entity_ref",
    "parse_entity_ref",
    "stringify_entity_ref",
]
