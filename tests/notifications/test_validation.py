"""Strict request validation as Backstage's OpenAPI validator does it, derived from the served document.

Every expected message was copied from a live Backstage (notifications-backend 0.6.11). Each test
runs over HTTP against a real host, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

from typing import Any

import pytest

from host import core_services
from tests.conftest import HostHandle
from tests.notifications.conftest import BROADCAST, Api, user

MOCK = "user:default/mock"


def input_error(message: str, method: str, url: str) -> dict[str, Any]:
    """Backstage's 400 body."""
    return {
        "error": {"name": "InputError", "message": message},
        "request": {"method": method, "url": url},
        "response": {"statusCode": 400},
    }


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("sort=x", "Unknown query parameter 'sort'"),
        ("read=yes&foo=1", "Unknown query parameter 'foo'"),
        ("read=yes", "request/query/read must be equal to one of the allowed values: true, false"),
        ("read=TRUE", "request/query/read must be equal to one of the allowed values: true, false"),
        ("saved=1", "request/query/saved must be equal to one of the allowed values: true, false"),
        ("read=true&read=false", "request/query/read must be string"),
        (
            "minimumSeverity=HIGH",
            "request/query/minimumSeverity must be equal to one of the allowed values: critical, high, normal, low",
        ),
        ("topic=", "Empty value found for query parameter 'topic'"),
        ("search=", "Empty value found for query parameter 'search'"),
        ("topic=a&topic=b", "request/query/topic must be string"),
        ("limit=abc", "request/query/limit must be integer"),
        ("limit=1.5", "request/query/limit must be integer"),
        ("limit=-1&offset=-2", "request/query/offset must be >= 0"),
        ("read=yes&limit=abc&minimumSeverity=x", "request/query/limit must be integer"),
    ],
)
async def test_list_query_is_strict(api: Api, query: str, message: str) -> None:
    """Unknown names, empty values, non-boolean flags and off-enum severities are 400s; url keeps the query."""
    for path, url in [("", "/"), ("/notifications", "/notifications")]:
        response = await api.client.get(f"/api/notifications{path}?{query}", headers=await api.headers(MOCK))
        assert response.status_code == 400, (path, query)
        assert response.json() == input_error(message, "GET", f"{url}?{query}")


@pytest.mark.parametrize("name", ["limit", "offset", "orderField", "topic", "bogus"])
async def test_topics_accept_only_the_filters(api: Api, name: str) -> None:
    """``/topics`` takes search, read, saved, createdAfter and minimumSeverity, nothing else."""
    headers = await api.headers(MOCK)
    response = await api.client.get(f"/api/notifications/topics?{name}=1", headers=headers)
    assert response.json() == input_error(f"Unknown query parameter '{name}'", "GET", f"/topics?{name}=1")
    ok = await api.client.get(
        "/api/notifications/topics?search=x&read=true&saved=false&minimumSeverity=low"
        "&createdAfter=2020-01-01T00:00:00Z",
        headers=headers,
    )
    assert ok.status_code == 200, ok.text


async def test_valid_queries_still_work(api: Api) -> None:
    """What the web inbox and Backstage's client send is accepted."""
    await api.send_ok(user("mock"), title="hello", topic="t", severity="high")
    body = await api.list(
        MOCK,
        limit=10,
        offset=0,
        orderField=["created,desc", "title"],
        search="HELL",
        read="false",
        saved="false",
        minimumSeverity="normal",
        topic="t",
        createdAfter="2020-01-01T00:00:00.000Z",
    )
    assert body["totalCount"] == 1
    # Integers as AJV coerces them; a limit beyond 2**31 - 1 selects what 2**31 - 1 does (Backstage: 500).
    for limit in ("1e3", "5.0", "99999999999999999999"):
        assert len((await api.list(MOCK, limit=limit))["notifications"]) == 1, limit


async def test_validation_runs_after_authentication(api: Api) -> None:
    """No token is 401 first; a service token on a user route gets the 400, as Backstage's order is."""
    assert (await api.client.get("/api/notifications?sort=x")).status_code == 401
    response = await api.client.get("/api/notifications/status?foo=1", headers=api.handle.service_headers)
    assert response.json() == input_error("Unknown query parameter 'foo'", "GET", "/status?foo=1")


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"title": "t", "topic": None}, "request/body/payload/topic must be string"),
        ({"title": "t", "description": None}, "request/body/payload/description must be string"),
        (
            {"title": "t", "severity": "HIGH"},
            "request/body/payload/severity must be equal to one of the allowed values: critical, high, normal, low",
        ),
        ({"title": 1, "severity": "HIGH", "topic": None}, "request/body/payload/title must be string"),
        ({"title": "t", "metadata": [1]}, "request/body/payload/metadata must be object"),
        ({}, "request/body/payload must have required property 'title'"),
    ],
)
async def test_send_body_is_strict(api: Api, payload: dict[str, Any], message: str) -> None:
    """Nulls, off-enum severities and wrong types are 400s with AJV's messages; nothing is stored."""
    response = await api.client.post(
        "/api/notifications", json={"recipients": BROADCAST, "payload": payload}, headers=api.handle.service_headers
    )
    assert response.json() == input_error(message, "POST", "/")
    assert await api.count_rows("broadcast") == 0


async def test_unknown_recipients_keep_backstages_message(api: Api) -> None:
    """The ``entities`` alias does not change the message for a bad recipients object."""
    response = await api.send({"type": "nobody", "entityRef": "user:default/mock"})
    assert response.json()["error"]["message"] == (
        "request/body/recipients/type must be equal to one of the allowed values: entity, "
        "request/body/recipients/type must be equal to one of the allowed values: broadcast, "
        "request/body/recipients must match exactly one schema in oneOf"
    )
    response = await api.send({"type": "entities"})
    assert response.json()["error"]["message"] == "request/body/recipients must have required property 'entityRefs'"


@pytest.mark.parametrize(
    ("path", "body", "message"),
    [
        ("/notifications/update", {"ids": [], "read": None}, "request/body/read must be boolean"),
        ("/update", {"ids": [], "saved": "true"}, "request/body/saved must be boolean"),
        ("/notifications/update", {"ids": "x", "read": True}, "request/body/ids must be array"),
        ("/notifications/update", {"ids": [1], "read": True}, "request/body/ids/0 must be string"),
        ("/notifications/update", {"read": True}, "request/body must have required property 'ids'"),
        ("/settings", {"channels": [{"id": "Web"}]}, "request/body/channels/0 must have required property 'origins'"),
        (
            "/settings",
            {"channels": [{"id": "Web", "origins": [{"id": "x"}]}]},
            "request/body/channels/0/origins/0 must have required property 'enabled'",
        ),
        (
            "/settings",
            {"channels": [{"id": "Web", "enabled": None, "origins": []}]},
            "request/body/channels/0/enabled must be boolean",
        ),
        ("/settings", {}, "request/body must have required property 'channels'"),
    ],
)
async def test_user_bodies_are_strict(api: Api, path: str, body: Any, message: str) -> None:
    """``/update`` needs boolean flags, settings channels need ``origins``."""
    response = await api.post(MOCK, path, body)
    assert response.json() == input_error(message, "POST", path)


async def test_update_without_flags_is_a_no_op(api: Api) -> None:
    """``{"ids": []}`` is valid (Backstage answers ``[]`` too)."""
    response = await api.post(MOCK, "/notifications/update", {"ids": []})
    assert (response.status_code, response.json()) == (200, [])


@pytest.mark.parametrize("link", ["http://", "https://exa mple.com"])
async def test_links_that_do_not_parse_are_refused(api: Api, link: str) -> None:
    """As Node's ``new URL(link, app.baseUrl)`` fails, with Backstage's message and cause."""
    response = await api.send(BROADCAST, link=link)
    assert response.status_code == 400
    base = api.handle.config["app"]["baseUrl"] + "/"
    assert response.json()["error"] == {
        "name": "InputError",
        "message": "Invalid link provided; caused by TypeError: Invalid URL",
        "cause": {
            "code": "ERR_INVALID_URL",
            "input": link,
            "base": base,
            "name": "TypeError",
            "message": "Invalid URL",
        },
    }
    assert await api.count_rows("broadcast") == 0


@pytest.mark.parametrize(
    "link", ["//evil.example/x", "/\\evil.example/x", "\\\\evil.example", "///evil.example", "/\t/evil.example"]
)
async def test_protocol_relative_links_are_refused(api: Api, link: str) -> None:
    """A relative link that leaves the app's host is refused (Backstage stores it)."""
    response = await api.send(user("mock"), link=link)
    assert response.status_code == 400, link
    assert response.json()["error"]["message"] == (
        "Invalid link provided; caused by Error: Relative links must stay within the app"
    )
    assert await api.count_rows() == 0


@pytest.mark.parametrize("link", ["/catalog", "catalog/x", "?tab=1", "https://example.com/a b", "HTTP://Example.com"])
async def test_relative_and_absolute_links_still_work(api: Api, link: str) -> None:
    """Relative links within the app and absolute http(s) links are stored unchanged."""
    [item] = await api.send_ok(user("mock"), link=link)
    assert item["payload"]["link"] == link


@pytest.mark.parametrize(
    ("content_type", "media"),
    [
        ("text/plain", "text/plain"),
        ("application/x-www-form-urlencoded", "application/x-www-form-urlencoded"),
        ("multipart/form-data; boundary=x", "multipart/form-data"),
        ("application/vnd.api+json", "application/vnd.api+json"),
        (None, "undefined"),
    ],
)
async def test_non_json_bodies_are_refused(api: Api, content_type: str | None, media: str) -> None:
    """A body that is not labelled JSON is a 400, even when it is JSON (no cross-site form posts)."""
    headers = dict(api.handle.service_headers)
    if content_type:
        headers["Content-Type"] = content_type
    body = b'{"recipients":{"type":"broadcast"},"payload":{"title":"t"}}'
    response = await api.client.post("/api/notifications?x=1", content=body, headers=headers)
    assert response.json() == input_error(f"unsupported media type {media}", "POST", "/?x=1")
    update = await api.client.post(
        "/api/notifications/update",
        content=b'{"ids":[]}',
        headers={**(await api.headers(MOCK)), **({"Content-Type": content_type} if content_type else {})},
    )
    assert update.json()["error"]["message"] == f"unsupported media type {media}"
    assert await api.count_rows("broadcast") == 0


async def test_json_with_charset_and_empty_json_bodies(api: Api) -> None:
    """``application/json; charset=utf-8`` and upper case are JSON; an empty JSON body reads as ``{}``."""
    body = b'{"recipients":{"type":"broadcast"},"payload":{"title":"t"}}'
    for content_type in ("application/json; charset=utf-8", "APPLICATION/JSON"):
        response = await api.client.post(
            "/api/notifications", content=body, headers={**api.handle.service_headers, "Content-Type": content_type}
        )
        assert response.status_code == 200, content_type
    empty = await api.client.post(
        "/api/notifications", headers={**api.handle.service_headers, "Content-Type": "application/json"}
    )
    assert empty.json() == input_error("request/body must have required property 'recipients'", "POST", "/")


async def test_methods_and_paths_not_served_are_empty_404s(api: Api) -> None:
    """``PUT /api/notifications`` and unknown paths: 404 with an empty body, after authentication."""
    headers = api.handle.service_headers
    for method, path in [
        ("PUT", "/api/notifications"),
        ("DELETE", "/api/notifications/status"),
        ("PATCH", "/api/notifications/settings"),
        ("GET", "/api/notifications/a/b/c"),
    ]:
        response = await api.client.request(method, path, headers=headers)
        assert (response.status_code, response.content) == (404, b""), (method, path)
    assert (await api.client.put("/api/notifications")).status_code == 401


async def test_head_is_answered_like_get(api: Api) -> None:
    """As Express: ``HEAD`` on a GET route is the GET's status and headers, without a body."""
    response = await api.client.head("/api/notifications/status", headers=await api.headers(MOCK))
    assert (response.status_code, response.content) == (200, b"")
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    assert (await api.client.head("/api/notifications/status")).status_code == 401


async def test_json_responses_say_utf8(api: Api) -> None:
    """Success and error bodies are ``application/json; charset=utf-8``."""
    ok = await api.get(MOCK, "/status")
    bad = await api.get(MOCK, "/status", foo="1")
    document = await api.client.get("/api/notifications/openapi.json")
    for response in (ok, bad, document):
        assert response.headers["content-type"] == "application/json; charset=utf-8"


@pytest.mark.parametrize("plugin", ["notifications", "catalog"])
async def test_served_routes_match_the_document(host: HostHandle, plugin: str) -> None:
    """Every route Falcon serves is in the plugin's OpenAPI document and the reverse.

    The document's own route and the host's ``/.backstage`` routes (actions) are not API operations.
    """
    router = await host.backend.get_service(core_services.http_router, plugin)
    served = {
        (method, path)
        for method, path in router.served_operations()
        if path != "/openapi.json" and not path.startswith("/.backstage/")
    }
    assert router.request_validator is not None
    assert served == router.request_validator.paths
    document = (await host.client.get(f"/api/{plugin}/openapi.json")).json()
    listed = {(method.upper(), path) for path, item in document["paths"].items() for method in item}
    assert len(listed) == len(served)
