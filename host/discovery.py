"""The discovery service: where each plugin's API lives.

Internal URLs default to ``http://<listen host>:<listen port>/api/<pluginId>``;
external ones to ``<backend.baseUrl>/api/<pluginId>``. ``discovery.endpoints``
overrides either per plugin (``{{pluginId}}`` is substituted), which is how a
plugin on one host instance reaches a plugin that runs on another.
"""

from __future__ import annotations

from host.config import Config


class Discovery:
    """Resolves plugin base URLs from config."""

    def __init__(self, config: Config) -> None:
        self._config = config
        base = config.get_optional_string("backend.baseUrl") or "http://localhost:7007"
        self._external = base.rstrip("/")
        host = config.get_optional_string("backend.listen.host") or "127.0.0.1"
        if host in ("", "::", "0.0.0.0"):
            host = "127.0.0.1"
        port = int(config.get_optional_number("backend.listen.port") or 7007)
        scheme = "https" if config.get_optional("backend.https") else "http"
        self._internal = f"{scheme}://{host}:{port}"

    def _override(self, plugin_id: str, which: str) -> str | None:
        for entry in self._config.get_config_list("discovery.endpoints"):
            plugins = entry.get_optional_string_list("plugins") or []
            if plugin_id not in plugins and "*" not in plugins:
                continue
            target = entry.get_optional("target")
            if isinstance(target, dict):
                target = target.get(which)
            if isinstance(target, str):
                return target.replace("{{pluginId}}", plugin_id).replace("{{ pluginId }}", plugin_id)
        return None

    async def get_base_url(self, plugin_id: str) -> str:
        """Base URL that other backends use to reach ``plugin_id``."""
        return self._override(plugin_id, "internal") or f"{self._internal}/api/{plugin_id}"

    async def get_external_base_url(self, plugin_id: str) -> str:
        """Base URL that browsers use to reach ``plugin_id``."""
        return self._override(plugin_id, "external") or f"{self._external}/api/{plugin_id}"
