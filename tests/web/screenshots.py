"""Take the web inbox screenshots in docs/screenshots/ (``python -m tests.web.screenshots [DIR]``).

Starts a host on SQLite, sends a few realistic notifications to the guest,
and photographs the page in Debian's headless Chromium. ``test_browser.py``
runs it into a temporary folder so that it keeps working.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

from tests.conftest import start_host
from tests.web.conftest import GUEST, PLUGINS, VIEWPORT, InboxPage, launch_browser, send

DEFAULT_DIR = Path(__file__).parents[2] / "docs" / "screenshots"
#: The email module (never sending: a stream transport) makes ``Email`` a channel of the delivery schedule.
EMAIL_CONFIG: dict[str, Any] = {
    "notifications": {
        "processors": {"email": {"sender": "greenroom@example.com", "transportConfig": {"transport": "stream"}}}
    }
}
PREFERENCE_PLUGINS = [*PLUGINS, "notifications-email"]

SEED: list[tuple[str, dict[str, Any]]] = [
    (
        "Quarterly access review is due",
        {"severity": "normal", "topic": "compliance", "description": "Review who can deploy to production by Friday."},
    ),
    (
        "Deploy of payments-api to production succeeded",
        {"severity": "low", "topic": "deploys", "link": "https://ci.example.com/deploys/8812"},
    ),
    (
        "Nightly build of web-frontend failed",
        {
            "severity": "high",
            "topic": "ci",
            "description": "3 tests failed in checkout.spec.ts",
            "link": "https://ci.example.com/builds/4411",
        },
    ),
    (
        "Certificate for api.example.com expires in 5 days",
        {"severity": "critical", "topic": "alerts", "description": "Renew it before Monday."},
    ),
    (
        "New comment on your template",
        {"severity": "normal", "topic": "scaffolder", "description": "dave: can we add a Redis option?"},
    ),
    ("Disk usage on db-2 above 85%", {"severity": "high", "topic": "alerts"}),
]


async def take(directory: Path) -> list[Path]:
    """Write the screenshots into ``directory``; return their paths."""
    from playwright.async_api import async_playwright

    directory.mkdir(parents=True, exist_ok=True)
    shots: list[Path] = []
    async with start_host("sqlite", plugins=PLUGINS) as host, async_playwright() as playwright:
        created = [await send(host, title, **payload) for title, payload in SEED]
        await host.client.post(
            "/api/notifications/notifications/update",
            json={"ids": [created[0]["id"]], "saved": True},
            headers=await host.user_headers(GUEST),
        )
        browser = await launch_browser(playwright)
        try:
            context = await browser.new_context(viewport=VIEWPORT, device_scale_factor=1)
            inbox = InboxPage(await context.new_page(), host)
            await inbox.open()
            await inbox.page.get_by_test_id("page-size").select_option("10")
            await inbox.wait_titles([title for title, _ in reversed(SEED)])

            shots.append(directory / "inbox.png")
            await inbox.page.screenshot(path=shots[-1])

            await send(
                host,
                "Rollback of checkout-service started",
                severity="high",
                topic="deploys",
                description="Triggered by an error-rate alert.",
            )
            await inbox.wait_badge(str(len(SEED) + 1))
            await inbox.page.get_by_test_id("new-notification-toast").wait_for()
            await inbox.wait_titles(["Rollback of checkout-service started"] + [t for t, _ in reversed(SEED)])
            shots.append(directory / "inbox-live-update.png")
            await inbox.page.screenshot(path=shots[-1])
            await inbox.page.evaluate("() => document.getElementById('toasts').replaceChildren()")

            await inbox.choose("filter-severity", "high")
            await inbox.choose("filter-topic", "alerts")
            await inbox.wait_titles(
                ["Disk usage on db-2 above 85%", "Certificate for api.example.com expires in 5 days"]
            )
            shots.append(directory / "inbox-filtered.png")
            await inbox.page.screenshot(path=shots[-1])

            await inbox.open("/notifications#settings")
            await inbox.page.get_by_test_id("settings-matrix").wait_for()
            await inbox.page.locator('input[data-channel="Web"][data-topic="scaffolder"]').uncheck()
            shots.append(directory / "settings.png")
            await inbox.page.screenshot(path=shots[-1], full_page=True)

            # the Archived view, after archiving two notifications from the list
            await inbox.open()
            await inbox.page.get_by_test_id("page-size").select_option("10")
            for title in ("Deploy of payments-api to production succeeded", "Quarterly access review is due"):
                await inbox.row(title).get_by_test_id("archive").click()
                await inbox.row(title).wait_for(state="detached")
            await inbox.choose("filter-view", "archived")
            await inbox.wait_titles(
                ["Deploy of payments-api to production succeeded", "Quarterly access review is due"]
            )
            shots.append(directory / "inbox-archived.png")
            await inbox.page.screenshot(path=shots[-1])

            # a phone, 390 px wide: top bar with the account and "Live", pop-ups above the pager
            phone = await browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=1)
            mobile = InboxPage(await phone.new_page(), host)
            await mobile.open()
            await mobile.page.get_by_test_id("notification").first.wait_for()
            await send(host, "Disk usage on db-3 above 90%", severity="high", topic="alerts")
            await send(host, "Payments API is down", severity="critical", topic="alerts")
            await mobile.page.wait_for_function("() => document.querySelectorAll('#toasts .toast').length === 2")
            await mobile.page.evaluate("() => window.scrollTo(0, document.documentElement.scrollHeight)")
            shots.append(directory / "inbox-mobile.png")
            await mobile.page.screenshot(path=shots[-1])
            await mobile.page.evaluate(
                "() => { document.getElementById('toasts').replaceChildren(); window.scrollTo(0, 0); }"
            )
            await mobile.page.get_by_test_id("user").click()
            await mobile.page.get_by_test_id("user-menu").wait_for()
            shots.append(directory / "inbox-mobile-menu.png")
            await mobile.page.screenshot(path=shots[-1])
        finally:
            await browser.close()
    return shots


async def take_preferences(directory: Path) -> Path:
    """Photograph the delivery schedule of the settings view (with the email module); return the path."""
    from playwright.async_api import async_playwright

    directory.mkdir(parents=True, exist_ok=True)
    shot = directory / "inbox-preferences.png"
    async with (
        start_host("sqlite", config=EMAIL_CONFIG, plugins=PREFERENCE_PLUGINS) as host,
        async_playwright() as playwright,
    ):
        browser = await launch_browser(playwright)
        try:
            context = await browser.new_context(viewport=VIEWPORT, device_scale_factor=1, timezone_id="Europe/Berlin")
            inbox = InboxPage(await context.new_page(), host)
            await inbox.open("/notifications#settings")
            email = inbox.page.locator('[data-testid=pref-channel][data-channel="Email"]')
            await email.get_by_test_id("pref-mode").select_option("weekly")
            await email.get_by_test_id("pref-weekday").select_option("friday")
            await email.get_by_test_id("pref-at").fill("16:30")
            await email.get_by_test_id("pref-quiet").check()
            await email.get_by_test_id("pref-quiet-start").fill("22:00")
            await email.get_by_test_id("pref-quiet-end").fill("07:00")
            await inbox.page.get_by_test_id("preferences-save").click()
            await inbox.page.locator('[data-testid=preferences-status][data-state="ok"]').wait_for()
            await inbox.page.screenshot(path=shot, full_page=True)
        finally:
            await browser.close()
    return shot


def main() -> None:
    directory = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_DIR
    for path in asyncio.run(take(directory)):
        print(path)
    print(asyncio.run(take_preferences(directory)))


if __name__ == "__main__":
    main()
