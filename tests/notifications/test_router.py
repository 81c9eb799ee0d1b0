"""Spec section 16, router statements 1-25, plus the wire details of wire-examples.md.

Every test runs over HTTP against a real host, once on SQLite and once on PostgreSQL.
"""

from __future__ import annotations

import pytest

from host.testing import eventually
from tests.notifications.conftest import BROADCAST, ORIGIN, SECOND_SERVICE_TOKEN, Api, capture_signals, user

MOCK = "user:default/mock"


# -- create: links, severity, recipients (1-9) ---------------------------------


@pytest.mark.parametrize("link", ["javascript:alert(document.domain)", " javascript:alert(1)", "ftp://example.com"])
async def test_create_rejects_non_http_links(api: Api, link: str) -> None:
    """1, 2: a javascript: or ftp: link is a 400 and nothing is stored."""
    response = await api.send(BROADCAST, link=link)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["name"] == "InputError"
    assert error["message"] == "Invalid link provided; caused by Error: Only HTTP/HTTPS links are allowed"
    assert error["cause"] == {"name": "Error", "message": "Only HTTP/HTTPS links are allowed"}
    assert response.json()["request"] == {"method": "POST", "url": "/"}
    assert await api.count_rows("broadcast") == 0


async def test_create_accepts_absolute_http_link(api: Api) -> None:
    """3: an absolute http link is accepted."""
    assert (await api.send(user("mock"), link="http://localhost/test")).status_code == 200


async def test_broadcast_answers_one_item_with_null_user(api: Api) -> None:
    """4: a broadcast answers a one-element array with user null and the supplied payload."""
    items = await api.send_ok(BROADCAST, title="test notification", link="https://example.com")
    assert len(items) == 1
    item = items[0]
    assert item["user"] is None
    assert item["origin"] == ORIGIN
    assert isinstance(item["id"], str) and isinstance(item["created"], str)
    assert item["created"].endswith("Z")
    assert item["payload"] == {"severity": "normal", "title": "test notification", "link": "https://example.com"}
    assert set(item) == {"id", "user", "created", "origin", "payload"}


async def test_relative_link_is_stored_unchanged(api: Api) -> None:
    """5: a relative link is accepted and returned unchanged."""
    [item] = await api.send_ok(user("mock"), link="/catalog")
    assert item["payload"]["link"] == "/catalog"
    [stored] = (await api.list(MOCK))["notifications"]
    assert stored["payload"]["link"] == "/catalog"


async def test_severity_defaults_to_normal(api: Api) -> None:
    """6: omitting severity yields normal in the response and in storage."""
    [item] = await api.send_ok(user("mock"))
    assert item["payload"]["severity"] == "normal"
    assert (await api.list(MOCK))["notifications"][0]["payload"]["severity"] == "normal"


async def test_user_recipient_gets_exactly_one_row(api: Api) -> None:
    """7: an entity recipient user:default/mock yields one notification and one row."""
    items = await api.send_ok(user("mock"))
    assert [item["user"] for item in items] == [MOCK]
    assert await api.count_rows() == 1


async def test_group_is_expanded_to_members(api: Api) -> None:
    """8: group:default/mock expands to its member."""
    items = await api.send_ok(user("group:default/mock"))
    assert [item["user"] for item in items] == [MOCK]


async def test_group_and_member_notify_each_user_once(api: Api) -> None:
    """9: the group and its member together still give one notification per user."""
    items = await api.send_ok({"type": "entity", "entityRef": ["group:default/mock", MOCK]})
    assert [item["user"] for item in items] == [MOCK]
    assert await api.count_rows() == 1


async def test_unknown_entity_answers_empty_array(api: Api) -> None:
    """Observed: an entity ref resolving to nobody gives 200 and []."""
    assert await api.send_ok(user("group:default/does-not-exist"), title="nobody") == []


async def test_entities_alias_and_exclusions(api: Api) -> None:
    """The 'entities' alias and excludeEntityRef (a list) both work."""
    items = await api.send_ok(
        {"type": "entities", "entityRefs": ["group:default/team"], "excludedEntityRefs": ["user:default/john"]}
    )
    assert sorted(item["user"] for item in items) == ["user:default/jane", "user:default/sub"]
    items = await api.send_ok(
        {"type": "entity", "entityRef": ["group:default/team"], "excludeEntityRef": ["user:default/sub"]}
    )
    assert sorted(item["user"] for item in items) == ["user:default/jane", "user:default/john"]


# -- settings gate delivery (10-12) --------------------------------------------


async def _disable(api: Api, user_ref: str, origin: str, *, topics: list[dict] | None = None, enabled: bool) -> None:
    body = {"channels": [{"id": "Web", "origins": [{"id": origin, "enabled": enabled, "topics": topics or []}]}]}
    response = await api.post(user_ref, "/settings", body)
    assert response.status_code == 200, response.text


async def test_disabled_origin_is_not_delivered(api: Api) -> None:
    """10: with the origin disabled for Web the answer is [] and no row is inserted."""
    await _disable(api, MOCK, ORIGIN, enabled=False)
    assert await api.send_ok(user("mock")) == []
    assert await api.count_rows() == 0


async def test_disabled_topic_is_not_delivered(api: Api) -> None:
    """11: with a topic disabled, a notification of that topic is not delivered."""
    await _disable(api, MOCK, ORIGIN, enabled=True, topics=[{"id": "builds", "enabled": False}])
    assert await api.send_ok(user("mock"), topic="builds") == []
    assert await api.count_rows() == 0


async def test_topic_disabled_still_delivers_without_topic(api: Api) -> None:
    """12: origin enabled and only a topic disabled: a notification without topic arrives."""
    await _disable(api, MOCK, ORIGIN, enabled=True, topics=[{"id": "builds", "enabled": False}])
    assert len(await api.send_ok(user("mock"))) == 1
    assert len(await api.send_ok(user("mock"), topic="deploys")) == 1


async def test_config_disabled_origin_is_not_delivered(api: Api) -> None:
    """Config defaultSettings: origin test-service2 is off for Web unless the user turns it on."""
    assert (await api.send(user("mock"), token=SECOND_SERVICE_TOKEN)).json() == []
    await _disable(api, MOCK, "test-service2", enabled=True)
    assert len((await api.send(user("mock"), token=SECOND_SERVICE_TOKEN)).json()) == 1


# -- validation (13-15) ----------------------------------------------------------


async def test_missing_recipients_is_400(api: Api) -> None:
    """13: missing recipients."""
    response = await api.client.post(
        "/api/notifications", json={"payload": {"title": "x"}}, headers=api.handle.service_headers
    )
    assert response.status_code == 400
    assert response.json()["error"]["message"] == "request/body must have required property 'recipients'"


async def test_unknown_recipients_type_is_400(api: Api) -> None:
    """14: an unknown recipients type gives Backstage's message."""
    response = await api.send({"type": "nobody"}, title="x")
    assert response.status_code == 400
    assert response.json() == {
        "error": {
            "name": "InputError",
            "message": "request/body/recipients must have required property 'entityRef', "
            "request/body/recipients/type must be equal to one of the allowed values: broadcast, "
            "request/body/recipients must match exactly one schema in oneOf",
        },
        "request": {"method": "POST", "url": "/"},
        "response": {"statusCode": 400},
    }


async def test_missing_title_is_400(api: Api) -> None:
    """15: missing payload.title names the field; nothing is stored."""
    response = await api.client.post(
        "/api/notifications", json={"recipients": BROADCAST, "payload": {}}, headers=api.handle.service_headers
    )
    assert response.status_code == 400
    assert response.json()["error"] == {
        "name": "InputError",
        "message": "request/body/payload must have required property 'title'",
    }
    assert await api.count_rows("broadcast") == 0


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"title": 5}, "request/body/payload/title must be string"),
        ({"title": "x", "severity": "urgent"}, "request/body/payload/severity must be equal to one of the allowed"),
        ({"title": "x" * 256}, "request/body/payload/title must NOT have more than 255 characters"),
        ({"title": "x", "topic": ["a"]}, "request/body/payload/topic must be string"),
    ],
)
async def test_invalid_payload_fields_are_named(api: Api, payload: dict, message: str) -> None:
    """Pydantic validation: a clear 400 naming the field, nothing stored."""
    response = await api.client.post(
        "/api/notifications", json={"recipients": user("mock"), "payload": payload}, headers=api.handle.service_headers
    )
    assert response.status_code == 400
    assert response.json()["error"]["message"].startswith(message)
    assert await api.count_rows() == 0


async def test_non_object_and_malformed_bodies_are_400(api: Api) -> None:
    """A JSON array, an empty body or broken JSON are 400s, never 500s."""
    headers = {**api.handle.service_headers, "Content-Type": "application/json"}
    for content in (b"[]", b"", b"{nope"):
        response = await api.client.post("/api/notifications", content=content, headers=headers)
        assert response.status_code == 400, (content, response.text)


#: Bodies that do not parse and Backstage's answers (body-parser strict mode, Node 20's ``JSON.parse``).
NODE_JSON_ERRORS = [
    ('{"recipients":', "Unexpected end of JSON input"),
    ("   ", "Unexpected end of JSON input"),
    ('{"recipients":x}', 'Unexpected token \'x\', "{"recipients":x}" is not valid JSON'),
    ("123 4", "Unexpected token '1', \"123 4\" is not valid JSON"),
    ('   "abcdefghijklmnopqrstuvwxyz"', 'Unexpected token \'"\', "   "abcdefghi"... is not valid JSON'),
    (
        '{"recipients":{"type":"broadcast"}, "payload": {"title": tru}}',
        'Unexpected token \'}\', ..."itle": tru}}" is not valid JSON',
    ),
    ('{"a":NaN}', 'Unexpected token \'N\', "{"a":NaN}" is not valid JSON'),
    ("{", "Expected property name or '}' in JSON at position 1"),
    ('{"a":1,}', "Expected double-quoted property name in JSON at position 7"),
    ('{"a" 1}', "Expected ':' after property name in JSON at position 5"),
    ('{"a":1 x', "Expected ',' or '}' after property value in JSON at position 7"),
    ('{"a":[1,{"b":2} 3]}', "Expected ',' or ']' after array element in JSON at position 16"),
    ('{"a":1}}', "Unexpected non-whitespace character after JSON at position 7"),
    ('{"a":"abc', "Unterminated string in JSON at position 9"),
    ('{"a":"\\x"}', "Bad escaped character in JSON at position 7"),
    ('{"a":"\\u12G4"}', "Bad Unicode escape in JSON at position 10"),
    ('{"a":"b\nc"}', "Bad control character in string literal in JSON at position 7"),
    ("[-]", "No number after minus sign in JSON at position 2"),
    ("[1.]", "Unterminated fractional number in JSON at position 3"),
    ("[1e+]", "Exponent part is missing a number in JSON at position 4"),
]


@pytest.mark.parametrize(("content", "message"), NODE_JSON_ERRORS)
async def test_malformed_json_has_nodes_message(api: Api, content: str, message: str) -> None:
    """A body that does not parse is a 400 InputError worded as Backstage's (Node's JSON.parse)."""
    headers = {**api.handle.service_headers, "Content-Type": "application/json"}
    response = await api.client.post("/api/notifications", content=content.encode(), headers=headers)
    assert response.status_code == 400, response.text
    assert response.json()["error"] == {"name": "InputError", "message": message}


async def test_empty_title_is_missing(api: Api) -> None:
    """An empty title passes the body schema; the send refuses it with Backstage's message."""
    response = await api.send(BROADCAST, title="")
    assert response.status_code == 400
    assert response.json()["error"] == {
        "name": "InputError",
        "message": "Invalid notification request received: missing title",
    }
    assert await api.count_rows() == 0


@pytest.mark.parametrize(
    ("ref", "name", "cause"),
    [
        ("", "Error", "Entity reference must not be empty"),
        ("user:", "TypeError", 'Entity reference "user:" was not on the form [<kind>:][<namespace>/]<name>'),
        ("x:/y", "TypeError", 'Entity reference "x:/y" was not on the form [<kind>:][<namespace>/]<name>'),
        (
            "guest",
            "Error",
            'Entity reference "guest" had missing or empty kind (e.g. did not start with "component:" or similar)',
        ),
    ],
)
async def test_unparsable_entity_ref_fails_the_send(api: Api, ref: str, name: str, cause: str) -> None:
    """A ref Backstage's parseEntityRef refuses fails the whole send, the parse error as error.cause."""
    response = await api.send({"type": "entity", "entityRef": ["user:default/mock", ref]})
    assert response.status_code == 400
    assert response.json()["error"] == {
        "name": "InputError",
        "message": f"Failed to send user notifications; caused by {name}: {cause}",
        "cause": {"name": name, "message": cause},
    }
    assert await api.count_rows() == 0


# -- custom recipient resolver (16, 17) are in test_processors.py ------------------


# -- list (18) ---------------------------------------------------------------------


async def test_list_contains_own_and_broadcast_with_nulls(api: Api) -> None:
    """18: GET / lists the user's notification and the broadcast; unset fields are null."""
    [own] = await api.send_ok(user("mock"), title="own")
    [shared] = await api.send_ok(BROADCAST, title="shared")
    await api.send_ok(user("jane"), title="not mine")
    body = (await api.get(MOCK, "/")).json()
    assert body["totalCount"] == 2
    by_id = {item["id"]: item for item in body["notifications"]}
    assert set(by_id) == {own["id"], shared["id"]}
    assert by_id[shared["id"]]["user"] is None
    assert by_id[own["id"]] == {
        "id": own["id"],
        "user": MOCK,
        "created": own["created"],
        "saved": None,
        "read": None,
        "updated": None,
        "origin": ORIGIN,
        "payload": {
            "title": "own",
            "description": None,
            "link": None,
            "severity": "normal",
            "topic": None,
            "scope": None,
            "icon": None,
        },
    }


# -- settings (19-25) ----------------------------------------------------------------


async def _settings(api: Api, user_ref: str = MOCK) -> dict:
    response = await api.get(user_ref, "/settings")
    assert response.status_code == 200, response.text
    return response.json()


async def test_settings_stored_origin_disabled(api: Api) -> None:
    """19: a stored origin-disabled row shows the origin and its topic disabled."""
    await api.send_ok(user("mock"), topic="builds")
    await _disable(api, MOCK, ORIGIN, enabled=False)
    assert await _settings(api) == {
        "channels": [
            {
                "id": "Web",
                "origins": [
                    {"id": ORIGIN, "enabled": False, "topics": [{"id": "builds", "enabled": False}]},
                    {"id": "test-service2", "enabled": False, "topics": []},
                ],
            }
        ]
    }


async def test_settings_config_disabled_origin(api: Api) -> None:
    """20: a config-disabled origin shows enabled false, with its topics false."""
    await _disable(api, MOCK, "test-service2", enabled=True)
    await api.send(user("mock"), token=SECOND_SERVICE_TOKEN, topic="t2")
    await _disable(api, MOCK, ORIGIN, enabled=True)  # replaces the rows: test-service2 back to config
    origins = {origin["id"]: origin for origin in (await _settings(api))["channels"][0]["origins"]}
    assert origins["test-service2"] == {
        "id": "test-service2",
        "enabled": False,
        "topics": [{"id": "t2", "enabled": False}],
    }


async def test_settings_stored_topic_disabled_only(api: Api) -> None:
    """21: only a stored topic-disabled row: origin enabled, topic disabled."""
    await api.send_ok(user("mock"), topic="builds")
    body = {
        "channels": [
            {"id": "Web", "origins": [{"id": ORIGIN, "enabled": True, "topics": [{"id": "builds", "enabled": False}]}]}
        ]
    }
    await api.post(MOCK, "/settings", body)
    origins = {origin["id"]: origin for origin in (await _settings(api))["channels"][0]["origins"]}
    assert origins[ORIGIN] == {"id": ORIGIN, "enabled": True, "topics": [{"id": "builds", "enabled": False}]}


async def test_settings_default_matrix(api: Api) -> None:
    """22, 23: without stored rows, origins of the user's notifications are enabled; one channel Web."""
    await api.send_ok(user("mock"), topic="greeting")
    await api.send_ok(BROADCAST, topic="maintenance")
    assert await _settings(api) == {
        "channels": [
            {
                "id": "Web",
                "origins": [
                    {"id": ORIGIN, "enabled": True, "topics": [{"id": "greeting", "enabled": True}]},
                    {"id": "test-service2", "enabled": False, "topics": []},
                ],
            }
        ]
    }


async def test_post_settings_stores_one_row_per_origin(api: Api) -> None:
    """24: POST /settings stores a row per origin with user, channel Web, origin and enabled."""
    body = {
        "channels": [
            {"id": "Web", "origins": [{"id": "a", "enabled": False, "topics": []}, {"id": "b", "enabled": True}]}
        ]
    }
    response = await api.post(MOCK, "/settings", body)
    assert response.status_code == 200
    engine = await api.database_engine()
    import sqlalchemy as sa

    async with engine.connect() as conn:
        rows = (await conn.execute(sa.text('SELECT "user", channel, origin, topic, enabled FROM user_settings'))).all()
    assert sorted(tuple(row) for row in rows) == [(MOCK, "Web", "a", None, False), (MOCK, "Web", "b", None, True)]


async def test_post_settings_unknown_channel_is_400(api: Api) -> None:
    """25: an unknown channel id is a 400 and nothing is stored."""
    body = {"channels": [{"id": "Pigeon", "origins": [{"id": "a", "enabled": False}]}]}
    response = await api.post(MOCK, "/settings", body)
    assert response.status_code == 400
    assert response.json()["error"]["message"] == "Invalid channel"
    assert await api.count_rows("user_settings") == 0


# -- auth (observed) -----------------------------------------------------------------


async def test_credentials_rules(api: Api) -> None:
    """User token on create: 403; service token on user routes: 403; no token: 401."""
    response = await api.client.post(
        "/api/notifications", json={"recipients": BROADCAST, "payload": {"title": "x"}}, headers=await api.headers(MOCK)
    )
    assert response.status_code == 403
    assert response.json()["error"] == {
        "name": "NotAllowedError",
        "message": "This endpoint does not allow 'user' credentials",
    }
    for path in ("", "/notifications", "/status", "/settings", "/topics"):
        response = await api.client.get(f"/api/notifications{path}", headers=api.handle.service_headers)
        assert response.status_code == 403, path
        assert response.json()["error"]["message"] == "This endpoint does not allow 'service' credentials"
        assert (await api.client.get(f"/api/notifications{path}")).status_code == 401
    response = await api.client.post("/api/notifications", json={"recipients": BROADCAST, "payload": {"title": "x"}})
    assert response.status_code == 401
    assert response.json()["error"] == {"name": "AuthenticationError", "message": "Missing credentials"}


# -- aliases, by-id, update, status, topics, query parameters ---------------------------------


async def test_legacy_aliases(api: Api) -> None:
    """GET /, GET /:id, POST /update and POST / behave like their /notifications forms."""
    [created] = (await api.send(user("mock"), path="/api/notifications/notifications")).json()
    assert (await api.get(MOCK, "")).json()["totalCount"] == 1
    assert (await api.get(MOCK, f"/{created['id']}")).json()["id"] == created["id"]
    assert (await api.get(MOCK, f"/notifications/{created['id']}")).json()["id"] == created["id"]
    response = await api.post(MOCK, "/update", {"ids": [created["id"]], "read": True})
    assert response.json()[0]["read"] is not None
    response = await api.post(MOCK, "/notifications/update", {"ids": [created["id"]], "read": False})
    assert response.json()[0]["read"] is None


async def test_get_unknown_id_is_404(api: Api) -> None:
    """GET of an unknown (or malformed) id is Backstage's 404."""
    response = await api.get(MOCK, "/00000000-0000-0000-0000-000000000000")
    assert response.status_code == 404
    assert response.json() == {
        "error": {"name": "NotFoundError", "message": "Not found"},
        "request": {"method": "GET", "url": "/00000000-0000-0000-0000-000000000000"},
        "response": {"statusCode": 404},
    }
    assert (await api.get(MOCK, "/notifications/not-a-uuid")).status_code == 404


async def test_update_read_saved_and_signals(api: Api) -> None:
    """Mark read/saved/unread; read changes signal the calling user; status follows."""
    signals = await capture_signals(api.handle)
    [own] = await api.send_ok(user("mock"))
    [shared] = await api.send_ok(BROADCAST)
    await eventually(lambda: len(signals) >= 2)
    assert {
        "recipients": {"type": "user", "entityRef": [MOCK]},
        "channel": "notifications",
        "message": {"action": "new_notification", "notification_id": own["id"]},
    } in signals
    assert {
        "recipients": {"type": "broadcast"},
        "channel": "notifications",
        "message": {"action": "new_notification", "notification_id": shared["id"]},
    } in signals

    updated = await api.update(MOCK, [own["id"], shared["id"]], read=True)
    assert {item["id"] for item in updated} == {own["id"], shared["id"]}
    assert all(item["read"] for item in updated)
    assert signals[-1] == {
        "recipients": {"type": "user", "entityRef": [MOCK]},
        "channel": "notifications",
        "message": {"action": "notification_read", "notification_ids": [own["id"], shared["id"]]},
    }
    assert (await api.get(MOCK, "/status")).json() == {"unread": 0, "read": 2}

    [saved] = await api.update(MOCK, [own["id"]], saved=True)
    assert saved["saved"] is not None and saved["read"] is not None
    [unread] = await api.update(MOCK, [own["id"]], read=False)
    assert unread["read"] is None and unread["saved"] is not None
    assert signals[-1]["message"] == {"action": "notification_unread", "notification_ids": [own["id"]]}
    assert (await api.get(MOCK, "/status")).json() == {"unread": 1, "read": 1}


async def test_update_requires_ids_array(api: Api) -> None:
    """ids missing or not an array is a 400."""
    for body in ({}, {"ids": "x"}, {"ids": ["x"], "read": "yes"}):
        assert (await api.post(MOCK, "/notifications/update", body)).status_code == 400


async def test_scope_renotify_keeps_id_and_created(api: Api) -> None:
    """Observed: same scope+origin+user updates in place, keeps id and created, sets updated, read null."""
    [first] = await api.send_ok(user("mock"), title="Build #1 running", scope="build-42")
    await api.update(MOCK, [first["id"]], read=True, saved=True)
    [second] = await api.send_ok(user("mock"), title="Build #1 finished", scope="build-42", severity="high")
    assert second["id"] == first["id"]
    assert second["created"] == first["created"]
    assert second["updated"] is not None and second["read"] is None and second["saved"] is not None
    assert second["payload"] == {
        "title": "Build #1 finished",
        "description": None,
        "link": None,
        "topic": None,
        "severity": "high",
        "scope": "build-42",
        "icon": None,
    }
    assert (await api.list(MOCK))["totalCount"] == 1
    # Another origin or another user with the same scope is a different notification.
    [other] = (await api.send(user("mock"), token=SECOND_SERVICE_TOKEN, scope="build-42")).json() or [None]
    assert other is None  # test-service2 is disabled by config for Web
    [jane] = await api.send_ok(user("jane"), scope="build-42")
    assert jane["id"] != first["id"]


async def test_list_query_parameters(api: Api) -> None:
    """orderField (repeatable), paging, search, minimumSeverity, topic, createdAfter; bad values are 400."""
    for index, severity in enumerate(["low", "normal", "high", "critical"]):
        await api.send_ok(user("mock"), title=f"n{index} Build", severity=severity, topic=f"t{index % 2}")
    body = await api.list(MOCK, limit=2, offset=1)
    assert body["totalCount"] == 4
    assert [item["payload"]["title"] for item in body["notifications"]] == ["n2 Build", "n1 Build"]
    body = await api.list(MOCK, orderField="created,asc")
    assert [item["payload"]["title"] for item in body["notifications"]] == [
        "n0 Build",
        "n1 Build",
        "n2 Build",
        "n3 Build",
    ]
    response = await api.get(MOCK, "/notifications", orderField=["topic,desc", "created"])
    assert [item["payload"]["title"] for item in response.json()["notifications"]] == [
        "n1 Build",
        "n3 Build",
        "n0 Build",
        "n2 Build",
    ]
    assert (await api.list(MOCK, search="BUILD", minimumSeverity="high"))["totalCount"] == 2
    assert (await api.list(MOCK, topic="t1"))["totalCount"] == 2
    assert (await api.list(MOCK, createdAfter="2000-01-01T00:00:00.000Z"))["totalCount"] == 4
    assert (await api.list(MOCK, createdAfter="2999-01-01T00:00:00Z"))["totalCount"] == 0
    assert (await api.list(MOCK, limit=0)) == {"totalCount": 4, "notifications": []}
    for params, message in [
        ({"orderField": "bogus"}, "Invalid order field 'bogus'"),
        ({"orderField": "created,sideways"}, "Invalid order field order, must be asc or desc"),
        ({"limit": "ten"}, "request/query/limit must be integer"),
        ({"offset": "-1"}, "request/query/offset must be >= 0"),
        ({"createdAfter": "yesterday-ish"}, "Unexpected date format"),
    ]:
        response = await api.get(MOCK, "/notifications", **params)
        assert response.status_code == 400, params
        assert response.json()["error"]["message"].startswith(message)


async def test_search_treats_wildcards_literally(api: Api) -> None:
    """Search is a substring match; % and _ are not wildcards."""
    await api.send_ok(user("mock"), title="100% done")
    await api.send_ok(user("mock"), title="1000 done")
    assert (await api.list(MOCK, search="0%"))["totalCount"] == 1


async def test_topics(api: Api) -> None:
    """GET /topics lists distinct topics of own notifications and broadcasts, filtered."""
    await api.send_ok(user("mock"), topic="greeting", severity="critical")
    await api.send_ok(user("mock"), topic="greeting", title="find me")
    await api.send_ok(BROADCAST, topic="maintenance")
    await api.send_ok(user("jane"), topic="secret")
    assert (await api.get(MOCK, "/topics")).json() == {"topics": ["greeting", "maintenance"]}
    assert (await api.get(MOCK, "/topics", search="find")).json() == {"topics": ["greeting"]}
    assert (await api.get(MOCK, "/topics", minimumSeverity="critical")).json() == {"topics": ["greeting"]}
