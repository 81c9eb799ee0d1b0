"""``?descriptionHtml=true``: the opt-in sanitized HTML of Markdown descriptions on the list and get routes.

Without the parameter the answers are exactly what Backstage's clients expect
(no new field, the description as sent); with it, a notification whose
description is Markdown gets ``descriptionHtml`` and a plain one gets nothing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.conftest import start_host
from tests.notifications.conftest import BROADCAST, Api, notifications_config, user

JANE = "user:default/jane"
MARKDOWN = "**Deploy** done <script>alert(1)</script> [x](javascript:alert(1))"
MARKDOWN_META = {"descriptionFormat": "markdown"}


@pytest.fixture
async def api() -> AsyncIterator[Api]:
    """A host on SQLite (rendering does not depend on the database)."""
    async with start_host("sqlite", config=notifications_config()) as handle:
        yield Api(handle)


@pytest.fixture
async def markdown_default_api() -> AsyncIterator[Api]:
    """A host whose config makes descriptions Markdown by default."""
    async with start_host("sqlite", config=notifications_config(descriptionFormat="markdown")) as handle:
        yield Api(handle)


async def test_without_the_parameter_nothing_changes(api: Api) -> None:
    await api.send_ok(user("jane"), title="md", description=MARKDOWN, metadata=MARKDOWN_META)
    [item] = (await api.list(JANE))["notifications"]
    assert "descriptionHtml" not in item
    assert item["payload"]["description"] == MARKDOWN
    single = (await api.get(JANE, f"/notifications/{item['id']}")).json()
    assert "descriptionHtml" not in single and single["payload"]["description"] == MARKDOWN
    off = (await api.list(JANE, descriptionHtml="false"))["notifications"]
    assert "descriptionHtml" not in off[0]


async def test_markdown_descriptions_get_sanitized_html(api: Api) -> None:
    await api.send_ok(user("jane"), title="md", description=MARKDOWN, metadata=MARKDOWN_META)
    await api.send_ok(user("jane"), title="plain", description="**not markdown** <b>x</b>")
    await api.send_ok(BROADCAST, title="bare")  # no description at all
    items = {item["payload"]["title"]: item for item in (await api.list(JANE, descriptionHtml="true"))["notifications"]}
    html = items["md"]["descriptionHtml"]
    assert html.startswith("<p><strong>Deploy</strong> done &lt;script&gt;")
    assert "<script" not in html and "<a" not in html  # the javascript: link stays text
    assert items["md"]["payload"]["description"] == MARKDOWN  # the payload is never rewritten
    assert "descriptionHtml" not in items["plain"] and "descriptionHtml" not in items["bare"]
    single = (await api.get(JANE, f"/notifications/{items['md']['id']}", descriptionHtml="true")).json()
    assert single["descriptionHtml"] == html


async def test_the_config_default_applies_unless_metadata_says_plain(markdown_default_api: Api) -> None:
    api = markdown_default_api
    await api.send_ok(user("jane"), title="default", description="_it_")
    await api.send_ok(user("jane"), title="plain", description="_it_", metadata={"descriptionFormat": "plain"})
    items = {item["payload"]["title"]: item for item in (await api.list(JANE, descriptionHtml="true"))["notifications"]}
    assert items["default"]["descriptionHtml"] == "<p><em>it</em></p>\n"
    assert "descriptionHtml" not in items["plain"]


@pytest.mark.parametrize("path", ["/notifications", "/notifications/00000000-0000-4000-8000-000000000000"])
async def test_bad_values_are_a_400(api: Api, path: str) -> None:
    response = await api.get(JANE, path, descriptionHtml="yes")
    assert response.status_code == 400
    assert response.json()["error"]["message"] == (
        "request/query/descriptionHtml must be equal to one of the allowed values: true, false"
    )


async def test_the_document_declares_the_parameter_and_the_field(api: Api) -> None:
    document = (await api.client.get("/api/notifications/openapi.json")).json()
    for path in ("/notifications", "/notifications/{id}"):
        names = [param["name"] for param in document["paths"][path]["get"]["parameters"]]
        assert "descriptionHtml" in names, path
    assert document["components"]["schemas"]["Notification"]["properties"]["descriptionHtml"]["type"] == "string"
