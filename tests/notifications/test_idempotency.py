"""Idempotent sends: ``Idempotency-Key`` on ``POST /notifications``, the service's key and the action's.

Rows are counted in the notifications database; "in flight" is made deterministic with a recipient
resolver that waits for the test, never with sleeps.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from host import core_services
from host.features import create_backend_module, create_backend_plugin
from host.testing import eventually
from plugin_notifications import notification_service_ref, notifications_processing_extension_point
from plugin_notifications.idempotency import fingerprint, key_id
from tests.conftest import SERVICE_SUBJECT, SERVICE_TOKEN, start_host
from tests.notifications.conftest import (
    SECOND_SERVICE_TOKEN,
    Api,
    notifications_config,
    remote_notification_service,
    user,
)

MOCK = "user:default/mock"
KEY = '"8e03978e-40d5-43e8-bc93-6894a57f9324"'
BODY = {"recipients": user("mock"), "payload": {"title": "Deploy finished"}}


async def post(api: Api, body: Any = BODY, key: str | None = KEY, token: str = SERVICE_TOKEN) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"}
    if key is not None:
        headers["Idempotency-Key"] = key
    return await api.client.post("/api/notifications", json=body, headers=headers)


def assert_backstage_error(response: httpx.Response, status: int, name: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error = response.json()
    assert error["error"]["name"] == name
    assert error["response"] == {"statusCode": status}
    assert error["request"]["method"] == "POST"
    return dict(error)


async def plant_age(api: Api, hours: float) -> None:
    """Move every stored key (and its lease) ``hours`` into the past."""
    engine = await api.database_engine()
    at = datetime.now(UTC) - timedelta(hours=hours)
    async with engine.begin() as conn:
        await conn.execute(sa.text("UPDATE idempotency_key SET created = :at, lease_until = :at"), {"at": at})


@pytest.fixture
async def api(db_kind: str) -> Any:
    async with start_host(db_kind, config=notifications_config()) as handle:
        yield Api(handle)


async def test_same_key_twice_answers_the_first_response_and_creates_nothing(api: Api) -> None:
    first = await post(api)
    again = await post(api)
    assert first.status_code == again.status_code == 200, (first.text, again.text)
    assert again.content == first.content
    assert again.headers["content-type"].startswith("application/json")
    [created] = first.json()
    assert created["user"] == MOCK and created["payload"]["title"] == "Deploy finished"
    assert await api.count_rows("notification") == 1
    assert await api.count_rows("idempotency_key") == 1
    # key order and whitespace of the body do not matter: the fingerprint is of the canonical JSON
    reordered = {"payload": {"title": "Deploy finished"}, "recipients": user("mock")}
    assert (await post(api, reordered)).content == first.content
    assert await api.count_rows("notification") == 1


async def test_concurrent_repeats_create_one_set_of_rows(api: Api) -> None:
    answers = await asyncio.gather(*(post(api, {**BODY, "recipients": user("group:default/team")}) for _ in range(8)))
    ok = [answer for answer in answers if answer.status_code == 200]
    assert ok, [answer.text for answer in answers]
    assert all(answer.content == ok[0].content for answer in ok)
    for answer in answers:
        if answer.status_code != 200:
            assert_backstage_error(answer, 409, "ConflictError")
    assert len(ok[0].json()) == 3  # jane, john, sub
    assert await api.count_rows("notification") == 3


async def test_same_key_with_another_body_is_422(api: Api) -> None:
    assert (await post(api)).status_code == 200
    other = await post(api, {**BODY, "payload": {"title": "Something else"}})
    error = assert_backstage_error(other, 422, "IdempotencyKeyReusedError")
    assert "different request body" in error["error"]["message"]
    assert await api.count_rows("notification") == 1


async def test_keys_are_scoped_per_principal(api: Api) -> None:
    first = await post(api)
    second = await post(api, token=SECOND_SERVICE_TOKEN)
    assert first.status_code == second.status_code == 200
    assert first.json()[0]["id"] != second.json()[0]["id"]
    assert second.json()[0]["origin"] == "test-service2"
    assert await api.count_rows("notification") == 2
    assert (await post(api, {**BODY, "payload": {"title": "other"}}, token=SECOND_SERVICE_TOKEN)).status_code == 422


async def test_no_key_sends_every_time(api: Api) -> None:
    assert (await post(api, key=None)).status_code == 200
    assert (await post(api, key=None)).status_code == 200
    assert await api.count_rows("notification") == 2
    assert await api.count_rows("idempotency_key") == 0


async def test_a_key_past_the_window_is_new(api: Api) -> None:
    first = await post(api)
    await plant_age(api, hours=25)  # the default window is 24 h
    again = await post(api)
    assert again.status_code == 200
    assert again.json()[0]["id"] != first.json()[0]["id"]
    assert await api.count_rows("notification") == 2
    # and the renewed key holds again, with the new body as its fingerprint
    assert (await post(api)).content == again.content
    assert await api.count_rows("notification") == 2


async def test_the_window_is_configurable(db_kind: str) -> None:
    config = notifications_config(idempotency={"window": {"hours": 1}, "lease": {"minutes": 1}})
    async with start_host(db_kind, config=config) as handle:
        api = Api(handle)
        first = await post(api)
        await plant_age(api, hours=2)
        assert (await post(api)).json()[0]["id"] != first.json()[0]["id"]


@pytest.mark.parametrize(
    "value, message",
    [
        ("8e03978e", "must be a quoted string"),  # a bare token is not a Structured Field String
        ('"unterminated', "must be a quoted string"),
        ("?1", "must be a quoted string"),
        ('"a", "b"', "must be a quoted string"),  # two header lines are a list, not an item
        ('""', "must not be empty"),
        ('"' + "k" * 256 + '"', "must NOT have more than 255 characters"),
    ],
)
async def test_malformed_keys_are_400(api: Api, value: str, message: str) -> None:
    error = assert_backstage_error(await post(api, key=value), 400, "InputError")
    assert message in error["error"]["message"]
    assert await api.count_rows("notification") == 0


async def test_parameters_and_escapes_of_the_header(api: Api) -> None:
    """Parameters are ignored (as Structured Fields allow); escapes are part of the key."""
    first = await post(api, key='"a\\"b";v=1')
    assert (await post(api, key='"a\\"b"')).content == first.content
    assert (await post(api, key='"a"')).json()[0]["id"] != first.json()[0]["id"]
    assert await api.count_rows("notification") == 2


async def test_a_failed_send_releases_its_key(api: Api) -> None:
    """A 400 created nothing, so the key is free: the corrected body with the same key is sent."""
    bad = await post(api, {**BODY, "payload": {"title": "x", "link": "ftp://x"}})
    assert_backstage_error(bad, 400, "InputError")
    assert await api.count_rows("idempotency_key") == 0
    assert (await post(api)).status_code == 200
    assert await api.count_rows("notification") == 1


async def test_a_crashed_claim_is_taken_over_after_its_lease(api: Api) -> None:
    """A claim left by a request that died (no status) answers 409 until its lease ends, then is taken over."""
    engine = await api.database_engine()
    now = datetime.now(UTC)
    async with engine.begin() as conn:
        await conn.execute(
            sa.text(
                "INSERT INTO idempotency_key (id, fingerprint, claim, created, lease_until) VALUES (:id, :fp, 'dead', :c, :l)"
            ),
            {
                "id": key_id(SERVICE_SUBJECT, KEY.strip('"')),
                "fp": fingerprint(BODY),
                "c": now,
                "l": now + timedelta(minutes=5),
            },
        )
    assert_backstage_error(await post(api), 409, "ConflictError")
    assert await api.count_rows("notification") == 0
    async with engine.begin() as conn:
        await conn.execute(sa.text("UPDATE idempotency_key SET lease_until = :at"), {"at": now - timedelta(seconds=1)})
    taken = await post(api)
    assert taken.status_code == 200
    assert (await post(api)).content == taken.content
    assert await api.count_rows("notification") == 1


async def test_the_cleaner_sweeps_old_keys(db_kind: str) -> None:
    for retention, task in (({"days": 5}, "notification-cleaner"), (False, "notification-idempotency-cleaner")):
        async with start_host(db_kind, config=notifications_config(retention=retention)) as handle:
            api = Api(handle)
            await post(api, key='"old"')
            await plant_age(api, hours=48)
            await post(api, key='"new"')
            scheduler = await handle.backend.get_service(core_services.scheduler, "notifications")
            assert {"id": task, "scope": "global"} in scheduler.get_scheduled_tasks()
            await scheduler.trigger_task(task)
            await eventually(lambda api=api: _keys_left_is(api, 1))
            assert await api.count_rows("notification") == 2  # younger than the retention


async def _keys_left_is(api: Api, count: int) -> bool:
    return await api.count_rows("idempotency_key") == count


# -- in flight: a resolver that waits for the test -----------------------------------------------------------------


class GatedResolver:
    """Resolves every ref to mock once ``release`` is set, telling the test when a send is waiting."""

    def __init__(self) -> None:
        self.waiting = asyncio.Event()
        self.release = asyncio.Event()
        self.calls = 0

    async def resolve_notification_recipients(self, *, entity_refs: list[str], excluded_entity_refs: list[str]) -> Any:
        self.calls += 1
        self.waiting.set()
        await self.release.wait()
        return [MOCK]


def gated_module(resolver: GatedResolver) -> Any:
    def register(reg: Any) -> None:
        def init(processing: Any) -> None:
            processing.set_notification_recipient_resolver(resolver)

        reg.register_init(deps={"processing": notifications_processing_extension_point}, init=init)

    return create_backend_module("notifications", "gated-resolver", register)


async def test_a_repeat_while_the_first_runs_is_409(db_kind: str) -> None:
    resolver = GatedResolver()
    async with start_host(db_kind, config=notifications_config(), features=[gated_module(resolver)]) as handle:
        api = Api(handle)
        first = asyncio.create_task(post(api))
        await asyncio.wait_for(resolver.waiting.wait(), 10)
        error = assert_backstage_error(await post(api), 409, "ConflictError")
        assert "still being processed" in error["error"]["message"]
        assert_backstage_error(
            await post(api, {**BODY, "payload": {"title": "other"}}), 422, "IdempotencyKeyReusedError"
        )
        resolver.release.set()
        answer = await first
        assert answer.status_code == 200
        assert (await post(api)).content == answer.content
        assert await api.count_rows("notification") == 1


async def test_a_send_that_outlived_its_lease_sends_nothing(db_kind: str) -> None:
    """The answer is recorded in the send's own transaction: a first send whose claim a repeat took over
    (its lease ran out) rolls back with a 409, and only the repeat's notification exists."""
    resolver = GatedResolver()
    async with start_host(db_kind, config=notifications_config(), features=[gated_module(resolver)]) as handle:
        api = Api(handle)
        first = asyncio.create_task(post(api))
        await asyncio.wait_for(resolver.waiting.wait(), 10)
        engine = await api.database_engine()
        async with engine.begin() as conn:
            await conn.execute(
                sa.text("UPDATE idempotency_key SET lease_until = :at"),
                {"at": datetime.now(UTC) - timedelta(seconds=1)},
            )
        repeat = asyncio.create_task(post(api))
        await eventually(lambda: resolver.calls == 2)  # the repeat took the claim over and is sending
        resolver.release.set()
        lost, won = await first, await repeat
        error = assert_backstage_error(lost, 409, "ConflictError")
        assert "outlived its lease" in error["error"]["message"]
        assert won.status_code == 200
        assert (await post(api)).content == won.content
        assert await api.count_rows("notification") == 1


# -- the service and the action ------------------------------------------------------------------------------------


def keyed_sender_plugin(services: dict[str, Any]) -> Any:
    def register(reg: Any) -> None:
        def init(notifications: Any) -> None:
            services["notifications"] = notifications

        reg.register_init(deps={"notifications": notification_service_ref}, init=init)

    return create_backend_plugin("keyed-sender", register)


async def test_the_service_accepts_a_key(db_kind: str) -> None:
    services: dict[str, Any] = {}
    async with start_host(db_kind, config=notifications_config(), features=[keyed_sender_plugin(services)]) as handle:
        api = Api(handle)
        service = services["notifications"]
        for _ in range(2):
            await service.send(recipients=user("mock"), payload={"title": "once"}, idempotency_key="build-7")
        assert await api.count_rows("notification") == 1
        [item] = (await api.list(MOCK))["notifications"]
        assert item["origin"] == "plugin:keyed-sender"
        with pytest.raises(Exception) as raised:
            await service.send(recipients=user("mock"), payload={"title": "twice"}, idempotency_key="build-7")
        assert getattr(raised.value, "status_code", None) == 422
        # the same key over HTTP is another principal's (the static token's): independent
        assert (
            await post(api, {"recipients": user("mock"), "payload": {"title": "once"}}, key='"build-7"')
        ).status_code == 200
        await service.send(recipients=user("mock"), payload={"title": "no key"})
        await service.send(recipients=user("mock"), payload={"title": "no key"})
        assert await api.count_rows("notification") == 4
        with pytest.raises(Exception, match="printable ASCII"):
            await service.send(recipients=user("mock"), payload={"title": "x"}, idempotency_key="caf\u00e9")


async def test_the_service_over_http_sends_the_header(db_kind: str) -> None:
    """Without a local notifications plugin, the key travels as the header (a quoted string)."""
    from plugin_notifications.service import NotificationSendError

    async with start_host(db_kind, config=notifications_config()) as handle:
        service = await remote_notification_service(handle)
        for _ in range(2):
            await service.send(recipients=user("mock"), payload={"title": "remote"}, idempotency_key='say "hi"')
        api = Api(handle)
        assert await api.count_rows("notification") == 1
        with pytest.raises(NotificationSendError, match="status 422"):
            await service.send(recipients=user("mock"), payload={"title": "other"}, idempotency_key='say "hi"')


ACTION = "/api/notifications/.backstage/actions/v1/actions/notifications:notification:send/invoke"


async def test_the_action_accepts_a_key(db_kind: str) -> None:
    async with start_host(db_kind, config=notifications_config()) as handle:  # the module is installed
        api = Api(handle)
        step = {"recipients": "entity", "entityRefs": [MOCK], "title": "Deployed", "idempotencyKey": "task-1"}

        async def invoke(body: Any, token: str = SERVICE_TOKEN) -> httpx.Response:
            return await api.client.post(ACTION, json=body, headers={"Authorization": f"Bearer {token}"})

        for _ in range(2):
            answer = await invoke(step)
            assert answer.status_code == 200, answer.text
        assert await api.count_rows("notification") == 1
        assert (await invoke({**step, "title": "Other"})).status_code == 422
        # another caller's task-1 is its own
        assert (await invoke(step, token=SECOND_SERVICE_TOKEN)).status_code == 200
        assert await api.count_rows("notification") == 2
        assert (await invoke({**step, "idempotencyKey": ""})).status_code == 400


async def test_the_document_lists_the_header() -> None:
    async with start_host(config=notifications_config()) as handle:
        document = (await handle.client.get("/api/notifications/openapi.json")).json()
    for path in ("/notifications", "/"):
        create = document["paths"][path]["post"]
        [header] = [param for param in create["parameters"] if param["in"] == "header"]
        assert header["name"] == "Idempotency-Key" and header["required"] is False
        assert {"409", "422"} <= set(create["responses"])
