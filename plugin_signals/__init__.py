"""Signals: push JSON messages from backend plugins to users' browsers over WebSocket and SSE.

* :data:`signals_plugin` - the backend plugin (``/api/signals``): it keeps the signal history
  and delivers the signals published anywhere in the backend to the sockets and streams it holds.
* Plugins publish through the host contract ``host.signals_service_ref``
  (:class:`host.SignalsService`), without importing this package; the plugin provides the
  history-aware :class:`SignalsService` for it (:data:`signals_service_factory`).
"""

from plugin_signals.plugin import signals_plugin
from plugin_signals.service import SignalsService, signals_service_factory

__all__ = ["SignalsService", "signals_plugin", "signals_service_factory"]
