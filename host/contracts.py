"""Contracts between plugins: small typed services one plugin provides and others use.

A plugin that needs another plugin's service depends on a contract here, not
on the other plugin's package. The ids are the Backstage service ids, so the
wire and the config do not change::

    from host import SignalsService, UserDirectory, signals_service_ref, user_directory_ref

    async def init(directory: UserDirectory, signals: SignalsService) -> None: ...

    reg.register_init(deps={"directory": user_directory_ref, "signals": signals_service_ref}, init=init)

=========================  ===================  ==================================================
ref                        id                   contract
=========================  ===================  ==================================================
``user_directory_ref``     ``catalog.service``  :class:`UserDirectory`: users behind entity refs,
                                                their entities and email addresses
``signals_service_ref``    ``signals.service``  :class:`SignalsService`: push a message to users'
                                                browsers
=========================  ===================  ==================================================

Who provides them:

* The user directory is provided by the plugin that declares a factory for
  ``user_directory_ref`` in ``create_backend_plugin(..., services=[...])`` (the
  software catalog does). With no such plugin installed every call fails at
  once with :class:`host.errors.ServiceUnavailableError`.
* Signals travel as events on topic :data:`SIGNALS_TOPIC` through the events
  service. The signals plugin provides the service (its publisher also stores
  each signal in its history); in a process without it the default factory
  publishes on the topic only (live, without positions), so publishing works
  in every process of the backend.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from host.errors import InputError, ServiceUnavailableError
from host.features import ServiceFactory, ServiceRef, create_service_factory, create_service_ref
from host.services import EventsService, core_services

#: The events topic signals travel on (Backstage's ``signals``).
SIGNALS_TOPIC = "signals"


class UserDirectory(Protocol):
    """``catalog.service`` as other plugins use it: who the users are and how to reach them."""

    async def resolve_users(
        self,
        entity_refs: list[str] | str,
        excluded_entity_refs: list[str] | str | None = None,
        via: dict[str, tuple[str, str]] | None = None,
    ) -> list[str]:
        """Canonical user refs behind ``entity_refs`` (users, groups and their members, owners of
        other entities), without ``excluded_entity_refs``; ``via``, when given, is filled with
        ``{reached_ref: (from_ref, relation)}``."""
        ...

    async def get_entity_by_ref(self, ref: str) -> dict[str, Any] | None:
        """The entity with this ref, or ``None``."""
        ...

    async def get_entities_by_refs(
        self, refs: list[str], fields: list[str] | None = None
    ) -> list[dict[str, Any] | None]:
        """Entities in request order, ``None`` for missing ones."""
        ...

    async def list_users_with_email(self) -> list[tuple[str, str]]:
        """``(user ref, email)`` of every user with an email address."""
        ...


class SignalsService(Protocol):
    """``signals.service``: push JSON messages to users' browsers."""

    async def publish(self, *, recipients: dict[str, Any], channel: str, message: dict[str, Any]) -> None:
        """Send ``message`` on ``channel`` to ``recipients`` (``{"type": "broadcast"}`` or
        ``{"type": "user", "entityRef": ref | [refs]}``)."""
        ...

    async def publish_many(self, signals: Sequence[dict[str, Any]]) -> None:
        """Send many signals (each ``{"recipients", "channel", "message"}``) as one bus message."""
        ...


class _UnprovidedUserDirectory:
    """The user directory when no installed plugin provides one: every call fails at once."""

    def _unavailable(self) -> ServiceUnavailableError:
        return ServiceUnavailableError(f"No installed plugin provides the user directory ('{user_directory_ref.id}')")

    async def resolve_users(
        self,
        entity_refs: list[str] | str,
        excluded_entity_refs: list[str] | str | None = None,
        via: dict[str, tuple[str, str]] | None = None,
    ) -> list[str]:
        """Fails: no directory."""
        raise self._unavailable()

    async def get_entity_by_ref(self, ref: str) -> dict[str, Any] | None:
        """Fails: no directory."""
        raise self._unavailable()

    async def get_entities_by_refs(
        self, refs: list[str], fields: list[str] | None = None
    ) -> list[dict[str, Any] | None]:
        """Fails: no directory."""
        raise self._unavailable()

    async def list_users_with_email(self) -> list[tuple[str, str]]:
        """Fails: no directory."""
        raise self._unavailable()


class EventsSignalsService:
    """Publishes signals for one plugin as events on :data:`SIGNALS_TOPIC`."""

    def __init__(self, events: EventsService) -> None:
        self._events = events

    async def publish(self, *, recipients: dict[str, Any], channel: str, message: dict[str, Any]) -> None:
        """Send ``message`` on ``channel`` to ``recipients``; a user-type signal reaches every
        connection whose ownership refs include one of the refs (so a group ref reaches its members)."""
        await self._events.publish(SIGNALS_TOPIC, signal_payload(recipients, channel, message))

    async def publish_many(self, signals: Sequence[dict[str, Any]]) -> None:
        """As :meth:`publish` for each signal, but one bus message: what a fan-out to thousands needs."""
        payloads = [signal_payload(s.get("recipients"), s.get("channel"), s.get("message")) for s in signals]
        if payloads:
            await self._events.publish_many(SIGNALS_TOPIC, payloads)


def signal_payload(recipients: Any, channel: Any, message: Any) -> dict[str, Any]:
    """Validate one signal and return its event payload (:class:`host.errors.InputError` if invalid)."""
    kind = recipients.get("type") if isinstance(recipients, dict) else None
    if kind not in ("broadcast", "user"):
        raise InputError("Signal recipients type must be 'broadcast' or 'user'")
    if kind == "user" and not recipients.get("entityRef"):
        raise InputError("Signal recipients of type 'user' need an entityRef")
    if not channel or not isinstance(message, dict):
        raise InputError("A signal needs a channel and a JSON object message")
    return {"recipients": recipients, "channel": channel, "message": message}


def _unprovided_directory(ref: ServiceRef[Any]) -> ServiceFactory:
    return create_service_factory(ref, lambda: _UnprovidedUserDirectory())


def _events_signals(ref: ServiceRef[Any]) -> ServiceFactory:
    return create_service_factory(ref, EventsSignalsService, deps={"events": core_services.events})


#: The user directory (id ``catalog.service``, plugin scoped).
user_directory_ref: ServiceRef[UserDirectory] = create_service_ref(
    "catalog.service", "plugin", default_factory=_unprovided_directory
)

#: The signals service (id ``signals.service``, plugin scoped).
signals_service_ref: ServiceRef[SignalsService] = create_service_ref(
    "signals.service", "plugin", default_factory=_events_signals
)
