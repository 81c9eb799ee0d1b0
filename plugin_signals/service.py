"""The signals service: push JSON messages to users' browsers over WebSocket.

Other plugins depend on the host contract :data:`host.signals_service_ref` and call::

    await signals.publish(
        recipients={"type": "user", "entityRef": "user:default/jane"},
        channel="notifications",
        message={"action": "new_notification", "notification_id": "..."},
    )

Publishing first stores the signal in the signal history (which gives it its
position, see :mod:`plugin_signals.history`), then goes through the events
service on topic ``signals``, so it works from any plugin, any gunicorn worker
and any host instance; the signals plugin delivers it to the matching sockets
wherever they are connected. When the history cannot be written the signal is
still delivered live, without a position.

The signals plugin brings :data:`signals_service_factory`, so this publisher
serves ``host.signals_service_ref`` wherever the plugin runs; a backend
without the plugin publishes with the host's default (live, no positions),
as this one does when no history is provided.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from host import (
    SIGNALS_TOPIC,
    EventsService,
    Provided,
    ServiceFactory,
    ServiceRef,
    ServiceUnavailableError,
    core_services,
    create_provided_ref,
    create_service_factory,
    signal_payload,
    signals_service_ref,
)
from plugin_signals.history import SignalHistory, entry_recipients

#: The signal history, provided by the signals plugin's init (``None`` when ``signals.history.enabled`` is false).
signals_history_ref: ServiceRef[Provided[SignalHistory | None]] = create_provided_ref(
    "signals.history", plugin_id="signals"
)

_UNKNOWN: Any = object()


class SignalsService:
    """Publishes signals for one plugin: stores them in the history, then sends them through the events service."""

    def __init__(self, events: Any, history: Provided[SignalHistory | None] | None = None, logger: Any = None) -> None:
        self._events = events
        self._provided = history
        self._history: SignalHistory | None = _UNKNOWN if history is not None else None
        self._logger = logger

    async def _positioned(self, payloads: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Store ``payloads`` (fresh dicts) in the history and set their ``position`` (left out when that fails)."""
        if self._history is _UNKNOWN:
            assert self._provided is not None
            try:
                self._history = await self._provided.get()
            except ServiceUnavailableError:  # the signals plugin is not installed here: nothing to resume
                self._history = None
        if self._history is None:
            return payloads
        try:
            epoch, last = await self._history.append(
                [(p["channel"], entry_recipients(p["recipients"]), p["message"]) for p in payloads]
            )
        except Exception as error:  # deliver live all the same
            if self._logger is not None:
                self._logger.warning("Failed to store %s signal(s) in the history", len(payloads), exc_info=error)
            return payloads
        seq = last - len(payloads)
        prefix = f"{epoch}-"  # format_position, without a call per signal
        for payload in payloads:
            seq += 1
            payload["position"] = f"{prefix}{seq}"
        return payloads

    async def publish(self, *, recipients: dict[str, Any], channel: str, message: dict[str, Any]) -> None:
        """Send ``message`` on ``channel`` to ``recipients``.

        ``recipients`` is ``{"type": "broadcast"}`` or
        ``{"type": "user", "entityRef": ref | [refs]}``; a user-type signal
        reaches every connection whose ownership refs include one of the refs
        (so a group ref reaches its members).
        """
        [payload] = await self._positioned([signal_payload(recipients, channel, message)])
        await self._events.publish(SIGNALS_TOPIC, payload)

    async def publish_many(self, signals: Sequence[dict[str, Any]]) -> None:
        """Send many signals at once (each ``{"recipients", "channel", "message"}``).

        Equivalent to calling :meth:`publish` for each, but crosses the bus as
        one message: what a fan-out to thousands of users needs.
        """
        payloads = [signal_payload(s.get("recipients"), s.get("channel"), s.get("message")) for s in signals]
        if payloads:
            await self._events.publish_many(SIGNALS_TOPIC, await self._positioned(payloads))


def _signals_service(events: EventsService, history: Provided[SignalHistory | None], logger: Any) -> SignalsService:
    return SignalsService(events, history, logger)


#: Builds ``signals.service`` (typed against the host contract); the signals plugin brings it.
signals_service_factory: ServiceFactory = create_service_factory(
    signals_service_ref,
    _signals_service,
    deps={"events": core_services.events, "history": signals_history_ref, "logger": core_services.logger},
)
