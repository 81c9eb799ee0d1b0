"""The requests the fuzzers found 500s with, pinned: each is now a 400 (or a plain answer).

NUL characters reached PostgreSQL, which cannot store them in text; huge
``limit``/``offset`` overflowed the databases' integers; ``createdAfter``
dates whose UTC form is outside years 1-9999 overflowed in conversion.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import pytest

from tests.fuzz.conftest import USER_A, BackgroundHost

NUL = "\x00"

USER_REQUESTS = [
    pytest.param("GET", "/api/notifications/notifications", {"search": f"a{NUL}"}, None, 400, id="search"),
    pytest.param("GET", "/api/notifications/notifications", {"topic": f"a{NUL}"}, None, 400, id="topic"),
    pytest.param("GET", "/api/notifications/topics", {"search": NUL}, None, 400, id="topics-search"),
    pytest.param(
        "GET",
        "/api/notifications/notifications",
        {"createdAfter": "0001-01-01T00:00:00+14:00"},
        None,
        400,
        id="createdAfter-before-year-1",
    ),
    pytest.param(
        "GET",
        "/api/notifications/notifications",
        {"createdAfter": "9999-12-31T23:59:59-14:00"},
        None,
        400,
        id="createdAfter-after-year-9999",
    ),
    pytest.param(
        "GET",
        "/api/notifications/notifications",
        {"limit": "9" * 40, "offset": "9" * 40},
        None,
        200,
        id="huge-limit-offset",
    ),
    pytest.param("GET", "/api/catalog/entities/by-query", {"filter": f"kind=a{NUL}"}, None, 400, id="catalog-filter"),
    pytest.param("GET", "/api/catalog/entity-facets", {"facet": f"kind{NUL}"}, None, 400, id="catalog-facet"),
    pytest.param(
        "GET",
        "/api/catalog/entities/by-query",
        {
            "cursor": base64.urlsafe_b64encode(
                json.dumps({"after": ["a", "b"], "filters": [{"kind": [NUL]}]}).encode()
            ).decode()
        },
        None,
        400,
        id="catalog-cursor",
    ),
    pytest.param("GET", "/api/catalog/entities/by-uid/a%00b", None, None, 404, id="catalog-uid"),
    pytest.param("GET", "/api/catalog/entities/by-name/user/default/a%00b", None, None, 400, id="catalog-name"),
    # a malformed ref is a null slot, as in Backstage (and is never sent to the database)
    pytest.param(
        "POST", "/api/catalog/entities/by-refs", None, {"entityRefs": [f"user:default/a{NUL}"]}, 200, id="catalog-refs"
    ),
]


@pytest.mark.parametrize(("method", "path", "params", "body", "status"), USER_REQUESTS)
def test_user_request_is_not_a_server_error(
    fuzz_host: BackgroundHost, method: str, path: str, params: Any, body: Any, status: int
) -> None:
    """A user's malformed query, path or body is refused with 400 (or answered), never a 500."""
    response = httpx.request(
        method,
        f"{fuzz_host.handle.url}{path}",
        params=params,
        json=body,
        headers={"Authorization": fuzz_host.bearer(USER_A)},
    )
    assert response.status_code == status, response.text


@pytest.mark.parametrize(
    "payload",
    [
        {"title": f"a{NUL}"},
        {"title": "a", "description": NUL},
        {"title": "a", "link": f"https://example.com/{NUL}"},
        {"title": "a", "topic": NUL},
        {"title": "a", "scope": NUL},
        {"title": "a", "icon": NUL},
    ],
    ids=["title", "description", "link", "topic", "scope", "icon"],
)
@pytest.mark.parametrize(
    "recipients", [{"type": "broadcast"}, {"type": "entity", "entityRef": USER_A}], ids=["broadcast", "entity"]
)
def test_nul_in_payload_is_an_input_error(
    fuzz_host: BackgroundHost, payload: dict[str, Any], recipients: dict[str, Any]
) -> None:
    """A payload text with a NUL character is a 400 naming the field."""
    body = {"recipients": recipients, "payload": payload}
    response = httpx.post(
        f"{fuzz_host.handle.url}/api/notifications", json=body, headers={"Authorization": fuzz_host.service_bearer}
    )
    assert response.status_code == 400, response.text
    field = next(key for key, value in payload.items() if NUL in value)
    assert response.json()["error"] == {
        "name": "InputError",
        "message": f"request/body/payload/{field} must not contain NUL characters",
    }


def test_nul_in_recipient_ref_is_an_input_error(fuzz_host: BackgroundHost) -> None:
    """A recipient ref with a NUL character is a 400, not a row PostgreSQL refuses."""
    body = {"recipients": {"type": "entity", "entityRef": f"{USER_A}{NUL}"}, "payload": {"title": "x"}}
    response = httpx.post(
        f"{fuzz_host.handle.url}/api/notifications", json=body, headers={"Authorization": fuzz_host.service_bearer}
    )
    assert response.status_code == 400, response.text
