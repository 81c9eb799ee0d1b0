"""Signals: push JSON messages from backend plugins to users' browsers over WebSocket.

* :data:`signals_plugin` - the backend plugin (``/api/signals``).
* :data:`signals_service_ref` / :class:`SignalsService` - how other plugins publish.
"""

from plugin_signals.plugin import signals_plugin
from plugin_signals.service import SIGNALS_TOPIC, SignalsService, signals_service_ref

__all__ = ["SIGNALS_TOPIC", "SignalsService", "signals_plugin", "signals_service_ref"]
