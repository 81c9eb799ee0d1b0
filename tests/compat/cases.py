"""The compatibility cases: black-box requests whose answers must match Backstage's.

Each case says what it checks. Its expected answers are Backstage's, recorded
from a live backend (notifications-backend 0.6.11, signals-backend 0.3.21,
catalog-backend 4.0.5) into ``recorded.json`` by ``python -m tests.compat.record``.
Cases touch only what they create: notifications carry the run's unique
``$tag`` (in the title, the scope or the topic) and lists are filtered by it,
so they run unchanged on a fresh Greenroom host and on a shared Backstage.
All user requests are the guest's (``user:default/guest``, member of
``group:default/team-a``), the one user the guest sign-in gives on both.
"""

from __future__ import annotations

from tests.compat.runner import Case, Http, Ws

NOTIFY = "/api/notifications"
GUEST = "user:default/guest"


def send(payload: dict[str, object], recipients: object = None, **options: object) -> Http:
    """``POST /api/notifications`` as the service (to the guest unless ``recipients`` says otherwise)."""
    recipients = recipients or {"type": "entity", "entityRef": GUEST}
    return Http("POST", NOTIFY, auth="service", json={"recipients": recipients, "payload": payload}, **options)  # type: ignore[arg-type]


def mine(query: str = "", **options: object) -> Http:
    """The guest's list, filtered to this run's notifications by the ``$tag`` in their titles."""
    return Http("GET", f"{NOTIFY}?search=$tag{query}", **options)  # type: ignore[arg-type]


BROADCAST = {"type": "broadcast"}

NOTIFICATIONS_REST = [
    Case(
        "create-for-user",
        "A send to one user answers 200 with the created rows (origin is the token's subject)",
        (send({"title": "$tag hello", "description": "d", "link": "https://example.com/x", "topic": "$tag-t"}),),
    ),
    Case(
        "create-broadcast",
        "A broadcast answers one row with user null; severity defaults to normal",
        (send({"title": "$tag all"}, BROADCAST),),
    ),
    Case(
        "create-for-group",
        "A group send creates one row per member user (team-a: alice, bob, dave, guest)",
        (
            send(
                {"title": "$tag team", "severity": "low"},
                {"type": "entity", "entityRef": "group:default/team-a"},
                pick="*.user",
            ),
        ),
    ),
    Case(
        "create-with-exclusion",
        "excludeEntityRef removes a member from a group send",
        (
            send(
                {"title": "$tag but-alice"},
                {"type": "entity", "entityRef": ["group:default/team-a"], "excludeEntityRef": "user:default/alice"},
                pick="*.user",
            ),
        ),
    ),
    Case(
        "create-for-unknown-entity",
        "An entity ref that resolves to nobody answers 200 []",
        (send({"title": "$tag nobody"}, {"type": "entity", "entityRef": "group:default/does-not-exist"}),),
    ),
    Case("create-missing-title", "A payload without title is a 400 InputError", (send({}, BROADCAST),)),
    Case(
        "create-bad-recipients",
        "An unknown recipients type is a 400 InputError",
        (send({"title": "x"}, {"type": "nobody"}),),
    ),
    Case(
        "create-javascript-link",
        "A javascript: link is refused",
        (send({"title": "x", "link": "javascript:alert(1)"}, BROADCAST),),
    ),
    Case(
        "create-unparsable-link",
        "A link that does not parse as a URL ('http://') is refused",
        (send({"title": "x", "link": "http://"}, BROADCAST),),
    ),
    Case(
        "create-link-with-space",
        "A link with a space in the host is refused",
        (send({"title": "x", "link": "https://exa mple.com"}, BROADCAST),),
    ),
    Case(
        "create-topic-null",
        '"topic": null is refused by the body schema',
        (send({"title": "x", "topic": None}, BROADCAST),),
    ),
    Case(
        "create-severity-uppercase",
        "severity must be one of the exact enum values",
        (send({"title": "x", "severity": "HIGH"}, BROADCAST),),
    ),
    Case(
        "create-without-credentials",
        "No token on create is a 401",
        (Http("POST", NOTIFY, auth="none", json={"recipients": BROADCAST, "payload": {"title": "x"}}),),
    ),
    Case(
        "create-with-user-token",
        "A user token on the service-only create is a 403 NotAllowedError",
        (Http("POST", NOTIFY, json={"recipients": BROADCAST, "payload": {"title": "x"}}),),
    ),
    Case(
        "create-text-plain",
        "A body with a non-JSON media type is a 400",
        (
            Http(
                "POST",
                NOTIFY,
                auth="service",
                headers={"Content-Type": "text/plain"},
                body='{"recipients":{"type":"broadcast"},"payload":{"title":"$tag plain"}}',
            ),
        ),
    ),
    Case(
        "create-without-content-type",
        "A JSON body without Content-Type is a 400",
        (
            Http(
                "POST",
                NOTIFY,
                auth="service",
                body='{"recipients":{"type":"broadcast"},"payload":{"title":"$tag untyped"}}',
            ),
        ),
    ),
    Case(
        "create-form-urlencoded",
        "A JSON body sent as form-urlencoded is a 400",
        (
            Http(
                "POST",
                NOTIFY,
                auth="service",
                headers={"Content-Type": "application/x-www-form-urlencoded"},
                body='{"recipients":{"type":"broadcast"},"payload":{"title":"$tag form"}}',
            ),
        ),
    ),
    Case(
        "create-invalid-json",
        "A truncated JSON body is a 400 InputError with Node's JSON.parse message",
        (Http("POST", NOTIFY, auth="service", headers={"Content-Type": "application/json"}, body='{"recipients":'),),
    ),
    Case(
        "create-empty-title",
        "An empty title passes the body schema and is refused by the route as missing",
        (send({"title": ""}, BROADCAST),),
    ),
    Case(
        "create-malformed-entity-ref",
        "An empty entity ref fails the send with the parse error as error.cause",
        (send({"title": "$tag empty-ref"}, {"type": "entity", "entityRef": ""}),),
    ),
    Case(
        "method-not-served",
        "A method the path does not serve (PUT /api/notifications) is a 404 with an empty body",
        (Http("PUT", NOTIFY, auth="service", json={}),),
    ),
    Case(
        "list-with-service-token", "A service token on the user list is a 403", (Http("GET", NOTIFY, auth="service"),)
    ),
    Case("list-without-credentials", "No token on the list is a 401", (Http("GET", NOTIFY, auth="none"),)),
    Case(
        "list-unknown-parameter",
        "An unknown query parameter is a 400 naming it; request.url keeps the query",
        (Http("GET", f"{NOTIFY}?sort=created"),),
    ),
    Case("list-read-not-boolean", "read must be true or false", (Http("GET", f"{NOTIFY}/notifications?read=yes"),)),
    Case("list-saved-not-boolean", "saved must be true or false", (Http("GET", f"{NOTIFY}?saved=1"),)),
    Case(
        "list-minimum-severity-case",
        "minimumSeverity is case-sensitive",
        (Http("GET", f"{NOTIFY}?minimumSeverity=HIGH"),),
    ),
    Case("list-empty-topic", "An empty topic= is a 400", (Http("GET", f"{NOTIFY}?topic="),)),
    Case(
        "list-bad-order-direction",
        "An orderField direction other than asc/desc is a 400",
        (Http("GET", f"{NOTIFY}?orderField=created,up"),),
    ),
    Case(
        "list-unknown-order-field",
        "An orderField naming no column is a 400 InputError",
        (Http("GET", f"{NOTIFY}?orderField=nope,asc"),),
        greenroom={
            0: {
                "status": 400,
                "contentType": "application/json; charset=utf-8",
                "body": {"error": {"name": "InputError"}, "request": {"method": "GET", "url": "/?orderField=nope,asc"}},
            }
        },
        why="Backstage answers 500 (an internal error) for an unknown order field; a client error is a 400",
    ),
    Case("list-negative-limit", "limit must be >= 0", (Http("GET", f"{NOTIFY}?limit=-1"),)),
    Case("list-limit-not-integer", "limit must be an integer", (Http("GET", f"{NOTIFY}?limit=abc"),)),
    Case("list-bad-created-after", "createdAfter must be a date", (Http("GET", f"{NOTIFY}?createdAfter=notadate"),)),
    Case("list-empty-search", "An empty search= is a 400", (Http("GET", f"{NOTIFY}?search="),)),
    Case("topics-with-limit", "/topics accepts only the filter parameters", (Http("GET", f"{NOTIFY}/topics?limit=1"),)),
    Case("status-unknown-parameter", "/status accepts no parameters", (Http("GET", f"{NOTIFY}/status?x=1"),)),
    Case(
        "get-unknown-id",
        "An unknown id is a 404 NotFoundError",
        (Http("GET", f"{NOTIFY}/00000000-0000-0000-0000-000000000000"),),
    ),
    Case(
        "update-read-null",
        "/update needs a boolean read or saved",
        (Http("POST", f"{NOTIFY}/update", json={"ids": [], "read": None}),),
    ),
    Case(
        "settings-channel-without-origins",
        "A settings channel needs origins",
        (Http("POST", f"{NOTIFY}/settings", json={"channels": [{"id": "Web"}]}),),
    ),
    Case(
        "create-protocol-relative-link",
        "A relative link that leaves the app's host ('//host') is refused",
        (send({"title": "$tag rel", "link": "//evil.example/x"}, BROADCAST),),
        greenroom={
            0: {
                "status": 400,
                "contentType": "application/json; charset=utf-8",
                "body": {"error": {"name": "InputError"}, "request": {"method": "POST", "url": "/"}},
            }
        },
        why="Backstage stores a protocol-relative link, which sends users to another site",
    ),
    Case(
        "create-non-canonical-ref",
        "A non-canonical user ref (user:guest) is stored canonically and reaches the user",
        (
            send({"title": "$tag short ref"}, {"type": "entity", "entityRef": "user:guest"}, pick="*.user"),
            mine(pick="totalCount"),
        ),
        greenroom={0: {"status": 200, "body": ["user:default/guest"]}, 1: {"status": 200, "body": 1}},
        why="Backstage stores 'user:guest' verbatim, so the guest (whose token says user:default/guest) never sees it",
    ),
    Case(
        "settings-empty-channels",
        "POST /settings with no channels forgets the user's choices: a topic muted before is delivered again",
        (
            send({"title": "$tag first", "topic": "$tag-t"}, check="none"),
            Http(
                "POST",
                f"{NOTIFY}/settings",
                check="none",
                json={
                    "channels": [
                        {
                            "id": "Web",
                            "origins": [
                                {"id": "bench", "enabled": True, "topics": [{"id": "$tag-t", "enabled": False}]}
                            ],
                        }
                    ]
                },
            ),
            send({"title": "$tag muted", "topic": "$tag-t"}),
            Http("POST", f"{NOTIFY}/settings", json={"channels": []}, pick="channels.*.id"),
            send({"title": "$tag again", "topic": "$tag-t"}, pick="*.payload.title"),
        ),
        greenroom={3: {"status": 200, "contentType": "application/json; charset=utf-8", "body": ["Web"]}},
        why="Backstage deletes the settings and answers 500 instead of the defaults",
    ),
    Case("status-shape", "/status answers unread and read counts", (Http("GET", f"{NOTIFY}/status", check="shape"),)),
    Case(
        "settings-shape",
        "/settings answers channels with origins and topics",
        (Http("GET", f"{NOTIFY}/settings", check="shape"),),
    ),
    Case(
        "get-one",
        "GET /:id answers the stored row as the list does",
        (
            send({"title": "$tag one", "topic": "$tag-t"}, capture={"id": "0.id"}, check="none"),
            Http("GET", f"{NOTIFY}/$id"),
        ),
    ),
    Case(
        "list-own-and-broadcast",
        "The list holds the user's rows and broadcasts (user null), newest first",
        (send({"title": "$tag first"}, check="none"), send({"title": "$tag second"}, BROADCAST, check="none"), mine()),
    ),
    Case(
        "list-legacy-path",
        "/api/notifications/notifications lists the same",
        (send({"title": "$tag legacy"}, check="none"), Http("GET", f"{NOTIFY}/notifications?search=$tag")),
    ),
    Case(
        "list-paging-and-filters",
        "limit/offset page the filtered list; totalCount counts all matches",
        (
            send({"title": "$tag a"}, check="none"),
            send({"title": "$tag b"}, check="none"),
            send({"title": "$tag c"}, check="none"),
            mine("&limit=1&offset=1"),
            mine("&read=false", pick="notifications.*.payload.title"),
        ),
    ),
    Case(
        "list-minimum-severity",
        "minimumSeverity keeps rows at or above it",
        (
            send({"title": "$tag low", "severity": "low"}, check="none"),
            send({"title": "$tag high", "severity": "high"}, check="none"),
            send({"title": "$tag critical", "severity": "critical"}, check="none"),
            mine("&minimumSeverity=high", pick="notifications.*.payload.title"),
        ),
    ),
    Case(
        "list-order-field",
        "orderField=title,asc sorts by title",
        (
            send({"title": "$tag b"}, check="none"),
            send({"title": "$tag c"}, check="none"),
            send({"title": "$tag a"}, check="none"),
            mine("&orderField=title,asc", pick="notifications.*.payload.title"),
        ),
    ),
    Case(
        "list-equal-sort-keys",
        "Rows with equal sort keys come back in insertion order",
        (
            send({"title": "$tag 1", "topic": "$tag-same"}, check="none"),
            send({"title": "$tag 2", "topic": "$tag-same"}, check="none"),
            send({"title": "$tag 3", "topic": "$tag-same"}, check="none"),
            mine("&orderField=topic,asc", pick="notifications.*.payload.title"),
            mine("&orderField=topic,desc", pick="notifications.*.payload.title"),
        ),
    ),
    Case(
        "list-topic-filter",
        "topic= keeps that topic's rows",
        (
            send({"title": "$tag in", "topic": "$tag-x"}, check="none"),
            send({"title": "$tag out", "topic": "$tag-y"}, check="none"),
            Http("GET", f"{NOTIFY}?topic=$tag-x", pick="notifications.*.payload.title"),
        ),
    ),
    Case(
        "list-equal-sort-keys-with-broadcasts",
        "Ties come back in insertion order, own rows before broadcasts",
        (
            send({"title": "$tag own 1", "topic": "$tag-same"}, check="none"),
            send({"title": "$tag broadcast", "topic": "$tag-same"}, BROADCAST, check="none"),
            send({"title": "$tag own 2", "topic": "$tag-same"}, check="none"),
            mine("&orderField=topic,asc", pick="notifications.*.payload.title"),
        ),
    ),
    Case(
        "search-case-insensitive",
        "Search ignores case (an upper-case term finds lower-case titles)",
        (
            send({"title": "$tag lower"}, check="none"),
            Http("GET", f"{NOTIFY}?search=$TAG", pick="notifications.*.payload.title"),
        ),
    ),
    Case(
        "search-non-ascii",
        "Search is case-insensitive for non-ASCII letters (ÜBER finds über)",
        (
            send({"title": "$tag-über"}, check="none"),
            Http("GET", f"{NOTIFY}?search=$TAG-ÜBER", pick="notifications.*.payload.title"),
        ),
    ),
    Case(
        "search-description",
        "Search matches the description too",
        (
            send({"title": "untagged", "description": "about $tag"}, check="none"),
            mine(pick="notifications.*.payload.description"),
        ),
    ),
    Case(
        "topics-of-mine",
        "/topics lists the topics of the filtered rows",
        (
            send({"title": "$tag 1", "topic": "$tag-b"}, check="none"),
            send({"title": "$tag 2", "topic": "$tag-a"}, check="none"),
            Http("GET", f"{NOTIFY}/topics?search=$tag"),
        ),
    ),
    Case(
        "update-read-and-saved",
        "/update marks read, saved and unread and answers the updated rows",
        (
            send({"title": "$tag upd"}, capture={"id": "0.id"}, check="none"),
            Http("POST", f"{NOTIFY}/update", json={"ids": ["$id"], "read": True}),
            Http("POST", f"{NOTIFY}/notifications/update", json={"ids": ["$id"], "saved": True}),
            Http("POST", f"{NOTIFY}/update", json={"ids": ["$id"], "read": False}),
            mine("&saved=true", pick="notifications.*.payload.title"),
        ),
    ),
    Case(
        "update-broadcast-per-user",
        "Marking a broadcast read is the guest's own state",
        (
            send({"title": "$tag bc"}, BROADCAST, capture={"id": "0.id"}, check="none"),
            Http("POST", f"{NOTIFY}/update", json={"ids": ["$id"], "read": True}),
            mine("&read=true"),
        ),
    ),
    Case(
        "other-users-notification",
        "The guest can neither read nor mark another user's notification",
        (
            send(
                {"title": "$tag for alice"},
                {"type": "entity", "entityRef": "user:default/alice"},
                capture={"id": "0.id"},
                check="none",
            ),
            Http("GET", f"{NOTIFY}/$id"),
            Http("POST", f"{NOTIFY}/update", json={"ids": ["$id"], "read": True}),
            mine(),
        ),
    ),
    Case(
        "get-one-legacy-path",
        "/api/notifications/notifications/:id answers the row too",
        (
            send({"title": "$tag legacy one"}, capture={"id": "0.id"}, check="none"),
            Http("GET", f"{NOTIFY}/notifications/$id", pick="payload.title"),
        ),
    ),
    Case(
        "list-order-by-severity",
        "orderField=severity sorts by the stored text (not by rank), then by a second orderField",
        (
            send({"title": "$tag n", "severity": "normal"}, check="none"),
            send({"title": "$tag c", "severity": "critical"}, check="none"),
            send({"title": "$tag l", "severity": "low"}, check="none"),
            send({"title": "$tag h", "severity": "high"}, check="none"),
            mine("&orderField=severity,desc", pick="notifications.*.payload.title"),
            mine("&orderField=severity,asc&orderField=title,desc", pick="notifications.*.payload.title"),
        ),
    ),
    Case(
        "list-created-after",
        "createdAfter keeps rows created after the instant",
        (
            send({"title": "$tag new"}, check="none"),
            mine("&createdAfter=2000-01-01T00:00:00.000Z", pick="notifications.*.payload.title"),
            mine("&createdAfter=2999-01-01T00:00:00.000Z", pick="totalCount"),
        ),
    ),
    Case(
        "topics-minimum-severity",
        "/topics takes the filters (minimumSeverity)",
        (
            send({"title": "$tag 1", "topic": "$tag-low", "severity": "low"}, check="none"),
            send({"title": "$tag 2", "topic": "$tag-high", "severity": "high"}, check="none"),
            Http("GET", f"{NOTIFY}/topics?search=$tag&minimumSeverity=normal"),
        ),
    ),
    Case(
        "update-unknown-id",
        "/update of an unknown id answers []",
        (Http("POST", f"{NOTIFY}/update", json={"ids": ["00000000-0000-0000-0000-000000000000"], "read": True}),),
    ),
    Case(
        "update-ids-not-array",
        "/update ids must be an array",
        (Http("POST", f"{NOTIFY}/update", json={"ids": "x", "read": True}),),
    ),
    Case("status-with-service-token", "/status needs a user", (Http("GET", f"{NOTIFY}/status", auth="service"),)),
    Case(
        "list-limit-zero",
        "limit=0 answers no rows and the total",
        (send({"title": "$tag z"}, check="none"), mine("&limit=0")),
    ),
    Case("head-status", "HEAD answers as GET, without a body", (Http("HEAD", f"{NOTIFY}/status"),)),
    Case(
        "settings-unknown-channel",
        "Settings for a channel that does not exist",
        (Http("POST", f"{NOTIFY}/settings", json={"channels": [{"id": "Nope", "origins": []}]}, pick="channels.*.id"),),
    ),
]

SCOPES = [
    Case(
        "scope-resend-keeps-omitted-fields",
        "A scope re-send keeps id/created and the omitted description/link/topic, replaces the title, "
        "resets read and sets updated",
        (
            send(
                {
                    "title": "$tag v1",
                    "description": "first",
                    "link": "https://example.com/1",
                    "topic": "$tag-t",
                    "scope": "$tag-scope",
                },
                capture={"id": "0.id"},
                check="none",
            ),
            Http("POST", f"{NOTIFY}/update", json={"ids": ["$id"], "read": True}, check="none"),
            send({"title": "$tag v2", "scope": "$tag-scope"}),
            Http("GET", f"{NOTIFY}/$id"),
        ),
    ),
    Case(
        "scope-resend-replaces-sent-fields",
        "A scope re-send replaces the fields it sends",
        (
            send(
                {"title": "$tag v1", "description": "first", "severity": "low", "scope": "$tag-scope"},
                capture={"id": "0.id"},
                check="none",
            ),
            send(
                {"title": "$tag v2", "description": "second", "severity": "high", "scope": "$tag-scope"}, check="none"
            ),
            mine(),
        ),
    ),
    Case(
        "scope-broadcast-resend-keeps-user-state",
        "A scoped broadcast re-send keeps one row, its id, and the guest's read and saved state",
        (
            send({"title": "$tag v1", "scope": "$tag-scope"}, BROADCAST, capture={"id": "0.id"}, check="none"),
            Http("POST", f"{NOTIFY}/update", json={"ids": ["$id"], "read": True, "saved": True}, check="none"),
            send({"title": "$tag v2", "scope": "$tag-scope"}, BROADCAST),
            mine(),
        ),
        greenroom={
            2: {
                "status": 200,
                "contentType": "application/json; charset=utf-8",
                "body": [
                    {
                        "id": "<id>",
                        "user": None,
                        "created": "<timestamp>",
                        "updated": "<timestamp>",
                        "origin": "bench",
                        "payload": {"title": "<tag> v2", "severity": "normal", "scope": "<tag>-scope"},
                    }
                ],
            }
        },
        why="Backstage answers a scoped broadcast re-send with a fresh id it never stores; "
        "Greenroom answers the stored row (its id is the one the list shows)",
    ),
]

SIGNALS = [
    Case("ws-no-token", "An upgrade without a token is a 401", (Ws(),)),
    Case("ws-garbage-protocol", "An upgrade with a sub-protocol that is no token is a 401", (Ws(("not-a-token",)),)),
    Case("ws-service-token", "A service token as sub-protocol is a 403", (Ws(("$service_token",)),)),
    Case("ws-user-token-protocol", "The user token as sub-protocol opens and is echoed", (Ws(("$user_token",)),)),
    Case("ws-bearer-header", "Authorization: Bearer opens without a sub-protocol", (Ws(bearer="$user_token"),)),
    Case(
        "ws-bearer-with-unrelated-protocol",
        "Authorization: Bearer authenticates even when an unrelated sub-protocol is offered",
        (Ws(("graphql-ws",), bearer="$user_token"),),
    ),
    Case("ws-service-bearer", "A service token in Authorization: Bearer is a 403", (Ws(bearer="$service_token"),)),
    Case(
        "ws-protocol-and-bearer",
        "With a token both as sub-protocol and as bearer, the sub-protocol is selected",
        (Ws(("$user_token",), bearer="$user_token"),),
    ),
    Case(
        "ws-token-second-protocol",
        "The offered sub-protocols are tried in order as tokens",
        (Ws(("not-a-token", "$user_token")),),
    ),
    Case(
        "ws-token-fifth-protocol",
        "Up to five offered sub-protocols are tried",
        (Ws(("a", "b", "c", "d", "$user_token")),),
    ),
    Case(
        "ws-token-sixth-protocol", "A token offered sixth is not tried", (Ws(("a", "b", "c", "d", "e", "$user_token")),)
    ),
]

CATALOG_API = "/api/catalog"
BY_QUERY = f"{CATALOG_API}/entities/by-query"

CATALOG = [
    Case(
        "catalog-by-query-filter",
        "by-query with a filter answers the entity as Backstage stores it",
        (Http("GET", f"{BY_QUERY}?filter=kind=user,metadata.name=alice"),),
    ),
    Case(
        "catalog-by-query-full-text",
        "fullTextFilterTerm + fullTextFilterFields filter case-insensitively",
        (
            Http(
                "GET",
                f"{BY_QUERY}?fullTextFilterTerm=ALIC&fullTextFilterFields=metadata.name",
                pick="items.*.metadata.name",
            ),
        ),
    ),
    Case(
        "catalog-by-query-full-text-total",
        "A full-text filter is counted in totalItems",
        (
            Http(
                "GET",
                f"{BY_QUERY}?fullTextFilterTerm=team-&fullTextFilterFields=metadata.name&limit=1",
                pick="totalItems",
            ),
        ),
    ),
    Case(
        "catalog-by-query-default-page",
        "Without limit up to 200 items come back (no artificial cap)",
        (Http("GET", BY_QUERY, pick="items", check="length"), Http("GET", BY_QUERY, pick="totalItems")),
    ),
    Case(
        "catalog-by-query-large-limit",
        "A limit above 1,000 is honoured",
        (Http("GET", f"{BY_QUERY}?limit=1500", pick="items", check="length"),),
    ),
    Case(
        "catalog-by-query-offset",
        "offset skips entities in the requested order",
        (
            Http(
                "GET",
                f"{BY_QUERY}?filter=kind=user&orderField=metadata.name,asc&limit=2&offset=1",
                pick="items.*.metadata.name",
            ),
        ),
    ),
    Case(
        "catalog-by-query-order-any-field",
        "orderField takes any field path; entities lacking it are left out",
        (
            Http("GET", f"{BY_QUERY}?orderField=spec.profile.displayName,asc&limit=3", pick="items.*.metadata.name"),
            Http("GET", f"{BY_QUERY}?orderField=spec.profile.displayName,asc&limit=3", pick="totalItems"),
        ),
    ),
    Case(
        "catalog-by-query-total-exclude",
        "totalItems=exclude answers totalItems 0",
        (Http("GET", f"{BY_QUERY}?filter=kind=group&totalItems=exclude", pick="totalItems"),),
    ),
    Case(
        "catalog-by-query-fields",
        "fields= keeps only the listed fields",
        (Http("GET", f"{BY_QUERY}?filter=kind=group,metadata.name=team-a&fields=kind,metadata.name"),),
    ),
    Case("catalog-by-query-unknown-parameter", "An unknown parameter is a 400", (Http("GET", f"{BY_QUERY}?bogus=1"),)),
    Case("catalog-by-query-negative-offset", "offset=-1 is a 400", (Http("GET", f"{BY_QUERY}?offset=-1"),)),
    Case(
        "catalog-by-query-cursor",
        "nextCursor pages on in the same order and filter",
        (
            Http(
                "GET",
                f"{BY_QUERY}?filter=kind=user&orderField=metadata.name,asc&limit=2",
                capture={"cursor": "pageInfo.nextCursor"},
                pick="items.*.metadata.name",
            ),
            Http("GET", f"{BY_QUERY}?cursor=$cursor_q&limit=2", pick="items.*.metadata.name"),
        ),
    ),
    Case(
        "catalog-by-query-limit-zero", "limit=0 answers no items but the total", (Http("GET", f"{BY_QUERY}?limit=0"),)
    ),
    Case(
        "catalog-by-query-full-text-default-fields",
        "A full-text term without fields does not match names",
        (Http("GET", f"{BY_QUERY}?fullTextFilterTerm=ali"),),
    ),
    Case("catalog-by-query-negative-limit", "limit=-1 is a 400", (Http("GET", f"{BY_QUERY}?limit=-1"),)),
    Case(
        "catalog-by-query-bad-order-direction",
        "An order direction other than asc/desc is a 400",
        (Http("GET", f"{BY_QUERY}?orderField=metadata.name,sideways"),),
    ),
    Case("catalog-by-query-empty-filter", "An empty filter= is a 400", (Http("GET", f"{BY_QUERY}?filter="),)),
    Case("catalog-by-query-empty-fields", "An empty fields= is a 400", (Http("GET", f"{BY_QUERY}?fields="),)),
    Case("catalog-by-query-array-field", "A malformed field ('[') is a 400", (Http("GET", f"{BY_QUERY}?fields=%5B"),)),
    Case(
        "catalog-by-refs-malformed",
        "A malformed or short ref gives null in its slot, not a batch error",
        (
            Http(
                "POST",
                f"{CATALOG_API}/entities/by-refs",
                json={"entityRefs": ["user:default/alice", "not a ref!!", "guest", "user:guest"]},
                pick="items.*.metadata.name",
            ),
        ),
    ),
    Case(
        "catalog-by-refs-filter",
        "?filter= applies to the batch (non-matching slots are null)",
        (
            Http(
                "POST",
                f"{CATALOG_API}/entities/by-refs?filter=kind=group",
                json={"entityRefs": ["user:default/alice", "group:default/team-a"]},
                pick="items.*.metadata.name",
            ),
        ),
    ),
    Case(
        "catalog-facets-sorted",
        "entity-facets values are sorted by value and count Location entities",
        (Http("GET", f"{CATALOG_API}/entity-facets?facet=kind"),),
    ),
    Case(
        "catalog-facets-relations",
        "Facets over relations count each target, sorted by value",
        (Http("GET", f"{CATALOG_API}/entity-facets?facet=relations.memberOf"),),
    ),
    Case("catalog-facets-without-facet", "entity-facets needs a facet", (Http("GET", f"{CATALOG_API}/entity-facets"),)),
    Case(
        "catalog-entity-by-uid-unknown",
        "An unknown uid is a 404 NotFoundError",
        (Http("GET", f"{CATALOG_API}/entities/by-uid/nope"),),
    ),
    Case(
        "catalog-locations",
        "Every configured location is a Location entity (generated-<hash>, spec.type, target)",
        (Http("GET", f"{BY_QUERY}?filter=kind=location&orderField=spec.target,asc"),),
    ),
    Case(
        "catalog-entity-by-name",
        "GET /entities/by-name/:kind/:namespace/:name answers the entity",
        (Http("GET", f"{CATALOG_API}/entities/by-name/group/default/team-b"),),
    ),
    Case(
        "catalog-entity-by-name-unknown",
        "An unknown entity is a 404 NotFoundError",
        (Http("GET", f"{CATALOG_API}/entities/by-name/group/default/nope"),),
    ),
    Case(
        "catalog-relation-filter",
        "A relation filter matches case-insensitively",
        (
            Http(
                "GET",
                f"{BY_QUERY}?filter=relations.memberof=group:default/TEAM-B&orderField=metadata.name,asc",
                pick="items.*.metadata.name",
            ),
        ),
    ),
    Case(
        "catalog-or-filters",
        "Several filter= parameters are ORed",
        (
            Http(
                "GET",
                f"{BY_QUERY}?filter=kind=group,metadata.name=team-b&filter=metadata.name=alice"
                "&orderField=metadata.name,asc",
                pick="items.*.metadata.name",
            ),
        ),
    ),
    Case(
        "catalog-filter-spec-field",
        "A filter on a spec field (any value of a list matches)",
        (
            Http(
                "GET",
                f"{BY_QUERY}?filter=spec.memberOf=team-b&orderField=metadata.name,asc",
                pick="items.*.metadata.name",
            ),
        ),
    ),
    Case(
        "catalog-filter-exists",
        "A filter key without a value keeps entities that have the field",
        (
            Http("GET", f"{BY_QUERY}?filter=kind=group,spec.profile&limit=5", pick="totalItems"),
            Http("GET", f"{BY_QUERY}?filter=kind=group,metadata.description", pick="totalItems"),
        ),
    ),
    Case(
        "catalog-by-refs-fields",
        "by-refs takes fields in the body, not as a query parameter",
        (
            Http(
                "POST",
                f"{CATALOG_API}/entities/by-refs",
                json={"entityRefs": ["user:default/bob", "group:default/team-a"], "fields": ["metadata.name", "kind"]},
            ),
            Http(
                "POST",
                f"{CATALOG_API}/entities/by-refs?fields=metadata.name",
                json={"entityRefs": ["user:default/bob"]},
            ),
        ),
    ),
    Case(
        "catalog-facets-filtered",
        "entity-facets takes a filter",
        (Http("GET", f"{CATALOG_API}/entity-facets?facet=kind&filter=kind=user"),),
    ),
    Case(
        "catalog-by-query-exclude-with-items",
        "totalItems=exclude still pages the items",
        (Http("GET", f"{BY_QUERY}?filter=kind=user&orderField=metadata.name,asc&limit=1&totalItems=exclude"),),
    ),
    Case(
        "catalog-user-entity",
        "The guest's User entity with its relations",
        (Http("GET", f"{CATALOG_API}/entities/by-name/user/default/guest"),),
    ),
    Case(
        "catalog-facets-namespace",
        "Facets over a metadata field",
        (Http("GET", f"{CATALOG_API}/entity-facets?facet=metadata.namespace&facet=spec.type"),),
    ),
]

ERRORS = [
    Case(
        "auth-guest-refresh",
        "The guest sign-in answers Backstage's identity (ownership from the catalog)",
        (
            Http("POST", "/api/auth/guest/refresh", auth="none", pick="backstageIdentity.identity"),
            Http("GET", "/api/auth/guest/refresh", auth="none", check="shape"),
        ),
    ),
    Case(
        "unknown-catalog-path-without-token",
        "An unknown path under a plugin meets the auth check first",
        (Http("GET", f"{CATALOG_API}/nope", auth="none"),),
    ),
    Case(
        "unknown-plugin-path",
        "A path no plugin serves is a 404 with an empty body",
        (Http("GET", "/api/nothing/here"),),
    ),
    Case(
        "unknown-notifications-path",
        "A path the notifications router does not serve is a 404 with an empty body",
        (Http("GET", f"{NOTIFY}/nope/x"),),
    ),
]

CORS_PREFLIGHT = {
    "Origin": "http://127.0.0.1:3000",
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "authorization,content-type",
}
CORS_HEADERS = (
    "access-control-allow-origin",
    "access-control-allow-credentials",
    "access-control-allow-methods",
    "access-control-allow-headers",
    "access-control-max-age",
)

CORS = [
    Case(
        "cors-preflight-allowed-origin",
        "A preflight from an origin backend.cors allows answers 204 with the Access-Control-Allow-* headers, "
        "before any auth check",
        (Http("OPTIONS", NOTIFY, auth="none", headers=CORS_PREFLIGHT, response_headers=CORS_HEADERS),),
        recorded_from="cors-oracle",
    ),
    Case(
        "cors-request-allowed-origin",
        "A request from an allowed origin carries Allow-Origin and Allow-Credentials",
        (
            Http(
                "GET",
                NOTIFY,
                auth="none",
                headers={"Origin": "http://127.0.0.1:3000"},
                check="headers",
                response_headers=CORS_HEADERS[:2],
            ),
        ),
        recorded_from="cors-oracle",
    ),
    Case(
        "cors-preflight-other-origin",
        "A preflight from an origin backend.cors does not allow gets no CORS headers and meets the auth check "
        "(as without backend.cors: recorded from the peer, which has none)",
        (
            Http(
                "OPTIONS",
                NOTIFY,
                auth="none",
                headers={**CORS_PREFLIGHT, "Origin": "http://evil.example"},
                response_headers=CORS_HEADERS[:1],
            ),
        ),
    ),
]

#: Every case, in the order they run.
CASES: list[Case] = [*NOTIFICATIONS_REST, *SCOPES, *SIGNALS, *CATALOG, *ERRORS, *CORS]
