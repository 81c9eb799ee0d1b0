"""The software catalog: entities, relations, the ``/api/catalog`` API and an in-process service.

Other plugins use::

    from plugin_catalog import catalog_service_ref, parse_entity_ref, stringify_entity_ref
"""

from plugin_catalog.query import CATALOG_FILTER_EXISTS
from plugin_catalog.refs import entity_ref_of, normalize_entity_ref, parse_entity_ref, stringify_entity_ref
from plugin_catalog.service import CatalogService, catalog_provided_ref, catalog_service_ref

__all__ = [
    "CATALOG_FILTER_EXISTS",
    "CatalogService",
    "catalog_provided_ref",
    "catalog_service_ref",
    "entity_ref_of",
    "normalize_entity_ref",
    "parse_entity_ref",
    "stringify_entity_ref",
]
