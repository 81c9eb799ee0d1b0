"""SignalManager: subscriptions, recipient matching and delivery, without a network."""

from __future__ import annotations

import asyncio
import json

import pytest

from host.events import Event
from host.logging import Logger
from plugin_signals.connections import CLOSE_SLOW_CONSUMER, MAX_QUEUED_FRAMES, Frame, SignalConnection, SignalManager


class FakeSocket:
    """Collects what the manager sends and how it closes."""

    def __init__(self) -> None:
        self.frames: list[str] = []
        self.closed_with: int | None = None

    async def send(self, frame: Frame) -> None:
        self.frames.append(frame.text)

    async def close(self, code: int) -> None:
        self.closed_with = code


@pytest.fixture
def manager(test_logger: Logger) -> SignalManager:
    return SignalManager(test_logger)


def connect(
    manager: SignalManager, user: str, *groups: str, channels: tuple[str, ...] = ("c",)
) -> tuple[SignalConnection, FakeSocket]:
    sock = FakeSocket()
    conn = manager.add_connection(user, [user, *groups], sock.send, sock.close)
    for channel in channels:
        manager.handle_client_message(conn, json.dumps({"action": "subscribe", "channel": channel}))
    return conn, sock


def signal(recipients: object, channel: str = "c", message: object = None) -> dict[str, object]:
    return {"recipients": recipients, "channel": channel, "message": {"n": 1} if message is None else message}


def user_signal(refs: str | list[str], channel: str = "c") -> dict[str, object]:
    return signal({"type": "user", "entityRef": refs}, channel)


def test_broadcast_reaches_every_subscriber_of_the_channel(manager: SignalManager) -> None:
    a, _ = connect(manager, "user:default/a")
    b, _ = connect(manager, "user:default/b")
    connect(manager, "user:default/c", channels=("other",))
    assert manager.targets({"type": "broadcast"}, "c") == {a, b}


def test_user_signal_reaches_only_that_user(manager: SignalManager) -> None:
    jane, _ = connect(manager, "user:default/jane")
    jane_tab2, _ = connect(manager, "user:default/jane")
    connect(manager, "user:default/john")
    assert manager.targets({"type": "user", "entityRef": "user:default/jane"}, "c") == {jane, jane_tab2}


def test_group_ref_reaches_members_through_ownership(manager: SignalManager) -> None:
    member, _ = connect(manager, "user:default/jane", "group:default/team-a")
    connect(manager, "user:default/john", "group:default/team-b")
    assert manager.targets({"type": "user", "entityRef": "group:default/team-a"}, "c") == {member}


def test_entity_ref_list_overlap_and_no_duplicates(manager: SignalManager) -> None:
    jane, sock = connect(manager, "user:default/jane", "group:default/team-a")
    john, _ = connect(manager, "user:default/john")
    refs = ["user:default/jane", "group:default/team-a", "user:default/john", "user:default/nobody"]
    assert manager.targets({"type": "user", "entityRef": refs}, "c") == {jane, john}
    assert manager.deliver(user_signal(refs)) == 2
    assert len(list(conn_frames(jane))) == 1


def conn_frames(conn: SignalConnection) -> list[str]:
    return [frame.text for frame in conn._pending]


def test_refs_compare_case_insensitively(manager: SignalManager) -> None:
    jane, _ = connect(manager, "user:default/Jane")
    assert manager.targets({"type": "user", "entityRef": "USER:default/jane"}, "c") == {jane}


@pytest.mark.parametrize(
    "recipients",
    [
        None,
        {},
        {"type": "entity", "entityRef": "user:default/jane"},
        {"type": "user"},
        {"type": "user", "entityRef": 5},
    ],
)
def test_unknown_recipients_reach_nobody(manager: SignalManager, recipients: object) -> None:
    connect(manager, "user:default/jane")
    assert manager.targets(recipients, "c") == set()


@pytest.mark.parametrize(
    "payload",
    [
        {"recipients": {"type": "broadcast"}, "channel": "c"},
        {"recipients": {"type": "broadcast"}, "message": {}},
        {"recipients": {"type": "broadcast"}, "channel": "", "message": {}},
        "not a dict",
        None,
    ],
)
def test_events_without_channel_or_message_are_dropped(manager: SignalManager, payload: object) -> None:
    connect(manager, "user:default/jane")
    assert manager.deliver(payload) == 0


def test_frame_is_exactly_channel_and_message_and_serialised_once(manager: SignalManager) -> None:
    a, _ = connect(manager, "user:default/a")
    b, _ = connect(manager, "user:default/b")
    manager.deliver(signal({"type": "broadcast"}, message={"text": "héllo", "nested": [1, None]}))
    (frame_a,), (frame_b,) = conn_frames(a), conn_frames(b)
    assert json.loads(frame_a) == {"channel": "c", "message": {"text": "héllo", "nested": [1, None]}}
    assert list(json.loads(frame_a)) == ["channel", "message"]
    assert frame_a is frame_b
    manager.deliver({**signal({"type": "broadcast"}, message={}), "position": "e1-7"})
    assert list(json.loads(conn_frames(a)[-1])) == ["channel", "message", "position"]


def test_subscribe_is_idempotent_and_unsubscribe_stops_delivery(manager: SignalManager) -> None:
    conn, _ = connect(manager, "user:default/a", channels=("c", "c"))
    assert conn.channels == {"c"}
    manager.handle_client_message(conn, '{"action":"unsubscribe","channel":"c"}')
    assert manager.deliver(signal({"type": "broadcast"})) == 0
    manager.handle_client_message(conn, '{"action":"unsubscribe","channel":"c"}')  # twice is fine


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        "[1,2]",
        '"subscribe"',
        '{"action":"subscribe"}',
        '{"action":"subscribe","channel":""}',
        '{"action":"subscribe","channel":5}',
        '{"action":"watch","channel":"x"}',
    ],
)
def test_malformed_client_frames_are_ignored(manager: SignalManager, text: str) -> None:
    conn, _ = connect(manager, "user:default/a", channels=())
    manager.handle_client_message(conn, text)
    assert conn.channels == set()


def test_removed_connections_leave_no_index_entries(manager: SignalManager) -> None:
    conn, _ = connect(manager, "user:default/a", "group:default/g", channels=("c", "d"))
    manager.remove_connection(conn)
    manager.remove_connection(conn)
    assert len(manager) == 0
    assert manager._by_channel == {} and manager._by_ref == {}


async def test_writer_sends_frames_in_order(manager: SignalManager) -> None:
    conn, sock = connect(manager, "user:default/a")
    writer = asyncio.create_task(conn.run_writer())
    for n in range(5):
        manager.deliver(signal({"type": "broadcast"}, message={"n": n}))
    await asyncio.sleep(0.01)
    assert [json.loads(f)["message"]["n"] for f in sock.frames] == [0, 1, 2, 3, 4]
    manager.deliver(signal({"type": "broadcast"}, message={"n": 5}))
    await asyncio.sleep(0.01)
    assert len(sock.frames) == 6
    writer.cancel()


async def test_on_event_delivers_the_payload(manager: SignalManager) -> None:
    conn, _ = connect(manager, "user:default/a")
    await manager.on_event(Event("signals", signal({"type": "broadcast"})))
    assert len(conn_frames(conn)) == 1


async def test_a_socket_that_stops_reading_is_closed(manager: SignalManager) -> None:
    """No writer drains this socket: once its queue is full it is closed with 1008 and forgotten."""
    stuck, stuck_sock = connect(manager, "user:default/stuck")
    for _ in range(MAX_QUEUED_FRAMES + 1):
        manager.deliver(signal({"type": "broadcast"}))
    await asyncio.sleep(0.01)
    assert stuck_sock.closed_with == CLOSE_SLOW_CONSUMER
    assert len(manager) == 0


async def test_close_all_closes_every_socket(manager: SignalManager) -> None:
    socks = [connect(manager, f"user:default/u{n}")[1] for n in range(3)]
    await manager.close_all(1012)
    assert [s.closed_with for s in socks] == [1012, 1012, 1012]
    assert len(manager) == 0
