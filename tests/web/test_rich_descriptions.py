"""Markdown descriptions in the web inbox (headless Chromium): formatted, harmless, and only when opted in."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import HostHandle
from tests.web.conftest import VIEWPORT, InboxPage, send

pytestmark = pytest.mark.browser

HOSTILE = "\n\n".join(
    [
        "**Deploy** of `api` _finished_",
        "<script>window.__xss = 1</script>",
        "[run me](javascript:window.__xss=2) and [data](data:text/html,<script>parent.__xss=3</script>)",
        '<img src=x onerror="window.__xss=4"> <b onclick="window.__xss=5">raw</b>',
        "[docs](https://docs.example.com/deploys)",
        "| host | state |\n| --- | --- |\n| api-1 | **up** |",
    ]
)
PLAIN = "**not bold** <i>not italic</i> [not a link](https://example.com)"


async def test_markdown_renders_harmlessly_and_plain_text_stays_text(browser: Any, host: HostHandle) -> None:
    await send(host, "Markdown", description=HOSTILE, metadata={"descriptionFormat": "markdown"})
    await send(host, "Plain", description=PLAIN)
    page = await (await browser.new_context(viewport=VIEWPORT)).new_page()
    violations: list[str] = []
    page.on(
        "console",
        lambda message: violations.append(message.text) if "Content Security Policy" in message.text else None,
    )
    inbox = InboxPage(page, host)
    async with page.expect_response("**/api/notifications/notifications?*") as listed:
        await inbox.open()
    assert "descriptionHtml=true" in (await listed.value).url
    csp = (await page.request.get(host.url + "/notifications")).headers["content-security-policy"]
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    await inbox.wait_titles(["Plain", "Markdown"])

    rich = inbox.row("Markdown").get_by_test_id("notification-description")
    assert await rich.get_attribute("data-format") == "markdown"
    assert await rich.locator("strong").first.inner_text() == "Deploy"
    assert await rich.locator("code").inner_text() == "api"
    assert await rich.locator("em").inner_text() == "finished"
    assert await rich.locator("table td").all_inner_texts() == ["api-1", "up"]
    # nothing active made it into the page: no script, image or event handler; raw HTML is shown as text
    assert await rich.locator("script, img, iframe, object, [onclick], [onerror]").count() == 0
    text = await rich.inner_text()
    assert "<script>window.__xss = 1</script>" in text and '<b onclick="window.__xss=5">raw</b>' in text
    # only the https link is a link; the javascript: and data: ones are inert text
    links = rich.locator("a")
    assert await links.count() == 1
    assert await links.get_attribute("href") == "https://docs.example.com/deploys"
    assert await links.get_attribute("rel") == "noopener noreferrer"
    inert = rich.locator("p", has_text="run me")
    assert (
        await inert.inner_text()
        == "[run me](javascript:window.__xss=2) and [data](data:text/html,<script>parent.__xss=3</script>)"
    )
    await inert.click()
    assert await page.evaluate("() => window.__xss") is None

    plain = inbox.row("Plain").get_by_test_id("notification-description")
    assert await plain.get_attribute("data-format") == "plain"
    assert await plain.inner_text() == PLAIN
    assert await plain.locator("*").count() == 0  # a single text node: nothing was interpreted
    assert inbox.errors == [] and violations == []


async def test_a_deep_linked_markdown_notification_is_rendered_too(browser: Any, host: HostHandle) -> None:
    created = await send(host, "Linked", description="**bold** _it_", metadata={"descriptionFormat": "markdown"})
    page = await (await browser.new_context(viewport=VIEWPORT)).new_page()
    inbox = InboxPage(page, host)
    await inbox.open(f"/notifications?id={created['id']}")
    await inbox.wait_titles(["Linked"])
    rich = inbox.row("Linked").get_by_test_id("notification-description")
    assert await rich.locator("strong").inner_text() == "bold"
    assert await rich.locator("em").inner_text() == "it"
