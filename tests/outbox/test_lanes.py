"""Each durable channel is dispatched on its own: a stalled channel never holds up another."""

from __future__ import annotations

import asyncio

from host.testing import eventually
from plugin_notifications import hookimpl
from plugin_notifications.delivery import Delivery, DeliveryChannel, DeliveryOutcome
from tests.conftest import start_host
from tests.notifications.conftest import Api, user
from tests.outbox.conftest import Recorder, outbox_config, recorder_module

JANE = "user:default/jane"


class Stalled:
    """A ``Stalled`` processor whose channel hangs (a dead SMTP server) until ``release`` is set."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.delivered: list[Delivery] = []

    @hookimpl
    def notifications_processor_name(self) -> str:
        return "Stalled"

    @hookimpl
    def notifications_delivery_channels(self) -> list[DeliveryChannel]:
        return [DeliveryChannel("stalled")]

    @hookimpl
    async def notifications_deliver(self, channel: str, deliveries: list[Delivery]) -> dict[str, DeliveryOutcome]:
        await self.release.wait()
        self.delivered.extend(deliveries)
        return {delivery.id: DeliveryOutcome.sent() for delivery in deliveries}


async def channel_status(api: Api, notification_id: str, channel: str) -> str:
    log = (await api.get(JANE, f"/{notification_id}/deliveries")).json()
    [entry] = [entry for entry in log["channels"] if entry["channel"] == channel]
    return str(entry["status"])


async def test_a_stalled_channel_does_not_hold_up_another(db_kind: str) -> None:
    recorder, stalled = Recorder(), Stalled()
    features = [recorder_module(recorder), recorder_module(stalled, "test-stalled")]
    async with start_host(db_kind, config=outbox_config(), features=features) as host:
        api = Api(host)
        [first] = await api.send_ok(user("jane"), title="first")
        await eventually(lambda: len(recorder.delivered) == 1)
        # recorded while the other channel still hangs, and the next send is delivered too
        assert await eventually(lambda: _is(api, first["id"], "recorder", "sent"))
        [second] = await api.send_ok(user("jane"), title="second")
        await eventually(lambda: len(recorder.delivered) == 2)
        assert await eventually(lambda: _is(api, second["id"], "recorder", "sent"))
        assert not stalled.delivered and await channel_status(api, first["id"], "stalled") == "pending"
        stalled.release.set()
        await eventually(lambda: len(stalled.delivered) == 2)
        assert await eventually(lambda: _is(api, second["id"], "stalled", "sent"))


async def _is(api: Api, notification_id: str, channel: str, status: str) -> bool:
    return await channel_status(api, notification_id, channel) == status
