"""Run by :func:`tests.plugin_install.probe` in a separate interpreter: start a host, print what it loaded.

Arguments: a data directory and the config overrides as JSON. Prints one
JSON object: the ``greenroom.backend_features`` entry-point names this
interpreter can see, and the notification settings channels of the host
(``Email``, ``Webhook``: the processors its modules added).
"""

from __future__ import annotations

import asyncio
import json
import sys
from importlib.metadata import entry_points
from typing import Any


async def main(data_dir: str, config: dict[str, Any]) -> None:
    import httpx

    from host import core_services
    from host.app import create_app

    overrides = {
        "backend": {
            "database": {"client": "sqlite", "connection": {"directory": data_dir}},
            "logger": {"level": "error"},
            # the MCP plugin has nothing to do with channels and its imports are most of a start
            "features": {"exclude": ["mcp-actions"]},
        },
        **config,
    }
    app = create_app([], overrides=overrides)
    await app.start()
    try:
        tokens = await app.backend.get_service(core_services.root_auth)
        token, _ = await tokens.issue_user_token("user:default/jane", ["user:default/jane"])
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://probe") as client:
            response = await client.get("/api/notifications/settings", headers={"Authorization": f"Bearer {token}"})
            response.raise_for_status()
            channels = [channel["id"] for channel in response.json()["channels"]]
    finally:
        await app.stop()
    features = sorted(ep.name for ep in entry_points(group="greenroom.backend_features"))
    print(json.dumps({"features": features, "channels": channels}))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], json.loads(sys.argv[2])))
