"""Fixtures of the notifications tests: a running host per database and an API client."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from host import core_services
from host.testing import eventually as eventually  # re-exported: tests import it from here
from plugin_notifications.models import Notification, NotificationPayload, utc_now
from plugin_notifications.service import NotificationService, notifications_sender_ref
from tests.conftest import SERVICE_SUBJECT, SERVICE_TOKEN, HostHandle, start_host

FIXTURES = Path(__file__).parent / "fixtures"


# -- HTTP helpers --------------------------------------------------------------

ORG = FIXTURES / "org.yaml"
SECOND_SERVICE_TOKEN = "test-service2-token-0123456789"
ORIGIN = SERVICE_SUBJECT


def notifications_config(**notifications: Any) -> dict[str, Any]:
    """Host config for the notifications tests: the test catalog and two static service tokens."""
    return {
        "catalog": {"locations": [{"type": "file", "target": str(ORG)}]},
        "backend": {
            "auth": {
                "externalAccess": [
                    {"type": "static", "options": {"token": SERVICE_TOKEN, "subject": SERVICE_SUBJECT}},
                    {"type": "static", "options": {"token": SECOND_SERVICE_TOKEN, "subject": "test-service2"}},
                ]
            }
        },
        "notifications": notifications,
    }


#: As in Backstage's router tests: the Web channel disables origin test-service2 by default.
ROUTER_TEST_DEFAULTS = {
    "defaultSettings": {"channels": [{"id": "Web", "origins": [{"id": "test-service2", "enabled": False}]}]}
}


@pytest.fixture
async def host(db_kind: str) -> AsyncIterator[HostHandle]:
    """A running host with the notifications plugin, on SQLite or PostgreSQL."""
    async with start_host(db_kind, config=notifications_config(**ROUTER_TEST_DEFAULTS)) as handle:
        yield handle


class Api:
    """Thin client of ``/api/notifications`` for one host."""

    def __init__(self, handle: HostHandle) -> None:
        self.handle = handle
        self.client: httpx.AsyncClient = handle.client
        self._headers: dict[str, dict[str, str]] = {}

    async def headers(self, user: str) -> dict[str, str]:
        """Authorization headers of ``user`` (cached)."""
        if user not in self._headers:
            self._headers[user] = await self.handle.user_headers(user)
        return self._headers[user]

    async def send(
        self, recipients: Any, token: str = SERVICE_TOKEN, path: str = "/api/notifications", **payload: Any
    ) -> httpx.Response:
        """``POST`` a notification as a service; ``payload`` defaults to a title."""
        payload.setdefault("title", "Hello")
        return await self.client.post(
            path, json={"recipients": recipients, "payload": payload}, headers={"Authorization": f"Bearer {token}"}
        )

    async def send_ok(self, recipients: Any, **payload: Any) -> list[dict[str, Any]]:
        """Send and expect 200; return the created items."""
        response = await self.send(recipients, **payload)
        assert response.status_code == 200, response.text
        return response.json()

    async def get(self, user: str, path: str = "", **params: Any) -> httpx.Response:
        """``GET /api/notifications<path>`` as ``user``."""
        return await self.client.get(f"/api/notifications{path}", params=params, headers=await self.headers(user))

    async def list(self, user: str, **params: Any) -> dict[str, Any]:
        """``GET /notifications`` as ``user``; expect 200."""
        response = await self.get(user, "/notifications", **params)
        assert response.status_code == 200, response.text
        return response.json()

    async def post(self, user: str, path: str, body: Any) -> httpx.Response:
        """``POST /api/notifications<path>`` as ``user``."""
        return await self.client.post(f"/api/notifications{path}", json=body, headers=await self.headers(user))

    async def update(self, user: str, ids: list[str], **flags: Any) -> list[dict[str, Any]]:
        """``POST /notifications/update``; expect 200."""
        response = await self.post(user, "/notifications/update", {"ids": ids, **flags})
        assert response.status_code == 200, response.text
        return response.json()

    async def database_engine(self) -> Any:
        """The notifications plugin's engine (to check rows and plant old ones)."""
        database = await self.handle.backend.get_service(core_services.database, "notifications")
        return await database.get_engine()

    async def count_rows(self, table: str = "notification") -> int:
        """How many rows ``table`` holds."""
        engine = await self.database_engine()
        async with engine.connect() as conn:
            return int(await conn.scalar(sa.text(f"SELECT count(*) FROM {table}")))


@pytest.fixture
def api(host: HostHandle) -> Api:
    """The :class:`Api` of :func:`host`."""
    return Api(host)


def user(name: str) -> dict[str, Any]:
    """Entity recipients for one ref (``user:default/<name>`` unless a full ref is given)."""
    return {"type": "entity", "entityRef": name if ":" in name else f"user:default/{name}"}


BROADCAST = {"type": "broadcast"}


async def capture_signals(handle: HostHandle) -> list[dict[str, Any]]:
    """Record every signal published on the host (the events topic ``signals``), without its history position."""
    events = await handle.backend.get_service(core_services.events, "notifications-tests")
    seen: list[dict[str, Any]] = []

    async def record(event: Any) -> None:
        seen.append({key: value for key, value in event.payload.items() if key != "position"})

    await events.subscribe("capture", ["signals"], record)
    return seen


class _Remote:
    """Discovery and instance metadata that place the notifications plugin on another host."""

    def __init__(self, url: str) -> None:
        self.url = url

    async def get_base_url(self, plugin_id: str) -> str:
        return f"{self.url}/api/{plugin_id}"

    def is_installed(self, plugin_id: str) -> bool:
        return False


async def remote_notification_service(handle: HostHandle) -> NotificationService:
    """A ``NotificationService`` of plugin ``scaffolder`` that reaches ``handle``'s notifications over HTTP."""
    auth = await handle.backend.get_service(core_services.auth, "scaffolder")
    local = await handle.backend.get_service(notifications_sender_ref)
    where = _Remote(handle.url)
    return NotificationService(local_sender=local, auth=auth, discovery=where, instance_metadata=where)


def notification(origin: str = "plugin:ci", **payload: Any) -> Notification:
    """A broadcast :class:`Notification` from ``origin`` with ``payload`` (title "Deploy finished" unless given)."""
    payload.setdefault("title", "Deploy finished")
    return Notification(
        id=str(uuid.uuid4()),
        user=None,
        created=utc_now(),
        origin=origin,
        payload=NotificationPayload.model_validate(payload),
    )
