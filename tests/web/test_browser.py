"""The web inbox in headless Chromium (Debian's package, driven by Playwright) against a real host."""

from __future__ import annotations

import contextlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from host import core_services
from tests.conftest import HostHandle, start_host
from tests.web.conftest import GUEST, PLUGINS, VIEWPORT, InboxPage, send, web_config

pytestmark = pytest.mark.browser


async def new_inbox(browser: Any, host: HostHandle, **context: Any) -> InboxPage:
    page = await (await browser.new_context(viewport=VIEWPORT, **context)).new_page()
    return InboxPage(page, host)


async def guest_status(host: HostHandle) -> dict[str, int]:
    response = await host.client.get("/api/notifications/status", headers=await host.user_headers(GUEST))
    return response.json()


# -- sign-in ----------------------------------------------------------------------


async def test_guest_sign_in_keeps_the_token_in_memory(browser: Any, host: HostHandle) -> None:
    inbox = await new_inbox(browser, host)
    async with (
        inbox.page.expect_request("**/api/auth/guest/refresh") as sign_in,
        inbox.page.expect_request("**/api/notifications/status") as status,
    ):
        await inbox.open()
    assert (await sign_in.value).method == "GET"
    authorization = await (await status.value).header_value("authorization")
    assert authorization and authorization.startswith("Bearer ey")
    token = authorization.removeprefix("Bearer ")

    assert await inbox.page.get_by_test_id("user").get_attribute("data-user") == GUEST
    assert "guest" in await inbox.page.get_by_test_id("user").inner_text()
    assert await inbox.page.get_by_test_id("list-title").inner_text() == "Unread notifications (0)"
    storage = await inbox.page.evaluate(
        "() => JSON.stringify([Object.entries(localStorage), Object.entries(sessionStorage), document.cookie])"
    )
    assert token not in storage
    assert inbox.errors == []


async def test_proxy_sign_in_from_config() -> None:
    config = {
        **web_config(signInProvider="proxy"),
        "auth": {"providers": {"proxy": {"userHeader": "x-forwarded-user", "allowUnknownUsers": True}}},
    }
    async with start_host("sqlite", config=config, plugins=PLUGINS) as host:
        from playwright.async_api import async_playwright

        from tests.web.conftest import launch_browser, require_browser

        require_browser()
        async with async_playwright() as playwright:
            browser = await launch_browser(playwright)
            try:
                await send(host, "For Jane only", to="user:default/jane")
                inbox = await new_inbox(browser, host, extra_http_headers={"X-Forwarded-User": "jane"})
                async with inbox.page.expect_request("**/api/auth/proxy/refresh"):
                    await inbox.open()
                assert await inbox.page.get_by_test_id("user").get_attribute("data-user") == "user:default/jane"
                await inbox.wait_titles(["For Jane only"])
                await inbox.wait_badge("1")

                # without the proxy's header the page says why it could not sign in
                anonymous = await new_inbox(browser, host)
                await anonymous.open(ready=False)
                error = anonymous.page.get_by_test_id("signin-error")
                await error.wait_for(state="visible")
                assert "proxy" in await error.inner_text()
                assert "did not identify a user" in await error.inner_text()
            finally:
                await browser.close()


async def test_token_is_refreshed_before_it_expires(browser: Any, host: HostHandle) -> None:
    from playwright.async_api import Error as PlaywrightError  # the browser fixture skips without it

    inbox = await new_inbox(browser, host)
    calls: list[float] = []

    async def short_lived(route: Any) -> None:
        try:
            response = await route.fetch()
        except PlaywrightError:  # a refresh still in flight when the host stops at teardown
            with contextlib.suppress(PlaywrightError):
                await route.abort()
            return
        body = await response.json()
        body["backstageIdentity"]["expiresInSeconds"] = 3
        calls.append(body["backstageIdentity"]["expiresInSeconds"])
        await route.fulfill(response=response, body=json.dumps(body))

    await inbox.page.route("**/api/auth/guest/refresh", short_lived)
    await inbox.open()
    assert len(calls) == 1
    # with 3 s to live it signs in again after about 2.25 s, without any request needing it
    await inbox.page.wait_for_timeout(3500)
    assert len(calls) >= 2
    await send(host, "After refresh")
    await inbox.wait_badge("1")
    assert inbox.errors == []
    # the page refreshes every ~2 s: stop intercepting before the host stops
    await inbox.page.unroute_all(behavior="ignoreErrors")


# -- live updates ---------------------------------------------------------------


async def test_arriving_notification_bumps_badge_and_title_without_reload(browser: Any, host: HostHandle) -> None:
    inbox = await new_inbox(browser, host)
    await inbox.open()
    assert await inbox.badge() is None
    assert await inbox.page.title() == "Notifications"
    await inbox.page.evaluate("() => { window.__sameDocument = true; }")

    await send(host, "Deploy finished", severity="high", topic="deploys")
    await inbox.wait_badge("1")
    await inbox.page.wait_for_function("() => document.title === '(1) Notifications'")
    await inbox.wait_titles(["Deploy finished"])  # the list refreshes too (throttled)
    toast = inbox.page.get_by_test_id("new-notification-toast")
    assert "Deploy finished" in await toast.first.inner_text()

    await send(host, "Everyone: maintenance tonight", to=None)  # a broadcast counts too
    await inbox.wait_badge("2")
    await inbox.page.wait_for_function("() => document.title === '(2) Notifications'")
    assert await inbox.page.evaluate("() => window.__sameDocument") is True
    assert inbox.errors == []


async def test_badge_caps_at_99_and_polls_without_signals(browser: Any, host: HostHandle) -> None:
    inbox = await new_inbox(browser, host)

    async def many(route: Any) -> None:
        await route.fulfill(json={"unread": 150, "read": 3})

    await inbox.page.route("**/api/notifications/status", many)
    await inbox.page.route("**/api/signals/client.js", lambda route: route.abort())
    await inbox.open(ready=False)
    await inbox.page.wait_for_selector("body[data-state=ready]")
    await inbox.wait_badge("99+")
    await inbox.page.wait_for_function("() => document.title === '(150) Notifications'")
    connection = inbox.page.get_by_test_id("connection")
    assert await connection.get_attribute("data-state") == "polling"
    assert await connection.inner_text() == "Updates every 30 s"


async def test_title_counter_can_be_turned_off(browser: Any, host: HostHandle) -> None:
    await send(host, "One")
    inbox = await new_inbox(browser, host)
    await inbox.open()
    await inbox.page.wait_for_function("() => document.title === '(1) Notifications'")
    await inbox.open("/notifications#settings")
    await inbox.page.get_by_test_id("pref-title-counter").uncheck()
    await inbox.page.wait_for_function(
        "() => document.title === 'Notification settings' || document.title === 'Notifications'"
    )
    assert not (await inbox.page.title()).startswith("(")
    # the choice is kept in localStorage across reloads
    await inbox.open()
    await send(host, "Two")
    await inbox.wait_badge("2")
    await inbox.page.wait_for_timeout(200)
    assert await inbox.page.title() == "Notifications"


async def test_browser_notification_for_new_notification(browser: Any, host: HostHandle) -> None:
    inbox = await new_inbox(browser, host)
    # record what the page asks the Notification API to show (headless Chromium shows nothing)
    await inbox.page.add_init_script("""
        window.__shown = [];
        window.Notification = class {
          static permission = 'granted';
          static requestPermission() { return Promise.resolve('granted'); }
          constructor(title, options) { window.__shown.push({title, ...options}); }
          close() {}
        };
        localStorage.setItem('greenroom.notifications.preferences', JSON.stringify({webNotificationsEnabled: true}));
    """)
    await inbox.open()
    created = await send(host, "Build broke", description="main is red", link="https://ci.example.com/1")
    await inbox.page.wait_for_function("() => window.__shown.length === 1")
    shown = await inbox.page.evaluate("() => window.__shown[0]")
    assert shown == {"title": "Build broke", "body": "main is red", "tag": created["id"]}


# -- actions ----------------------------------------------------------------------


async def test_mark_read_unread_save_and_mark_all_read(browser: Any, host: HostHandle) -> None:
    for title in ("First", "Second", "Third"):
        await send(host, title)
    inbox = await new_inbox(browser, host)
    await inbox.open()
    await inbox.wait_titles(["Third", "Second", "First"])
    await inbox.wait_badge("3")

    await inbox.row("Second").get_by_test_id("mark-read").click()
    await inbox.wait_titles(["Third", "First"])
    await inbox.wait_badge("2")
    assert await guest_status(host) == {"unread": 2, "read": 1}

    await inbox.choose("filter-view", "read")
    await inbox.wait_titles(["Second"])
    assert await inbox.page.get_by_test_id("list-title").inner_text() == "Read notifications (1)"
    await inbox.row("Second").get_by_test_id("mark-unread").click()
    await inbox.wait_titles([])
    await inbox.wait_badge("3")

    await inbox.choose("filter-view", "all")
    await inbox.wait_titles(["Third", "Second", "First"])
    await inbox.row("First").get_by_test_id("save").click()
    await inbox.page.wait_for_selector("[data-testid=notification][data-saved=true]")
    await inbox.choose("filter-view", "saved")
    await inbox.wait_titles(["First"])

    # bulk: select rows, toggle read
    await inbox.choose("filter-view", "unread")
    await inbox.wait_titles(["Third", "Second", "First"])
    await inbox.page.get_by_test_id("select-all").check()
    assert await inbox.page.get_by_test_id("bulk-read").inner_text() == "Mark selected read"
    await inbox.page.get_by_test_id("bulk-read").click()
    await inbox.wait_titles([])
    await inbox.wait_badge(None)

    # mark all read is enabled only while something is unread
    assert await inbox.page.get_by_test_id("mark-all-read").is_disabled()
    await send(host, "Fourth")
    await send(host, "Fifth")
    await inbox.wait_badge("2")
    await inbox.page.wait_for_function("() => !document.querySelector('[data-testid=mark-all-read]').disabled")
    await inbox.page.get_by_test_id("mark-all-read").click()
    await inbox.wait_badge(None)
    await inbox.wait_titles([])
    assert await guest_status(host) == {"unread": 0, "read": 5}
    assert inbox.errors == []


async def test_deep_link_highlights_a_notification(browser: Any, host: HostHandle) -> None:
    target = await send(host, "Look at me")
    for index in range(6):
        await send(host, f"Filler {index}")
    await host.client.post(
        "/api/notifications/notifications/update",
        json={"ids": [target["id"]], "read": True},
        headers=await host.user_headers(GUEST),
    )
    inbox = await new_inbox(browser, host)
    await inbox.open(f"/notifications?id={target['id']}")
    highlighted = inbox.page.locator("[data-testid=notification].highlight")
    await highlighted.wait_for()
    assert await highlighted.get_by_test_id("notification-title").inner_text() == "Look at me"
    assert await inbox.page.get_by_test_id("filter-view").input_value() == "read"


# -- filters ------------------------------------------------------------------------


async def seed_for_filters(host: HostHandle) -> dict[str, dict[str, Any]]:
    specs = [
        ("Disk almost full", {"severity": "critical", "topic": "alerts", "description": "db-1 at 97%"}),
        ("Deploy of web succeeded", {"severity": "low", "topic": "deploys"}),
        ("Nightly build failed", {"severity": "high", "topic": "ci", "description": "3 tests failed"}),
        ("Deploy of api succeeded", {"severity": "normal", "topic": "deploys"}),
        ("Quarterly review", {"severity": "normal"}),
        ("Old alert", {"severity": "high", "topic": "alerts"}),
        ("Flaky test quarantined", {"severity": "low", "topic": "ci"}),
    ]
    return {title: await send(host, title, **payload) for title, payload in specs}


async def set_column(host: HostHandle, notification_id: str, column: str, value: Any) -> None:
    """Change a stored notification behind the API's back."""
    database = await host.backend.get_service(core_services.database, "notifications")
    engine = await database.get_engine()
    async with engine.begin() as conn:
        await conn.execute(
            sa.text(f"UPDATE notification SET {column} = :value WHERE id = :id"),
            {"value": value, "id": notification_id},
        )


async def age(host: HostHandle, notification_id: str, days: int) -> None:
    """Move a notification's creation date ``days`` into the past."""
    await set_column(host, notification_id, "created", datetime.now(UTC) - timedelta(days=days))


async def test_filters_search_sort_and_pagination(browser: Any, host: HostHandle) -> None:
    seeded = await seed_for_filters(host)
    await age(host, seeded["Old alert"]["id"], days=10)
    newest_first = [
        "Flaky test quarantined",
        "Quarterly review",
        "Deploy of api succeeded",
        "Nightly build failed",
        "Deploy of web succeeded",
        "Disk almost full",
        "Old alert",
    ]
    inbox = await new_inbox(browser, host)
    await inbox.open()

    # pagination: 5 a page by default
    await inbox.wait_titles(newest_first[:5])
    assert await inbox.page.get_by_test_id("page-range").inner_text() == "1\u20135 of 7"
    assert await inbox.page.get_by_test_id("page-prev").is_disabled()
    await inbox.page.get_by_test_id("page-next").click()
    await inbox.wait_titles(newest_first[5:])
    assert await inbox.page.get_by_test_id("page-range").inner_text() == "6\u20137 of 7"
    assert await inbox.page.get_by_test_id("page-next").is_disabled()
    await inbox.page.get_by_test_id("page-size").select_option("10")
    await inbox.wait_titles(newest_first)

    # severity at least high
    await inbox.choose("filter-severity", "high")
    await inbox.wait_titles(["Nightly build failed", "Disk almost full", "Old alert"])
    await inbox.choose("filter-severity", "low")

    # topic, with choices from /topics
    await inbox.wait_titles(newest_first)
    options = await inbox.page.get_by_test_id("filter-topic").locator("option").all_inner_texts()
    assert options[0] == "Any topic" and sorted(options[1:]) == ["alerts", "ci", "deploys"]
    await inbox.choose("filter-topic", "deploys")
    await inbox.wait_titles(["Deploy of api succeeded", "Deploy of web succeeded"])
    await inbox.choose("filter-topic", "")

    # sent out within the last week leaves the 10-day-old one out
    await inbox.choose("filter-created", "week")
    await inbox.wait_titles(newest_first[:-1])
    await inbox.choose("filter-created", "any")

    # sort
    await inbox.choose("filter-sort", "oldest")
    await inbox.wait_titles(list(reversed(newest_first)))
    await inbox.choose("filter-sort", "newest")

    # free-text search over title and description
    await inbox.page.get_by_test_id("filter-search").fill("failed")
    await inbox.wait_titles(["Nightly build failed"])
    await inbox.page.get_by_test_id("filter-search").fill("97%")
    await inbox.wait_titles(["Disk almost full"])
    await inbox.page.get_by_test_id("filter-search").fill("nothing like this")
    await inbox.wait_titles([])
    assert "match" in await inbox.page.get_by_test_id("empty").inner_text()
    await inbox.page.get_by_test_id("filter-search").fill("")
    await inbox.wait_titles(newest_first)

    # views: saved and read
    await host.client.post(
        "/api/notifications/notifications/update",
        json={"ids": [seeded["Quarterly review"]["id"]], "saved": True},
        headers=await host.user_headers(GUEST),
    )
    await inbox.choose("filter-view", "saved")
    await inbox.wait_titles(["Quarterly review"])
    await inbox.choose("filter-view", "read")
    await inbox.wait_titles([])
    assert inbox.errors == []


# -- safety ---------------------------------------------------------------------------


async def test_notification_content_cannot_inject_markup_or_script(browser: Any, host: HostHandle) -> None:
    evil_title = '<img src=x onerror="window.__xss=1">Pwned'
    # the API refuses links other than http(s); rows written some other way must still be harmless
    evil = await send(
        host, evil_title, description="<script>window.__xss=2</script><b>bold</b>", link="https://example.com/"
    )
    await set_column(host, evil["id"], "link", "javascript:window.__xss=3")
    data = await send(host, "Data link", link="https://example.com/")
    await set_column(host, data["id"], "link", "data:text/html,<script>alert(1)</script>")
    await send(host, "Good link", link="https://example.com/build/1")
    await send(host, "Relative link", link="/catalog/default/component/web")
    inbox = await new_inbox(browser, host)
    await inbox.open()
    await inbox.wait_titles(["Relative link", "Good link", "Data link", evil_title])
    row = inbox.row(evil_title)
    assert await row.locator("img, script, b").count() == 0
    assert (
        await row.get_by_test_id("notification-description").inner_text()
        == "<script>window.__xss=2</script><b>bold</b>"
    )
    assert await row.locator("a").count() == 0
    assert await inbox.row("Data link").locator("a").count() == 0
    good = inbox.row("Good link").locator("a")
    assert await good.get_attribute("href") == "https://example.com/build/1"
    assert await good.get_attribute("rel") == "noopener noreferrer"
    relative = inbox.row("Relative link").locator("a")
    assert await relative.get_attribute("href") == f"{host.url}/catalog/default/component/web"
    await inbox.row(evil_title).get_by_test_id("notification-title").click()
    await inbox.page.wait_for_timeout(200)
    assert await inbox.page.evaluate("() => window.__xss") is None

    checks = await inbox.page.evaluate("""async () => {
        const {safeHref} = await import('/notifications/static/dom.js');
        return ['javascript:alert(1)', 'JaVaScRiPt:alert(1)', ' javascript:alert(1)', 'java\\tscript:alert(1)',
                'data:text/html,x', 'vbscript:x', 'https://a.example/x', 'http://a.example/', '/x?y=1', 'rel/path',
                '', null].map(link => safeHref(link, 'https://host.example/notifications'));
    }""")
    assert checks == [
        None,
        None,
        None,
        None,
        None,
        None,
        "https://a.example/x",
        "http://a.example/",
        "https://host.example/x?y=1",
        "https://host.example/rel/path",
        None,
        None,
    ]


# -- settings --------------------------------------------------------------------------


async def test_settings_matrix_saves_channel_origin_topic(browser: Any, host: HostHandle) -> None:
    await send(host, "Deployed", topic="deploys")
    await send(host, "Built", topic="ci")
    inbox = await new_inbox(browser, host)
    await inbox.open("/notifications#settings")
    matrix = inbox.page.get_by_test_id("settings-matrix")
    await matrix.wait_for()
    origin = inbox.page.locator('[data-testid=settings-origin][data-origin="test-service"]')
    assert await origin.count() == 1
    topics = await inbox.page.locator('[data-testid=settings-topic][data-origin="test-service"]').evaluate_all(
        "rows => rows.map(r => r.dataset.topic)"
    )
    assert sorted(topics) == ["ci", "deploys"]
    save = inbox.page.get_by_test_id("settings-save")
    assert await save.is_disabled()

    await inbox.page.locator('input[data-channel="Web"][data-origin="test-service"][data-topic="ci"]').uncheck()
    await save.click()
    await inbox.page.get_by_test_id("saved-toast").wait_for()
    settings = (await host.client.get("/api/notifications/settings", headers=await host.user_headers(GUEST))).json()
    web = next(channel for channel in settings["channels"] if channel["id"] == "Web")
    origin_setting = next(item for item in web["origins"] if item["id"] == "test-service")
    assert origin_setting["enabled"] is True
    assert {t["id"]: t["enabled"] for t in origin_setting["topics"]} == {"ci": False, "deploys": True}

    # turning the origin off disables its topic toggles
    await inbox.page.locator('input[data-channel="Web"][data-origin="test-service"]:not([data-topic])').uncheck()
    assert await inbox.page.locator('input[data-channel="Web"][data-topic="deploys"]').is_disabled()
    await save.click()
    await inbox.page.wait_for_function("() => document.querySelector('[data-testid=settings-save]').disabled")
    settings = (await host.client.get("/api/notifications/settings", headers=await host.user_headers(GUEST))).json()
    web = next(channel for channel in settings["channels"] if channel["id"] == "Web")
    assert next(item for item in web["origins"] if item["id"] == "test-service")["enabled"] is False

    # the browser card keeps its toggles in localStorage
    await inbox.page.get_by_test_id("pref-snackbar").uncheck()
    stored = await inbox.page.evaluate("() => JSON.parse(localStorage.getItem('greenroom.notifications.preferences'))")
    assert stored["snackbarEnabled"] is False
    assert inbox.errors == []


# -- docs ---------------------------------------------------------------------------------


async def test_screenshots_script(tmp_path: Any) -> None:
    from tests.web.conftest import require_browser
    from tests.web.screenshots import take

    require_browser()
    shots = await take(tmp_path)
    assert [path.name for path in shots] == [
        "inbox.png",
        "inbox-live-update.png",
        "inbox-filtered.png",
        "settings.png",
        "inbox-archived.png",
        "inbox-mobile.png",
        "inbox-mobile-menu.png",
    ]
    assert all(path.read_bytes().startswith(b"\x89PNG") for path in shots)


async def test_why_am_i_seeing_this_shows_the_group_path_and_channels(browser: Any, tmp_path: Any) -> None:
    """The row's "Why am I seeing this?" shows the path that reached the user and each channel's status."""
    org = tmp_path / "org.yaml"
    org.write_text(
        "apiVersion: backstage.io/v1alpha1\nkind: Group\nmetadata: {name: org}\nspec: {type: org, children: [team]}\n"
        "---\napiVersion: backstage.io/v1alpha1\nkind: Group\nmetadata: {name: team}\n"
        "spec: {type: team, parent: org, children: [], members: [guest]}\n"
        "---\napiVersion: backstage.io/v1alpha1\nkind: User\nmetadata: {name: guest}\nspec: {}\n"
    )
    config = {"catalog": {"locations": [{"type": "file", "target": str(org)}]}}
    async with start_host("sqlite", config=config, plugins=PLUGINS) as host:
        await send(host, "Org news", to="group:default/org")
        inbox = await new_inbox(browser, host)
        await inbox.open()
        await inbox.wait_titles(["Org news"])
        await inbox.row("Org news").get_by_test_id("why").click()
        path = inbox.page.get_by_test_id("why-path")
        await path.wait_for()
        assert await path.inner_text() == (
            "Reached you through: group:default/org \u2192 group:default/team \u2192 user:default/guest"
        )
        channels = inbox.page.get_by_test_id("why-channel")
        assert await channels.all_inner_texts() == ["Web: sent (setting: default)"]
        await inbox.row("Org news").get_by_test_id("why").click()  # a second click hides it
        await inbox.page.get_by_test_id("why-panel").wait_for(state="detached")
        assert inbox.errors == []
