"""A value that plugin X provides once its init has run, for other plugins to use.

Plugins initialise concurrently, so a service another plugin offers (the
catalog, the notification sender) may be asked for before that plugin is
ready. The provider declares a ref and hands over its value at the end of
its init; consumers ``await provided.get()``::

    catalog_provided_ref: ServiceRef[Provided[Catalog]] = create_provided_ref(
        "catalog.provided", plugin_id="catalog")

    # in the catalog plugin's init (deps={"provided": catalog_provided_ref}):
    provided.provide(catalog)

    # in a consumer:
    catalog = await provided.get()

``get`` waits only while plugin X's init is still running. It raises
:class:`host.errors.ServiceUnavailableError` at once when X is not installed
in this backend, when X failed to start, or when X's init finished without
providing the value; it never waits for a timeout.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from host.errors import ServiceUnavailableError
from host.features import ServiceFactory, ServiceRef, create_service_factory, create_service_ref
from host.services import core_services

T = TypeVar("T")
_UNSET: Any = object()


class Provided(Generic[T]):
    """The slot for one value of plugin ``plugin_id`` (root scoped: one per backend)."""

    def __init__(self, ref_id: str, plugin_id: str, instance_metadata: Any) -> None:
        self.ref_id = ref_id
        self.plugin_id = plugin_id
        self._instance_metadata = instance_metadata
        self._value: T = _UNSET

    def provide(self, value: T) -> None:
        """Hand over the value (call it once, from plugin ``plugin_id``'s init)."""
        if self._value is not _UNSET:
            raise RuntimeError(f"'{self.ref_id}' was already provided")
        self._value = value

    async def get(self) -> T:
        """The value; waits for plugin ``plugin_id``'s init, fails fast if it cannot come."""
        if self._value is not _UNSET:
            return self._value
        if not self._instance_metadata.is_installed(self.plugin_id):
            raise ServiceUnavailableError(f"The {self.plugin_id} plugin is not installed")
        failure = await self._instance_metadata.wait_for_plugin_init(self.plugin_id)
        if failure is not None:
            raise ServiceUnavailableError(
                f"The {self.plugin_id} plugin failed to start: {str(failure) or type(failure).__name__}"
            )
        if self._value is _UNSET:
            raise ServiceUnavailableError(f"The {self.plugin_id} plugin started without providing '{self.ref_id}'")
        return self._value

    def __repr__(self) -> str:
        state = "provided" if self._value is not _UNSET else "pending"
        return f"Provided({self.ref_id} from {self.plugin_id}, {state})"


def create_provided_ref(id: str, *, plugin_id: str) -> ServiceRef[Provided[Any]]:
    """A root-scoped ref to the :class:`Provided` slot ``id`` filled by plugin ``plugin_id``.

    It needs no factory: both the provider and the consumers just list it in their ``deps``.
    """

    def default_factory(ref: ServiceRef[Any]) -> ServiceFactory:
        return create_service_factory(
            ref,
            lambda instance_metadata: Provided(id, plugin_id, instance_metadata),
            deps={"instance_metadata": core_services.instance_metadata},
        )

    return create_service_ref(id, "root", default_factory=default_factory)
