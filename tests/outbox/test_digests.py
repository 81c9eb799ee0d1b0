"""Digests and quiet hours on the outbox: preferences API, hold times, release with a manual clock (no sleeps)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from host.config import Config, ConfigError
from host.testing import eventually
from plugin_notifications.clock import ManualClock
from plugin_notifications.delivery import DeliveryChannel
from plugin_notifications.preferences import (
    ChannelPreference,
    PreferencesConfig,
    QuietHours,
    release_time,
)
from tests.conftest import HostHandle, start_host
from tests.notifications.conftest import Api, user
from tests.outbox.conftest import Recorder, clock_module, outbox_config, recorder_module

JANE, JOHN = "user:default/jane", "user:default/john"
PREFERENCES = "/api/notifications/preferences"


async def put(api: Api, who: str, body: Any) -> Any:
    return await api.client.put(PREFERENCES, json=body, headers=await api.headers(who))


# -- release times -----------------------------------------------------------------


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


@pytest.mark.parametrize(
    ("preference", "now", "due"),
    [
        # daily at 09:00 Berlin (08:00 UTC in winter): later today, or tomorrow once passed
        ({"mode": "daily", "at": "09:00", "timezone": "Europe/Berlin"}, "2026-03-02T07:00Z", "2026-03-02T08:00Z"),
        ({"mode": "daily", "at": "09:00", "timezone": "Europe/Berlin"}, "2026-03-02T10:00Z", "2026-03-03T08:00Z"),
        # summer time: 09:00 Berlin is 07:00 UTC
        ({"mode": "daily", "at": "09:00", "timezone": "Europe/Berlin"}, "2026-07-01T10:00Z", "2026-07-02T07:00Z"),
        # weekly on Friday 17:30 UTC, sent on Monday 2 March 2026
        ({"mode": "weekly", "weekday": "friday", "at": "17:30"}, "2026-03-02T10:00Z", "2026-03-06T17:30Z"),
        # hourly at minute 15
        ({"mode": "hourly", "at": "00:15"}, "2026-03-02T10:20Z", "2026-03-02T11:15Z"),
        # immediate outside quiet hours: not held
        ({"quietHours": {"start": "22:00", "end": "07:00"}}, "2026-03-02T12:00Z", None),
        # immediate within quiet hours over midnight: until they end
        ({"quietHours": {"start": "22:00", "end": "07:00"}}, "2026-03-02T23:30Z", "2026-03-03T07:00Z"),
        ({"quietHours": {"start": "22:00", "end": "07:00"}}, "2026-03-03T03:00Z", "2026-03-03T07:00Z"),
        # a daily slot within quiet hours moves to their end
        (
            {"mode": "daily", "at": "06:00", "quietHours": {"start": "22:00", "end": "07:30"}},
            "2026-03-02T12:00Z",
            "2026-03-03T07:30Z",
        ),
    ],
)
def test_release_time(preference: dict[str, Any], now: str, due: str | None) -> None:
    entry = ChannelPreference.model_validate({"channel": "Email", **preference})
    assert release_time(entry, "normal", at(now), critical_bypass=True) == (at(due) if due else None)


def test_critical_bypasses_only_when_configured() -> None:
    entry = ChannelPreference(channel="Email", mode="daily", quietHours=QuietHours(start="22:00", end="07:00"))
    night = at("2026-03-02T23:00Z")
    assert release_time(entry, "critical", night, critical_bypass=True) is None
    assert release_time(entry, "critical", night, critical_bypass=False) == at("2026-03-03T09:00Z")
    config = PreferencesConfig.from_config(
        Config.load([], overrides={"notifications": {"preferences": {"criticalBypassesQuietHours": False}}})
    )
    assert config.criticalBypassesQuietHours is False


def test_operator_defaults_pick_the_most_specific() -> None:
    config = PreferencesConfig.model_validate(
        {
            "defaults": [
                {"mode": "hourly"},
                {"origin": "plugin:catalog", "mode": "daily"},
                {"origin": "plugin:catalog", "topic": "entity-changed", "channel": "Email", "mode": "weekly"},
            ]
        }
    )
    assert config.default_for("Email", "plugin:catalog", "entity-changed").mode == "weekly"  # type: ignore[union-attr]
    assert config.default_for("Slack", "plugin:catalog", "entity-changed").mode == "daily"  # type: ignore[union-attr]
    assert config.default_for("Email", "plugin:scaffolder", None).mode == "hourly"  # type: ignore[union-attr]
    with pytest.raises(ConfigError, match="notifications.preferences"):
        PreferencesConfig.from_config(
            Config.load([], overrides={"notifications": {"preferences": {"defaults": [{"timezone": "Mars/Base"}]}}})
        )


# -- the API ---------------------------------------------------------------------


async def test_preferences_api_reads_and_replaces_own_entries(recorder_host: HostHandle) -> None:
    api = Api(recorder_host)
    assert (await api.get(JANE, "/preferences")).json() == {"channels": [], "available": ["Recorder"]}
    body = {
        "channels": [
            {
                "channel": "recorder",  # stored under the processor's own spelling
                "mode": "weekly",
                "weekday": "friday",
                "at": "17:30",
                "timezone": "Europe/Berlin",
                "quietHours": {"start": "22:00", "end": "07:00", "timezone": "Europe/Berlin"},
            }
        ]
    }
    response = await put(api, JANE, body)
    assert response.status_code == 200, response.text
    stored = {**body["channels"][0], "channel": "Recorder"}
    assert response.json() == {"channels": [stored], "available": ["Recorder"]}
    assert (await api.get(JANE, "/preferences")).json()["channels"] == [stored]
    # a GET answer can be sent back as it is
    assert (await put(api, JANE, (await api.get(JANE, "/preferences")).json())).status_code == 200
    # another user sees only their own (none)
    assert (await api.get(JOHN, "/preferences")).json()["channels"] == []
    # an empty list removes them
    assert (await put(api, JANE, {"channels": []})).json()["channels"] == []


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"channel": "Web"}, "Web inbox is always immediate"),
        ({"channel": "Pager"}, "Unknown channel 'Pager', must be one of: Recorder"),
        ({"channel": "Recorder", "mode": "monthly"}, "mode"),
        ({"channel": "Recorder", "at": "25:00"}, "HH:MM"),
        ({"channel": "Recorder", "timezone": "Mars/Base"}, "unknown timezone"),
        ({"channel": "Recorder", "quietHours": {"start": "22:00"}}, "end"),
        ({"channel": "Recorder", "colour": "red"}, "must NOT have additional properties"),
    ],
)
async def test_bad_preferences_are_a_400(recorder_host: HostHandle, entry: dict[str, Any], message: str) -> None:
    api = Api(recorder_host)
    response = await put(api, JANE, {"channels": [entry]})
    assert response.status_code == 400, response.text
    assert response.json()["error"]["name"] == "InputError"
    assert message in response.json()["error"]["message"]


async def test_preferences_need_a_user_token(recorder_host: HostHandle) -> None:
    response = await recorder_host.client.get(PREFERENCES)
    assert response.status_code == 401


# -- hold and release ------------------------------------------------------------------


async def test_quiet_hours_hold_and_release_and_critical_bypasses(db_kind: str) -> None:
    """Jane's quiet hours hold her delivery until they end; critical and John's go out at once."""
    clock = ManualClock(at("2026-03-02T23:00Z"))
    recorder = Recorder()  # no digest hook: held deliveries come one by one through notifications_deliver
    features = [recorder_module(recorder), clock_module(clock)]
    async with start_host(db_kind, config=outbox_config(), features=features) as host:
        api = Api(host)
        quiet = {"channels": [{"channel": "Recorder", "quietHours": {"start": "22:00", "end": "07:00"}}]}
        assert (await put(api, JANE, quiet)).status_code == 200
        [held] = await api.send_ok(user("jane"), title="night build")
        await api.send_ok(user("jane"), title="prod down", severity="critical")
        await api.send_ok(user("john"), title="for john")
        await eventually(lambda: len(recorder.delivered) == 2)
        assert sorted(d.notification.payload.title for d in recorder.delivered) == ["for john", "prod down"]
        [web, channel] = (await api.get(JANE, f"/{held['id']}/deliveries")).json()["channels"]
        assert channel["status"] == "pending" and channel["heldUntil"] == "2026-03-03T07:00:00.000Z"
        clock.set(at("2026-03-03T07:00Z"))
        await eventually(lambda: len(recorder.delivered) == 3)
        assert recorder.delivered[-1].notification.payload.title == "night build"
        assert recorder.delivered[-1].notification.id == held["id"]
        log = (await api.get(JANE, f"/{held['id']}/deliveries")).json()
        assert log["channels"][1]["status"] == "sent"


@pytest.mark.parametrize("holds_users", [True, False])
async def test_a_send_scope_channel_holds_users_only_when_it_opts_in(db_kind: str, holds_users: bool) -> None:
    """With ``holds_users`` Jane's quiet hours take her off the send's delivery onto a held one of her own."""
    clock = ManualClock(at("2026-03-02T23:00Z"))
    recorder = Recorder(scope="send", holds_users=holds_users)
    features = [recorder_module(recorder), clock_module(clock)]
    async with start_host(db_kind, config=outbox_config(), features=features) as host:
        api = Api(host)
        assert (await api.get(JANE, "/preferences")).json()["available"] == (["Recorder"] if holds_users else [])
        quiet = {"channels": [{"channel": "Recorder", "quietHours": {"start": "22:00", "end": "07:00"}}]}
        response = await put(api, JANE, quiet)
        if not holds_users:  # a send-scope channel that does not hold is no channel for preferences
            assert response.status_code == 400 and "Unknown channel 'Recorder'" in response.text
            return
        assert response.status_code == 200, response.text
        items = await api.send_ok({"type": "entity", "entityRef": [JANE, JOHN]}, title="night build")
        janes = next(item for item in items if item["user"] == JANE)
        [send_delivery] = await eventually(lambda: recorder.delivered)
        assert send_delivery.recipients == (JOHN,)  # John stays on the one send delivery, at once
        assert send_delivery.notification.user is None
        [*_, channel] = (await api.get(JANE, f"/{janes['id']}/deliveries")).json()["channels"]
        assert channel["status"] == "pending" and channel["heldUntil"] == "2026-03-03T07:00:00.000Z"
        # every user held: the send's delivery is still written (for what is not per user), with no recipients
        await api.send_ok(user("jane"), title="only jane")
        await eventually(lambda: len(recorder.delivered) == 2)
        assert recorder.delivered[1].recipients == () and recorder.delivered[1].entity_refs == (JANE,)
        clock.set(at("2026-03-03T07:00Z"))
        await eventually(lambda: len(recorder.delivered) == 4)
        released = recorder.delivered[2:]
        assert sorted(d.notification.payload.title for d in released) == ["night build", "only jane"]
        assert {d.recipients for d in released} == {(JANE,)}
        assert janes["id"] in {d.notification.id for d in released}
        assert (await api.get(JANE, f"/{janes['id']}/deliveries")).json()["channels"][-1]["status"] == "sent"


def test_holds_users_is_for_send_scope_channels() -> None:
    with pytest.raises(ValueError, match="holds_users applies to send-scope channels"):
        DeliveryChannel("recorder", holds_users=True)
