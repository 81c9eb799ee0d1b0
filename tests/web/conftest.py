"""Fixtures of the web inbox tests: a host, headless Chromium driven by Playwright, and a page helper.

The browser is Debian's ``chromium`` (``scripts/install-browser.sh``) at
``/usr/bin/chromium`` (``GREENROOM_CHROMIUM`` overrides it); Playwright never
downloads one. Without the browser or the ``playwright`` package the browser
tests are skipped, and fail under ``CI=true``.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.conftest import IN_CI, SERVICE_TOKEN, HostHandle, start_host

CHROMIUM = os.environ.get("GREENROOM_CHROMIUM", "/usr/bin/chromium")
#: Flags for headless Chromium as root on a machine without network access.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
GUEST = "user:default/guest"
#: The entry points the web tests need (other installed plugins stay out of the way).
PLUGINS = ["auth", "catalog", "notifications", "signals"]
VIEWPORT = {"width": 1280, "height": 800}


def browser_missing() -> str | None:
    """Why the browser tests cannot run here, or None."""
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (pip install -e '.[test]')"
    if not (os.path.exists(CHROMIUM) or shutil.which(CHROMIUM)):
        return f"{CHROMIUM} is missing (scripts/install-browser.sh installs Debian's chromium)"
    return None


def require_browser() -> None:
    """Skip (or, under CI, fail) when no browser can be driven."""
    reason = browser_missing()
    if reason:
        if IN_CI:
            pytest.fail(reason)
        pytest.skip(reason)


async def launch_browser(playwright: Any) -> Any:
    """Debian's Chromium through Playwright, headless, with no browser download."""
    return await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    """A headless Chromium for one test."""
    require_browser()
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await launch_browser(playwright)
        try:
            yield browser
        finally:
            await browser.close()


def web_config(**web: Any) -> dict[str, Any]:
    """Host config for the web tests; ``web`` goes to ``notifications.web``."""
    return {"notifications": {"web": web}} if web else {}


@pytest.fixture
async def host() -> AsyncIterator[HostHandle]:
    """A host with the auth, catalog, notifications and signals plugins on SQLite."""
    async with start_host("sqlite", config=web_config(), plugins=PLUGINS) as handle:
        yield handle


async def send(handle: HostHandle, title: str, *, to: str | None = GUEST, **payload: Any) -> dict[str, Any]:
    """Send one notification as the test service (to ``to``, or a broadcast when None); return it."""
    recipients = {"type": "entity", "entityRef": to} if to else {"type": "broadcast"}
    response = await handle.client.post(
        "/api/notifications",
        json={"recipients": recipients, "payload": {"title": title, **payload}},
        headers={"Authorization": f"Bearer {SERVICE_TOKEN}"},
    )
    assert response.status_code == 200, response.text
    created = response.json()
    assert created, "the notification reached nobody"
    return created[0]


class InboxPage:
    """Drives the inbox page of one host in one browser page."""

    def __init__(self, page: Any, handle: HostHandle) -> None:
        self.page = page
        self.handle = handle
        self.errors: list[str] = []
        page.on("pageerror", lambda error: self.errors.append(str(error)))

    async def open(self, path: str = "/notifications", *, ready: bool = True) -> None:
        """Load the page; wait until it signed in, listed and connected to signals."""
        await self.page.goto(self.handle.url + path)
        if ready:
            await self.page.wait_for_selector("body[data-state=ready]", timeout=15000)
            await self.page.wait_for_selector('#connection[data-state="open"]', timeout=15000)

    async def badge(self) -> str | None:
        """The sidebar badge's text, or None while it is hidden."""
        badge = self.page.get_by_test_id("unread-badge")
        return None if await badge.is_hidden() else (await badge.inner_text()).strip()

    async def wait_badge(self, expected: str | None, timeout: float = 10000) -> None:
        """Wait until the badge shows ``expected`` (None: hidden)."""
        if expected is None:
            await self.page.wait_for_function("() => document.getElementById('unread-badge').hidden", timeout=timeout)
        else:
            await self.page.wait_for_function(
                "text => { const b = document.getElementById('unread-badge');"
                " return !b.hidden && b.textContent.trim() === text; }",
                arg=expected,
                timeout=timeout,
            )

    def rows(self) -> Any:
        """The notification rows as a Playwright locator."""
        return self.page.get_by_test_id("notification")

    def row(self, title: str) -> Any:
        """The row whose title is exactly ``title``."""
        return self.rows().filter(has=self.page.get_by_test_id("notification-title").get_by_text(title, exact=True))

    async def titles(self) -> list[str]:
        """The titles of the rows shown, top to bottom."""
        return [text.strip() for text in await self.page.get_by_test_id("notification-title").all_inner_texts()]

    async def wait_titles(self, expected: list[str], timeout: float = 10000) -> None:
        """Wait until the list shows exactly ``expected`` (in order)."""
        await self.page.wait_for_function(
            "expected => { const got = [...document.querySelectorAll('[data-testid=notification-title]')]"
            ".map(e => e.textContent.trim()); return JSON.stringify(got) === JSON.stringify(expected); }",
            arg=expected,
            timeout=timeout,
        )

    async def choose(self, test_id: str, value: str) -> None:
        """Pick ``value`` in a filter select."""
        await self.page.get_by_test_id(test_id).select_option(value)
