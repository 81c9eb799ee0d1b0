"""Declaring durable channels: what the registry accepts and refuses."""

from __future__ import annotations

from typing import Any

import pytest

from plugin_notifications import hookimpl
from plugin_notifications.delivery import Delivery, DeliveryChannel, DeliveryOutcome
from plugin_notifications.processing import ProcessorRegistry


class Durable:
    """A processor with durable channels ``names``."""

    def __init__(self, name: str, channels: Any) -> None:
        self._name = name
        self._channels = channels

    @hookimpl
    def notifications_processor_name(self) -> str:
        return self._name

    @hookimpl
    def notifications_delivery_channels(self) -> Any:
        return self._channels

    @hookimpl
    def notifications_deliver(self, channel: str, deliveries: list[Delivery]) -> list[DeliveryOutcome]:
        return [DeliveryOutcome.sent() for _ in deliveries]


def test_channels_are_declared_by_name_or_object() -> None:
    registry = ProcessorRegistry()
    registry.add_processor(Durable("Email", "Email"))
    registry.add_processor(Durable("Hooks", [DeliveryChannel("hook:a", scope="send"), "hook:b"]))
    channels = registry.durable_channels()
    assert sorted(channels) == ["Email", "hook:a", "hook:b"]
    assert channels["hook:a"][1].scope == "send" and channels["hook:b"][1].scope == "recipient"
    assert channels["hook:a"][0].name == "Hooks"


def test_a_channel_name_is_declared_once() -> None:
    registry = ProcessorRegistry()
    registry.add_processor(Durable("One", "shared"))
    with pytest.raises(TypeError, match="already declared by One"):
        registry.add_processor(Durable("Two", ["shared"]))
    assert registry.channel_names() == ["One"]
    registry.add_processor(Durable("Two", ["other"]))  # the refused one left nothing registered
    assert sorted(registry.durable_channels()) == ["other", "shared"]


def test_channels_need_a_deliver_hook() -> None:
    class NoDeliver:
        @hookimpl
        def notifications_processor_name(self) -> str:
            return "Half"

        @hookimpl
        def notifications_delivery_channels(self) -> str:
            return "half"

    with pytest.raises(TypeError, match="without notifications_deliver"):
        ProcessorRegistry().add_processor(NoDeliver())


@pytest.mark.parametrize("bad", [42, None])
def test_invalid_channels_are_refused(bad: Any) -> None:
    with pytest.raises((TypeError, ValueError, AttributeError)):
        ProcessorRegistry().add_processor(Durable("Bad", [bad]))


def test_channel_fields_are_checked() -> None:
    with pytest.raises(ValueError):
        DeliveryChannel("")
    with pytest.raises(ValueError):
        DeliveryChannel("x", scope="everyone")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        DeliveryChannel("x", batch_size=0)
