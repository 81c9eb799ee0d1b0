"""The web inbox's delivery schedule (digests and quiet hours) in headless Chromium, checked through the HTTP API."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import HostHandle, start_host
from tests.web.conftest import GUEST, VIEWPORT, InboxPage, require_browser
from tests.web.screenshots import EMAIL_CONFIG, PREFERENCE_PLUGINS, take_preferences

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
BERLIN_DAILY = {
    "channel": "Email",
    "mode": "daily",
    "at": "09:00",
    "weekday": "monday",
    "timezone": "Europe/Berlin",
    "quietHours": {"start": "22:00", "end": "07:00", "timezone": "Europe/Berlin"},
}


@pytest.fixture
async def email_host() -> AsyncIterator[HostHandle]:
    """The web test host plus the email module, so that ``Email`` is a channel preferences apply to."""
    async with start_host("sqlite", config=EMAIL_CONFIG, plugins=PREFERENCE_PLUGINS) as handle:
        yield handle


async def preferences_of(host: HostHandle, user: str = GUEST) -> dict[str, Any]:
    response = await host.client.get("/api/notifications/preferences", headers=await host.user_headers(user))
    assert response.status_code == 200, response.text
    return response.json()


async def open_settings(browser: Any, host: HostHandle, viewport: dict[str, int] = VIEWPORT) -> tuple[InboxPage, Any]:
    context = await browser.new_context(viewport=viewport, timezone_id="America/New_York")
    inbox = InboxPage(await context.new_page(), host)
    await inbox.open("/notifications#settings")
    email = inbox.page.locator('[data-testid=pref-channel][data-channel="Email"]')
    await email.wait_for()
    return inbox, email


async def status(inbox: InboxPage, state: str) -> str:
    """Wait for the save message of kind ``state`` (ok, error); return its text."""
    message = inbox.page.locator(f'[data-testid=preferences-status][data-state="{state}"]')
    await message.wait_for()
    return (await message.inner_text()).strip()


async def test_set_save_reload_and_a_bad_value(browser: Any, email_host: HostHandle) -> None:
    assert await preferences_of(email_host) == {"channels": [], "available": ["Email"]}
    inbox, email = await open_settings(browser, email_host)
    page = inbox.page
    assert await email.get_by_test_id("pref-mode").input_value() == ""  # the operators' default
    assert await email.get_by_test_id("pref-at").count() == 0
    save = page.get_by_test_id("preferences-save")
    assert await save.is_disabled()

    await email.get_by_test_id("pref-mode").select_option("daily")
    assert await email.get_by_test_id("pref-weekday").count() == 0  # weekly only
    # the timezone starts as the browser's
    assert await email.get_by_test_id("pref-timezone").input_value() == "America/New_York"
    await email.get_by_test_id("pref-at").fill("09:00")
    await email.get_by_test_id("pref-timezone").fill("Europe/Berlin")
    await email.get_by_test_id("pref-quiet").check()
    await email.get_by_test_id("pref-quiet-start").fill("22:00")
    await email.get_by_test_id("pref-quiet-end").fill("07:00")
    await email.get_by_test_id("pref-quiet-timezone").fill("Europe/Berlin")
    await save.click()
    assert await status(inbox, "ok") == "Delivery schedule saved."
    assert await save.is_disabled()
    assert await preferences_of(email_host) == {"channels": [BERLIN_DAILY], "available": ["Email"]}
    assert (await preferences_of(email_host, "user:default/jane"))["channels"] == []  # the caller's own only

    # reloaded, the page shows what is stored
    await inbox.open("/notifications#settings")
    await email.get_by_test_id("pref-quiet-start").wait_for()
    assert await email.get_by_test_id("pref-mode").input_value() == "daily"
    assert await email.get_by_test_id("pref-at").input_value() == "09:00"
    assert await email.get_by_test_id("pref-timezone").input_value() == "Europe/Berlin"
    assert await email.get_by_test_id("pref-quiet").is_checked()
    assert await email.get_by_test_id("pref-quiet-start").input_value() == "22:00"
    assert await email.get_by_test_id("pref-quiet-end").input_value() == "07:00"
    assert await email.get_by_test_id("pref-quiet-timezone").input_value() == "Europe/Berlin"

    # a bad value: the API's 400 message is shown, nothing changes, a fix then saves
    await email.get_by_test_id("pref-mode").select_option("weekly")
    await email.get_by_test_id("pref-weekday").select_option("friday")
    await email.get_by_test_id("pref-timezone").fill("Mars/Base")
    await save.click()
    error = await status(inbox, "error")
    assert error.startswith("Could not save: ") and "unknown timezone 'Mars/Base'" in error, error
    assert await save.is_enabled()
    assert await preferences_of(email_host) == {"channels": [BERLIN_DAILY], "available": ["Email"]}
    await email.get_by_test_id("pref-timezone").fill("Europe/Paris")
    assert await page.get_by_test_id("preferences-status").is_hidden()  # an edit clears the old message
    await save.click()
    await status(inbox, "ok")
    [stored] = (await preferences_of(email_host))["channels"]
    assert (stored["mode"], stored["weekday"], stored["timezone"]) == ("weekly", "friday", "Europe/Paris")

    # back to the default: the entry is removed
    await email.get_by_test_id("pref-mode").select_option("")
    assert await email.get_by_test_id("pref-quiet").count() == 0
    await save.click()
    await status(inbox, "ok")
    assert (await preferences_of(email_host))["channels"] == []
    assert inbox.errors == []


async def test_phone_layout_at_390_px(browser: Any, email_host: HostHandle) -> None:
    inbox, email = await open_settings(browser, email_host, viewport=PHONE)
    await email.get_by_test_id("pref-mode").select_option("weekly")
    await email.get_by_test_id("pref-quiet").check()
    await email.get_by_test_id("pref-quiet-timezone").wait_for()
    layout = await inbox.page.evaluate(
        """() => ({scrollWidth: document.documentElement.scrollWidth,
                   rights: [...document.querySelectorAll('[data-testid=pref-channel] input, [data-testid=pref-channel]'
                            + ' select, [data-testid=preferences-save]')].map((el) => el.getBoundingClientRect().right)})"""
    )
    assert layout["scrollWidth"] <= 390, "nothing sticks out sideways"
    assert len(layout["rights"]) == 9 and max(layout["rights"]) <= 390, layout
    assert inbox.errors == []


async def test_preferences_screenshot(tmp_path: Path) -> None:
    require_browser()
    shot = await take_preferences(tmp_path)
    assert shot.name == "inbox-preferences.png" and shot.stat().st_size > 10_000
