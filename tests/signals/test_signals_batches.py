"""A batched fan-out (``publish_many``) on a real ``greenroom start --workers 2``: every recipient, once, in order.

Batches are published from both workers (each request on a new TCP connection), so every socket gets
some batches through local delivery and some through the bus (PostgreSQL ``NOTIFY``, inline and through
the payload table; Redis pub/sub). Some batches mix channels (the history stores a channel per entry),
others share one. The live frames' positions must be the history's: a socket resuming from the start
replays exactly the frames, with the same positions, that the live sockets received.
"""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
import websockets

from plugin_signals.history import parse_position
from tests.signals.conftest import assert_no_signal, subscribe, wait_subscribed, ws_url
from tests.signals.test_signals_resume import next_frame, resume_socket
from tests.signals.test_signals_workers import BUSES, WORKERS, greenroom_start, new_connection_client, user_token

USERS = [f"user:default/fan{index}" for index in range(4)]
CHANNEL = "notifications"


async def next_signal(ws: Any) -> dict[str, Any]:
    """The next signal frame (an idle socket's periodic ``position`` frame is skipped)."""
    while (frame := await next_frame(ws)).get("action") == "position":
        pass
    return frame


def batch(number: int, per_user: int) -> list[dict[str, Any]]:
    """Signals for every user on CHANNEL, interleaved; odd batches add other channels and an absent user."""
    signals: list[dict[str, Any]] = []
    for n in range(per_user):
        for user in USERS:
            message = {"batch": number, "n": n, "to": user}
            signals.append(
                {"recipients": {"type": "user", "entityRef": [user]}, "channel": CHANNEL, "message": message}
            )
        if number % 2:
            signals.append({"recipients": {"type": "broadcast"}, "channel": "elsewhere", "message": {"n": n}})
            absent = {"type": "user", "entityRef": "user:default/absent"}
            signals.append({"recipients": absent, "channel": CHANNEL, "message": {"n": n}})
    return signals


@pytest.mark.parametrize("bus", sorted(BUSES))
async def test_a_batched_fan_out_reaches_every_recipient_once_in_order_with_history_positions(bus: str) -> None:
    db, events = BUSES[bus]
    async with greenroom_start(db, events()) as url, new_connection_client(url) as http:

        async def publish(signal: dict[str, Any]) -> None:
            (await http.post("/api/signals-test/publish", json=signal)).raise_for_status()

        tokens = {user: await user_token(url, user.rpartition("/")[2]) for user in USERS}
        async with contextlib.AsyncExitStack() as stack:
            # Per user a resuming socket (duplicates would be dropped by position) and a plain one (they would not).
            sockets: list[tuple[str, Any]] = []
            start = ""
            for user in USERS:
                ws = await resume_socket(url, tokens[user], CHANNEL, "")
                stack.push_async_callback(ws.close)
                frame = await next_frame(ws)  # the subscription is in effect: the stream's position now
                assert frame["action"] == "position"
                start = start or frame["position"]
                plain = await stack.enter_async_context(websockets.connect(ws_url(url), subprotocols=[tokens[user]]))  # type: ignore[list-item]
                await subscribe(plain, CHANNEL)
                await wait_subscribed(plain, publish)
                sockets += [(user, ws), (user, plain)]

            sent: list[dict[str, Any]] = []
            pids: list[int] = []
            while len(set(pids)) < WORKERS or len(pids) < 4:
                assert len(pids) < 60, f"requests never reached {WORKERS} workers: {set(pids)}"
                signals = batch(len(pids), per_user=40 if len(pids) % 3 else 1)  # large (payload table) and small
                response = await http.post("/api/signals-test/publish-many", json={"signals": signals})
                response.raise_for_status()
                pids.append(int(response.json()["pid"]))
                sent.extend(
                    {**s["message"], "pid": pids[-1]}
                    for s in signals
                    if s["channel"] != CHANNEL or "to" in s["message"]
                )

            live: dict[str, list[tuple[dict[str, Any], str]]] = {}
            for user, ws in sockets:
                expected = [message for message in sent if message.get("to") == user]
                frames = [await next_signal(ws) for _ in expected]
                # Exactly the user's signals, once each, in publish order (batches were published one after another).
                assert [frame["message"] for frame in frames] == expected
                assert {frame["channel"] for frame in frames} == {CHANNEL}
                seqs = [parse_position(frame["position"]).seq for frame in frames]  # type: ignore[union-attr]
                assert seqs == sorted(set(seqs))
                await assert_no_signal(ws)
                live[user] = [(frame["message"], frame["position"]) for frame in frames]

            # The positions are the history's: resuming from the start replays the same frames, same positions,
            # and the entries of the mixed batches are on their own channel.
            for user in USERS[:2]:
                replay = await resume_socket(url, tokens[user], CHANNEL, start)
                stack.push_async_callback(replay.close)
                frames = [await next_signal(replay) for _ in live[user]]
                assert [(frame["message"], frame["position"]) for frame in frames] == live[user]
            elsewhere = await resume_socket(url, tokens[USERS[0]], "elsewhere", start)
            stack.push_async_callback(elsewhere.close)
            expected = [message for message in sent if "to" not in message and "batch" not in message]
            assert expected
            assert [(await next_signal(elsewhere))["message"] for _ in expected] == expected
