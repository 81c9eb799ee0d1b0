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
]

SCOPES = [
]

SIGNALS = [
    Case("ws-no-token", "An upgrade without a token is a 401", (Ws(),)),
    Case("ws-garbage-protocol", "An upgrade with a sub-protocol that is no token is a 401", (Ws(("not-a-token",)),)),
    Case("ws-service-token", "A service token as sub-protocol is a 403", (Ws(("$service_token",)),)),
    Case("ws-user-token-protocol", "The user token as sub-protocol opens and is echoed", (Ws(("$user_token",)),)),
    Case("ws-bearer-header", "Authorization: Bearer opens without a sub-protocol", (Ws(bearer="$user_token"),)),
    Case("ws-token-sixth-protocol", "A token offered sixth is not tried",
         (Ws(("a", "b", "c", "d", "e", "$user_token")),)),
]

CATALOG_API = "/api/catalog"
BY_QUERY = f"{CATALOG_API}/entities/by-query"

CATALOG = [
]

ERRORS = [
]

CORS_PREFLIGHT = {"Origin": "http://127.0.0.1:3000", "Access-Control-Request-Method": "POST",
                  "Access-Control-Request-Headers": "authorization,content-type"}
CORS_HEADERS = ("access-control-allow-origin", "access-control-allow-credentials", "access-control-allow-methods",
                "access-control-allow-headers", "access-control-max-age")

CORS = [
]

#: Every case, in the order they run.
CASES: list[Case] = [*NOTIFICATIONS_REST, *SCOPES, *SIGNALS, *CATALOG, *ERRORS, *CORS]
