"""The web inbox in headless Chromium: archive and delete, the 390 px layout, pop-ups, sign-out and switch user."""

from __future__ import annotations

from typing import Any

import pytest

from host.testing import eventually
from tests.conftest import HostHandle, start_host
from tests.web.conftest import GUEST, PLUGINS, VIEWPORT, InboxPage, launch_browser, require_browser, send, web_config

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}


async def new_inbox(
    browser: Any, host: HostHandle, *, viewport: dict[str, int] = VIEWPORT, **context: Any
) -> InboxPage:
    page = await (await browser.new_context(viewport=viewport, **context)).new_page()
    return InboxPage(page, host)


async def status_of(host: HostHandle, user: str = GUEST) -> dict[str, int]:
    response = await host.client.get("/api/notifications/status", headers=await host.user_headers(user))
    return response.json()


async def titles_of(host: HostHandle, user: str, **params: str) -> list[str]:
    response = await host.client.get("/api/notifications", params=params, headers=await host.user_headers(user))
    return [item["payload"]["title"] for item in response.json()["notifications"]]


# -- archive and delete ------------------------------------------------------------------------------------------


async def test_archive_unarchive_and_delete(browser: Any, host: HostHandle) -> None:
    await send(host, "All hands on Friday", to=None)  # a broadcast
    for title in ("Spam", "Old news", "Keep me"):
        await send(host, title)
    inbox = await new_inbox(browser, host)
    await inbox.open()
    await inbox.wait_titles(["Keep me", "Old news", "Spam", "All hands on Friday"])
    await inbox.wait_badge("4")

    # archive: out of the inbox and the count, into the Archived view
    await inbox.row("Old news").get_by_test_id("archive").click()
    await inbox.wait_titles(["Keep me", "Spam", "All hands on Friday"])
    await inbox.wait_badge("3")
    assert await status_of(host) == {"unread": 3, "read": 0}
    await inbox.choose("filter-view", "archived")
    await inbox.wait_titles(["Old news"])
    assert await inbox.page.get_by_test_id("list-title").inner_text() == "Archived notifications (1)"
    row = inbox.row("Old news")
    assert await row.get_attribute("data-archived") == "true"
    assert (await row.get_by_test_id("notification-archived").inner_text()).startswith("Archived")
    await row.get_by_test_id("unarchive").click()
    await inbox.wait_titles([])
    assert "Nothing archived" in await inbox.page.get_by_test_id("empty").inner_text()
    await inbox.wait_badge("4")

    # delete asks once more; the second click deletes
    await inbox.choose("filter-view", "unread")
    await inbox.wait_titles(["Keep me", "Old news", "Spam", "All hands on Friday"])
    delete = inbox.row("Spam").get_by_test_id("delete")
    await delete.click()
    assert await delete.inner_text() == "Delete?"
    assert await delete.get_attribute("data-confirm") == "true"
    await delete.click()
    await inbox.wait_titles(["Keep me", "Old news", "All hands on Friday"])
    await inbox.wait_badge("3")
    assert "Spam" not in await titles_of(host, GUEST, archived="true")

    # a broadcast is deleted for this user only
    delete = inbox.row("All hands on Friday").get_by_test_id("delete")
    await delete.click()
    await delete.click()
    await inbox.wait_titles(["Keep me", "Old news"])
    assert await titles_of(host, "user:default/jane") == ["All hands on Friday"]

    # bulk: archive the selection, then delete it from the Archived view
    await inbox.page.get_by_test_id("select-all").check()
    assert await inbox.page.get_by_test_id("bulk-archive").inner_text() == "Archive selected"
    await inbox.page.get_by_test_id("bulk-archive").click()
    await inbox.wait_titles([])
    await inbox.wait_badge(None)
    await inbox.choose("filter-view", "archived")
    await inbox.wait_titles(["Keep me", "Old news"])
    await inbox.page.get_by_test_id("select-all").check()
    assert await inbox.page.get_by_test_id("bulk-archive").inner_text() == "Unarchive selected"
    await inbox.page.get_by_test_id("bulk-delete").click()
    await inbox.page.get_by_test_id("bulk-delete").click()
    await inbox.wait_titles([])
    assert await titles_of(host, GUEST, archived="true") == [] and await titles_of(host, GUEST) == []
    assert inbox.errors == []


# -- a phone: 390 px wide ------------------------------------------------------------------------------------------

#: Geometry of the parts a 390 px layout used to lose: the footer, the pager, the search placeholder.
LAYOUT = """() => {
  const box = (el) => { const r = el.getBoundingClientRect(); return {x: r.x, y: r.y, right: r.right, bottom: r.bottom,
                                                                     width: r.width, height: r.height}; };
  const visible = (el) => { const s = getComputedStyle(el); const r = el.getBoundingClientRect();
                            return s.display !== 'none' && s.visibility !== 'hidden' && r.width > 0 && r.height > 0; };
  const pager = document.querySelector('[data-testid=pager]');
  const search = document.querySelector('[data-testid=filter-search]');
  const style = getComputedStyle(search);
  const canvas = document.createElement('canvas').getContext('2d');
  canvas.font = `${style.fontStyle} ${style.fontWeight} ${style.fontSize} ${style.fontFamily}`;
  const inner = search.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
  return {
    page: {scrollWidth: document.documentElement.scrollWidth, width: window.innerWidth, height: window.innerHeight},
    footer: {visible: visible(document.querySelector('[data-testid=sidebar-footer]')),
             box: box(document.querySelector('[data-testid=sidebar-footer]'))},
    user: {visible: visible(document.querySelector('[data-testid=user] .avatar')),
           box: box(document.querySelector('[data-testid=user]'))},
    connection: {visible: visible(document.querySelector('[data-testid=connection]')),
                 text: document.querySelector('[data-testid=connection]').textContent,
                 box: box(document.querySelector('[data-testid=connection]'))},
    pager: {box: box(pager), scrollWidth: pager.scrollWidth, clientWidth: pager.clientWidth,
            lineHeight: Math.max(...[...pager.children].map((c) => c.getBoundingClientRect().height)),
            tops: [...pager.children].map((c) => c.getBoundingClientRect().top),
            bottoms: [...pager.children].map((c) => c.getBoundingClientRect().bottom),
            // where each line of the pager's shown text starts: one line means the text did not wrap
            textTops: (() => {
              const walker = document.createTreeWalker(pager, NodeFilter.SHOW_TEXT);
              const tops = [];
              for (let node = walker.nextNode(); node; node = walker.nextNode()) {
                if (!node.textContent.trim() || node.parentElement.getBoundingClientRect().width <= 1) continue;
                const range = document.createRange();
                range.selectNodeContents(node);
                for (const rect of range.getClientRects()) tops.push(rect.top);
              }
              return tops;
            })()},
    placeholder: {text: search.placeholder, needed: canvas.measureText(search.placeholder).width, inner},
  };
}"""

OVERLAPS = """() => {
  const pager = document.querySelector('[data-testid=pager]').getBoundingClientRect();
  return [...document.querySelectorAll('#toasts .toast')].map((toast) => {
    const t = toast.getBoundingClientRect();
    return !(t.bottom <= pager.top || t.top >= pager.bottom || t.right <= pager.left || t.left >= pager.right);
  });
}"""


def inside(box: dict[str, float], page: dict[str, float]) -> bool:
    """Whether ``box`` lies within the window."""
    return box["x"] >= 0 and box["y"] >= 0 and box["right"] <= page["width"] and box["bottom"] <= page["height"]


async def test_phone_layout_at_390_px(browser: Any, host: HostHandle) -> None:
    for index in range(7):
        await send(host, f"Release {index} of the payments service is out", topic="deploys")
    inbox = await new_inbox(browser, host, viewport=PHONE)
    await inbox.open()
    await inbox.wait_titles([f"Release {index} of the payments service is out" for index in (6, 5, 4, 3, 2)])
    layout = await inbox.page.evaluate(LAYOUT)
    page = layout["page"]
    assert page["width"] == 390
    assert page["scrollWidth"] <= 390, "nothing sticks out sideways"

    # the user and the "Live" state stay on screen (in the top bar)
    assert layout["footer"]["visible"] and inside(layout["footer"]["box"], page)
    assert layout["user"]["visible"] and inside(layout["user"]["box"], page)
    assert layout["connection"]["visible"] and inside(layout["connection"]["box"], page)
    assert layout["connection"]["text"] == "Live"

    # the pager is one line: every part on the same row, nothing overflowing it
    pager = layout["pager"]
    assert pager["scrollWidth"] <= pager["clientWidth"]
    assert max(pager["tops"]) < min(pager["bottoms"]), f"pager parts on different lines: {pager}"
    assert pager["box"]["height"] < pager["lineHeight"] * 2
    assert pager["textTops"] and max(pager["textTops"]) - min(pager["textTops"]) < 8, f"pager text wraps: {pager}"
    assert pager["box"]["right"] <= 390

    # the whole search placeholder fits in the field
    placeholder = layout["placeholder"]
    assert placeholder["text"] == "Search title and description"
    assert placeholder["needed"] <= placeholder["inner"], placeholder

    # the account menu opens inside the screen; the guest has no one to switch to
    await inbox.page.get_by_test_id("user").click()
    menu = inbox.page.get_by_test_id("user-menu")
    await menu.wait_for()
    box = await menu.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390
    assert await inbox.page.get_by_test_id("sign-out").is_visible()
    assert await inbox.page.get_by_test_id("switch-user").is_hidden()
    await inbox.page.keyboard.press("Escape")
    await menu.wait_for(state="hidden")

    # pop-ups: high and critical look different, and scrolled to the end the pager is not under them
    await send(host, "Disk usage above 85%", severity="high")
    await send(host, "Certificate expires today", severity="critical")
    toasts = inbox.page.get_by_test_id("new-notification-toast")
    await inbox.page.wait_for_function("() => document.querySelectorAll('#toasts .toast').length === 2")
    colours = await toasts.evaluate_all(
        "ts => Object.fromEntries(ts.map(t => [t.dataset.kind, getComputedStyle(t).backgroundColor]))"
    )
    assert set(colours) == {"high", "critical"} and colours["high"] != colours["critical"]
    assert sorted(await toasts.locator(".toast-label").all_inner_texts()) == ["CRITICAL", "HIGH"]
    await inbox.page.evaluate("() => window.scrollTo(0, document.documentElement.scrollHeight)")
    await inbox.page.wait_for_function(f"() => !({OVERLAPS})().some(Boolean)", timeout=5000)
    assert inbox.errors == []


# -- sign out, switch user -------------------------------------------------------------------------------------------


async def test_sign_out_and_switch_user_through_the_proxy() -> None:
    """Sign out forgets the user in every tab and survives a reload; switch user goes through the proxy's sign-out."""
    require_browser()
    config = {
        **web_config(signInProvider="proxy", switchUserUrl="/proxy/sign_out?rd=%2Fnotifications"),
        "auth": {"providers": {"proxy": {"userHeader": "x-forwarded-user", "allowUnknownUsers": True}}},
    }
    from playwright.async_api import async_playwright

    async with start_host("sqlite", config=config, plugins=PLUGINS) as host, async_playwright() as playwright:
        browser = await launch_browser(playwright)
        try:
            await send(host, "For Jane", to="user:default/jane")
            await send(host, "For Bob", to="user:default/bob")
            context = await browser.new_context(viewport=VIEWPORT, extra_http_headers={"X-Forwarded-User": "jane"})
            sign_ins: list[str] = []
            context.on("request", lambda r: sign_ins.append(r.url) if "/api/auth/proxy/refresh" in r.url else None)
            sockets: list[Any] = []
            inbox = InboxPage(await context.new_page(), host)
            inbox.page.on("websocket", lambda socket: sockets.append(socket))
            other_tab = InboxPage(await context.new_page(), host)
            await inbox.open()
            await other_tab.open()
            await inbox.wait_titles(["For Jane"])
            await other_tab.wait_titles(["For Jane"])

            await inbox.page.get_by_test_id("user").click()
            assert await inbox.page.get_by_test_id("user-menu-ref").inner_text() == "user:default/jane"
            assert await inbox.page.get_by_test_id("switch-user").is_visible()
            await inbox.page.get_by_test_id("sign-out").click()

            # this tab: the notifications are off the page, live updates stopped, nothing kept but the marker
            await inbox.page.get_by_test_id("signed-out").wait_for()
            assert await inbox.page.get_by_test_id("notification").count() == 0
            assert "For Jane" not in await inbox.page.inner_text("body")
            assert await inbox.page.get_by_test_id("connection").get_attribute("data-state") == "signed-out"
            assert await inbox.page.get_by_test_id("user").get_attribute("data-user") == ""
            await inbox.page.wait_for_function("() => document.title === 'Notifications'")
            assert sockets and all(socket.is_closed() for socket in sockets)
            # the other tab follows
            await other_tab.page.get_by_test_id("signed-out").wait_for()
            assert await other_tab.page.get_by_test_id("notification").count() == 0

            # a reload stays signed out, without asking the proxy who is there
            before = len(sign_ins)
            await inbox.page.reload()
            await inbox.page.get_by_test_id("signed-out").wait_for()
            await inbox.page.wait_for_selector("body[data-state=signed-out]")
            assert len(sign_ins) == before

            # sign in again: the proxy still says jane; the other tab signs in too
            await inbox.page.get_by_test_id("sign-in").click()
            await inbox.page.wait_for_selector("body[data-state=ready]")
            await inbox.wait_titles(["For Jane"])
            await other_tab.page.wait_for_selector("body[data-state=ready]")
            await other_tab.wait_titles(["For Jane"])

            # switch user: the proxy's sign-out (here a stand-in) ends jane's session and bob signs in there
            proxy_sign_outs: list[str] = []

            async def proxy_sign_out(route: Any) -> None:
                proxy_sign_outs.append(route.request.url)
                await route.fulfill(status=302, headers={"Location": "/notifications"})

            await context.route("**/proxy/sign_out*", proxy_sign_out)
            await context.set_extra_http_headers({"X-Forwarded-User": "bob"})  # who logs in at the proxy next
            await inbox.page.get_by_test_id("user").click()
            async with inbox.page.expect_navigation(url="**/notifications"):
                await inbox.page.get_by_test_id("switch-user").click()
            await inbox.page.wait_for_selector("body[data-state=ready]")
            assert proxy_sign_outs == [f"{host.url}/proxy/sign_out?rd=%2Fnotifications"]
            assert await inbox.page.get_by_test_id("user").get_attribute("data-user") == "user:default/bob"
            await inbox.wait_titles(["For Bob"])
            # the other tab signed out with jane, and in again as bob
            await other_tab.page.wait_for_function(
                "() => document.querySelector('[data-testid=user]').dataset.user === 'user:default/bob'"
            )
            await other_tab.wait_titles(["For Bob"])
            stored = await inbox.page.evaluate(
                "() => [...Object.values(localStorage), ...Object.values(sessionStorage)]"
            )
            assert not [value for value in stored if value.startswith("ey")]  # no token is ever stored
            assert inbox.errors == [] and other_tab.errors == []
        finally:
            await browser.close()


# -- live updates across a reconnect (resumable signals) ----------------------------------------------------------


async def test_live_updates_survive_a_reconnect_without_a_refetch_storm(browser: Any, host: HostHandle) -> None:
    """Frames lost while the socket was dying are replayed after the reconnect, and handled as one batch."""
    inbox = await new_inbox(browser, host)
    state = {"dropping": False}
    sent: list[str] = []  # what the page sent to the server
    lost: list[str] = []  # frames the page never got
    connections: list[tuple[Any, Any]] = []

    def proxy(page_side: Any) -> None:
        server = page_side.connect_to_server()
        connections.append((page_side, server))

        def to_server(message: Any) -> None:
            sent.append(message)
            server.send(message)

        def to_page(message: Any) -> None:
            if state["dropping"]:
                lost.append(message)
            else:
                page_side.send(message)

        page_side.on_message(to_server)
        server.on_message(to_page)

    await inbox.page.route_web_socket("**/api/signals", proxy)
    await inbox.open()
    await inbox.page.wait_for_function("() => document.body.dataset.state === 'ready'")
    requests: list[str] = []
    inbox.page.on("request", lambda request: requests.append(request.url.removeprefix(host.url)))

    # the network goes quiet: 20 notifications are published and never reach the page
    state["dropping"] = True
    for index in range(20):
        await send(host, f"Deploy {index} finished")
    await eventually(lambda: len([frame for frame in lost if "new_notification" in frame]) == 20)
    assert await inbox.badge() is None
    # then the connection drops; the client reconnects and resumes from the last position it saw
    state["dropping"] = False
    page_side, server = connections[-1]
    await server.close()
    await page_side.close(code=4000, reason="network went away")
    await inbox.wait_badge("20", timeout=15000)
    await inbox.page.wait_for_function("() => Number(document.body.dataset.signals) >= 20", timeout=15000)
    await inbox.wait_titles([f"Deploy {index} finished" for index in (19, 18, 17, 16, 15)])

    resumed = [message for message in sent[1:] if '"subscribe"' in message]
    assert resumed and all('"since":"' in message and '"since":""' not in message for message in resumed)
    assert len(connections) == 2
    # one batch: a few refreshes, not one per missed signal, and one summary pop-up instead of 20
    status = [url for url in requests if url.startswith("/api/notifications/status")]
    lists = [url for url in requests if url.startswith("/api/notifications/notifications?")]
    singles = [url for url in requests if url.startswith("/api/notifications/notifications/")]
    assert 1 <= len(status) <= 3, status
    assert 1 <= len(lists) <= 3, lists
    assert singles == []
    assert "20 new notifications" in await inbox.page.get_by_test_id("new-notifications-toast").inner_text()
    assert await inbox.page.evaluate("() => document.body.dataset.resyncs") is None
    assert inbox.errors == []
