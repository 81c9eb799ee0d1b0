"""A test-only plugin for multi-worker tests: ``POST /api/signals-test/publish`` publishes a signal.

The request body is ``{"recipients", "channel", "message"}``; the published
message gets ``"pid"`` (the worker that published it) added, and the
response is ``{"pid": <worker pid>}``. ``POST /api/signals-test/publish-many``
takes ``{"signals": [...]}`` and publishes them together (``publish_many``,
one batch), each message with the ``"pid"`` added. Loaded into ``greenroom start``
workers through an entry point written by the test (see
``test_signals_workers.py``).
"""

from __future__ import annotations

import os
from typing import Any

import falcon.asgi

from host import core_services, create_backend_plugin, signals_service_ref
from host.features import Registrar


class PublishResource:
    """Publish the posted signal from this worker."""

    def __init__(self, http_auth: Any, signals: Any) -> None:
        self._http_auth = http_auth
        self._signals = signals

    async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        await self._http_auth.credentials(req, allow=("service",))
        body = await req.get_media()
        pid = os.getpid()
        await self._signals.publish(
            recipients=body["recipients"], channel=body["channel"], message={**body["message"], "pid": pid}
        )
        resp.media = {"pid": pid}


class PublishManyResource(PublishResource):
    """Publish the posted signals from this worker as one batch."""

    async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        await self._http_auth.credentials(req, allow=("service",))
        body = await req.get_media()
        pid = os.getpid()
        await self._signals.publish_many([{**s, "message": {**s["message"], "pid": pid}} for s in body["signals"]])
        resp.media = {"pid": pid}


def _register(reg: Registrar) -> None:
    def init(router: Any, http_auth: Any, signals: Any) -> None:
        router.add_route("/publish", PublishResource(http_auth, signals))
        router.add_route("/publish-many", PublishManyResource(http_auth, signals))

    reg.register_init(
        deps={
            "router": core_services.http_router,
            "http_auth": core_services.http_auth,
            "signals": signals_service_ref,
        },
        init=init,
    )


signals_test_plugin = create_backend_plugin("signals-test", _register)
