"""A scripted durable channel for the outbox tests, as a backend module of plugin ``notifications``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from host import create_backend_module
from plugin_notifications import hookimpl, notifications_processing_extension_point
from plugin_notifications.clock import ManualClock
from plugin_notifications.delivery import Delivery, DeliveryChannel, DeliveryOutcome
from tests.conftest import HostHandle, start_host
from tests.notifications.conftest import notifications_config

#: Retries come quickly and the dispatcher polls often, so tests take fractions of a second.
FAST_DELIVERY = {
    "maxAttempts": 3,
    "backoff": {"initial": {"milliseconds": 20}, "max": {"milliseconds": 50}},
    "pollInterval": {"milliseconds": 100},
    "leaseSeconds": 30,
}


@dataclass
class Recorder:
    """A ``Recorder`` processor: its channel ``recorder`` answers the scripted ``outcomes`` first, then ``sent``."""

    outcomes: list[DeliveryOutcome] = field(default_factory=list)
    delivered: list[Delivery] = field(default_factory=list)
    calls: list[list[Delivery]] = field(default_factory=list)
    scope: str = "recipient"
    holds_users: bool = False
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    @hookimpl
    def notifications_processor_name(self) -> str:
        return "Recorder"

    @hookimpl
    def notifications_delivery_channels(self) -> list[DeliveryChannel]:
        return [DeliveryChannel("recorder", scope=self.scope, batch_size=10, holds_users=self.holds_users)]  # type: ignore[arg-type]

    @hookimpl
    async def notifications_deliver(self, channel: str, deliveries: list[Delivery]) -> dict[str, DeliveryOutcome]:
        assert channel == "recorder"
        self.calls.append(list(deliveries))
        answers = {}
        for delivery in deliveries:
            outcome = self.outcomes.pop(0) if self.outcomes else DeliveryOutcome.sent()
            if outcome.kind == "sent":
                self.delivered.append(delivery)
            answers[delivery.id] = outcome
        self.changed.set()
        return answers


def recorder_module(recorder: Any, module_id: str = "test-recorder") -> Any:
    """A module of plugin ``notifications`` adding the processor ``recorder`` (a :class:`Recorder` or another)."""

    def register(reg: Any) -> None:
        reg.register_init(
            deps={"processing": notifications_processing_extension_point},
            init=lambda processing: processing.add_processor(recorder),
        )

    return create_backend_module("notifications", module_id, register)


def clock_module(clock: ManualClock) -> Any:
    """A module of plugin ``notifications`` that installs ``clock``."""

    def register(reg: Any) -> None:
        reg.register_init(
            deps={"processing": notifications_processing_extension_point},
            init=lambda processing: processing.set_clock(clock),
        )

    return create_backend_module("notifications", "test-clock", register)


def outbox_config(**delivery: Any) -> dict[str, Any]:
    """The notifications test config with fast outbox settings (overridable)."""
    return notifications_config(delivery={**FAST_DELIVERY, **delivery})


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
async def recorder_host(db_kind: str, recorder: Recorder) -> AsyncIterator[HostHandle]:
    async with start_host(db_kind, config=outbox_config(), features=[recorder_module(recorder)]) as handle:
        yield handle
