"""The signals service: push JSON messages to users' browsers over WebSocket.

Other plugins depend on :data:`signals_service_ref` and call::

    await signals.publish(
        recipients={"type": "user", "entityRef": "user:default/jane"},
        channel="notifications",
        message={"action": "new_notification", "notification_id": "..."},
    )

Publishing goes through the events service on topic ``signals``, so it works
from any plugin, any gunicorn worker and any host instance; the signals
plugin delivers it to the matching sockets wherever they are connected.
"""

from __future__ import annotations

from typing import Any

from host import core_services
from host.errors import InputError
from host.features import ServiceFactory, ServiceRef, create_service_factory, create_service_ref

SIGNALS_TOPIC = "signals"


class SignalsService:
    """Publishes signals for one plugin through the events service."""

    def __init__(self, events: Any) -> None:
        self._events = events

    async def publish(self, *, recipients: dict[str, Any], channel: str, message: dict[str, Any]) -> None:
        """Send ``message`` on ``channel`` to ``recipients``.

        ``recipients`` is ``{"type": "broadcast"}`` or
        ``{"type": "user", "entityRef": ref | [refs]}``; a user-type signal
        reaches every connection whose ownership refs include one of the refs
        (so a group ref reaches its members).
        """
        await self._events.publish(SIGNALS_TOPIC, _signal(recipients, channel, message))

    async def publish_many(self, signals: list[dict[str, Any]]) -> None:
        """Send many signals at once (each ``{"recipients", "channel", "message"}``).

        Equivalent to calling :meth:`publish` for each, but crosses the bus as
        one message: what a fan-out to thousands of users needs.
        """
        payloads = [_signal(s.get("recipients"), s.get("channel"), s.get("message")) for s in signals]
        if payloads:
            await self._events.publish_many(SIGNALS_TOPIC, payloads)


def _signal(recipients: Any, channel: Any, message: Any) -> dict[str, Any]:
    """Validate one signal and return its event payload."""
    kind = recipients.get("type") if isinstance(recipients, dict) else None
    if kind not in ("broadcast", "user"):
        raise InputError("Signal recipients type must be 'broadcast' or 'user'")
    if kind == "user" and not recipients.get("entityRef"):
        raise InputError("Signal recipients of type 'user' need an entityRef")
    if not channel or not isinstance(message, dict):
        raise InputError("A signal needs a channel and a JSON object message")
    return {"recipients": recipients, "channel": channel, "message": message}


def _default_factory(ref: ServiceRef[Any]) -> ServiceFactory:
    return create_service_factory(ref, lambda events: SignalsService(events), deps={"events": core_services.events})


#: Plugin-scoped ref of the signals service (Backstage id ``signals.service``).
signals_service_ref: ServiceRef[SignalsService] = create_service_ref(
    "signals.service", "plugin", default_factory=_default_factory
)
