"""Stateful property test: no sequence of calls by user A reveals or changes user B's notifications.

A hypothesis state machine interleaves sends by a service (to A, to B,
to both plus a group, to everyone; some scoped, so they re-notify) with A
listing, fetching, updating, reading its status, topics and settings, and
with B marking its own notifications. A model tracks what B should see;
after every step B's list and status must equal it exactly, and A must
never see one of B's personal notifications.

Each example uses two fresh users (tokens can be minted for any ref), so
examples do not share personal notifications; broadcasts are global, so
B's model starts from the broadcasts that already exist.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import httpx
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test

from tests.fuzz.conftest import BackgroundHost

TARGETS = ("A", "B", "both", "everyone")
SCOPES = (None, "s1", "s2")
ORIGIN = "test-service"
B_TOPIC = "topic-B"
#: The users behind group:default/team (and its child group:default/subteam).
TEAM = ("user:default/jane", "user:default/john", "user:default/sub")


@dataclass
class Flags:
    """B's read and saved marks of one notification."""

    read: bool = False
    saved: bool = False


class IsolationMachine(RuleBasedStateMachine):
    """Service sends, A's calls and B's own updates, checked against a model of B's view."""

    host: BackgroundHost

    def __init__(self) -> None:
        super().__init__()
        run = uuid.uuid4().hex[:8]
        self.run = run
        self.user_a = f"user:default/a-{run}"
        self.user_b = f"user:default/b-{run}"
        self.client = httpx.Client(base_url=f"{self.host.handle.url}/api/notifications", timeout=30)
        self.auth_a = {"Authorization": self.host.bearer(self.user_a)}
        self.auth_b = {"Authorization": self.host.bearer(self.user_b)}
        self.auth_service = {"Authorization": self.host.service_bearer}
        #: B's expected view: every visible id with its marks.
        self.b_view: dict[str, Flags] = {item["id"]: Flags() for item in self._list(self.auth_b)["notifications"]}
        self.b_personal: set[str] = set()
        self.broadcasts: set[str] = set()  # those of this run
        self.a_personal: set[str] = set()
        #: Every id of this run, in the order it was first seen (the server's ids are random, the order is not).
        self.known: dict[str, None] = {}
        self.scoped: dict[tuple[str, str], str] = {}  # (user ref or "*", scope) -> id

    def teardown(self) -> None:
        self.client.close()

    # -- helpers -------------------------------------------------------------------

    def _list(self, auth: dict[str, str], **params: Any) -> dict[str, Any]:
        response = self.client.get("/notifications", params=params, headers=auth)
        assert response.status_code == 200, response.text
        return response.json()

    def _known_ids(self) -> list[str]:
        return list(self.known)

    def _pick_ids(self, data: st.DataObject, *, min_size: int = 0, max_size: int = 4) -> list[str]:
        """Some known ids; drawn as indices, so the draws do not depend on the server's random ids."""
        known = self._known_ids()
        picks = data.draw(st.lists(st.integers(0, 63), min_size=min_size, max_size=max_size))
        return list(dict.fromkeys(known[pick % len(known)] for pick in picks))

    def _update(
        self, auth: dict[str, str], data: st.DataObject, read: bool | None, saved: bool | None
    ) -> tuple[list[str], list[dict[str, Any]]]:
        """``POST /notifications/update`` of some known ids; returns the ids and the answer."""
        ids = self._pick_ids(data)
        body: dict[str, Any] = {"ids": ids}
        if read is not None:
            body["read"] = read
        if saved is not None:
            body["saved"] = saved
        response = self.client.post("/notifications/update", json=body, headers=auth)
        assert response.status_code == 200, response.text
        return ids, response.json()

    def _assert_no_b_personal(self, items: list[dict[str, Any]]) -> None:
        leaked = {item["id"] for item in items} & self.b_personal
        assert not leaked, f"A sees B's notifications {leaked}"
        assert all(item["user"] in (self.user_a, None) for item in items)

    # -- the service -----------------------------------------------------------------

    @rule(
        to=st.sampled_from(TARGETS),
        scope=st.sampled_from(SCOPES),
        severity=st.sampled_from(("critical", "high", "normal", "low")),
    )
    def send(self, to: str, scope: str | None, severity: str) -> None:
        """The service sends to A, to B, to both (plus a group), or to everyone."""
        if to == "everyone":
            recipients: dict[str, Any] = {"type": "broadcast"}
        else:
            refs = {"A": [self.user_a], "B": [self.user_b], "both": [self.user_a, self.user_b, "group:default/team"]}
            recipients = {"type": "entity", "entityRef": refs[to]}
        payload: dict[str, Any] = {"title": f"for {to}", "topic": f"topic-{to}", "severity": severity}
        if scope is not None:
            payload["scope"] = f"{self.run}-{scope}"
        response = self.client.post(
            "/notifications", json={"recipients": recipients, "payload": payload}, headers=self.auth_service
        )
        assert response.status_code == 200, response.text
        created = response.json()
        if to == "everyone":
            assert [item["user"] for item in created] == [None]
            self._record_broadcast(created[0]["id"], scope)
            return
        users = {item["user"] for item in created}
        if to in ("B", "both"):
            assert self.user_b in users  # B never changed its settings
        assert users <= {self.user_a, self.user_b, *TEAM}
        for item in sorted(created, key=lambda item: str(item["user"])):
            if item["user"] in (self.user_a, self.user_b):
                self._record_personal(item["user"], item["id"], scope)

    def _record_personal(self, user: str, id: str, scope: str | None) -> None:
        if scope is not None:
            previous = self.scoped.setdefault((user, scope), id)
            assert previous == id, "a scoped re-notify keeps the id"
        if user == self.user_a:
            self.a_personal.add(id)
            self.known[id] = None
            return
        self.b_personal.add(id)
        self.known[id] = None
        flags = self.b_view.setdefault(id, Flags())
        flags.read = False  # new, or re-notified: unread again, saved kept

    def _record_broadcast(self, id: str, scope: str | None) -> None:
        if scope is not None:
            id = self.scoped.setdefault(("*", scope), id)
        self.broadcasts.add(id)
        self.known[id] = None
        flags = self.b_view.setdefault(id, Flags())
        flags.read = False

    # -- user A ----------------------------------------------------------------------

    @rule(
        read=st.sampled_from((None, "true", "false")),
        saved=st.sampled_from((None, "true", "false")),
        search=st.sampled_from((None, "for B", "for", "B")),
        topic=st.sampled_from((None, B_TOPIC, "topic-both")),
        minimum=st.sampled_from((None, "low", "critical")),
        limit=st.sampled_from((None, 0, 1, 5)),
    )
    def a_lists(self, **filters: Any) -> None:
        """A lists with filters: never one of B's personal notifications, never B's topic."""
        params = {
            ("minimumSeverity" if key == "minimum" else key): value
            for key, value in filters.items()
            if value is not None
        }
        body = self._list(self.auth_a, **params)
        self._assert_no_b_personal(body["notifications"])
        if filters["topic"] == B_TOPIC:
            assert body["totalCount"] == 0

    @precondition(lambda self: bool(self.known))
    @rule(data=st.data(), legacy=st.booleans())
    def a_gets(self, data: st.DataObject, legacy: bool) -> None:
        """A fetches any known id: B's personal ones are 404, A's own and broadcasts 200."""
        [id] = self._pick_ids(data, min_size=1, max_size=1)
        response = self.client.get(f"/{id}" if legacy else f"/notifications/{id}", headers=self.auth_a)
        if id in self.b_personal:
            assert response.status_code == 404, response.text
        else:
            assert response.status_code == 200, response.text

    @precondition(lambda self: bool(self.known))
    @rule(data=st.data(), read=st.sampled_from((None, True, False)), saved=st.sampled_from((None, True, False)))
    def a_updates(self, data: st.DataObject, read: bool | None, saved: bool | None) -> None:
        """A marks any known ids (B's included): the answer holds none of B's, B's view is unchanged."""
        _, updated = self._update(self.auth_a, data, read, saved)
        self._assert_no_b_personal(updated)

    @rule()
    def a_reads_status_and_topics(self) -> None:
        """A's status and topics answer, and the topics never include B's."""
        assert self.client.get("/status", headers=self.auth_a).status_code == 200
        response = self.client.get("/topics", headers=self.auth_a)
        assert response.status_code == 200
        assert B_TOPIC not in response.json()["topics"]

    @rule(enabled=st.booleans(), topic_enabled=st.booleans())
    def a_saves_settings(self, enabled: bool, topic_enabled: bool) -> None:
        """A turns the service (or one of B's topics) off or on for itself."""
        settings_body = {
            "channels": [
                {
                    "id": "Web",
                    "origins": [
                        {
                            "id": ORIGIN,
                            "enabled": enabled,
                            "topics": [{"id": B_TOPIC, "enabled": topic_enabled}],
                        }
                    ],
                }
            ]
        }
        response = self.client.post("/settings", json=settings_body, headers=self.auth_a)
        assert response.status_code == 200, response.text

    # -- user B ----------------------------------------------------------------------

    @precondition(lambda self: bool(self.known))
    @rule(data=st.data(), read=st.sampled_from((None, True, False)), saved=st.sampled_from((None, True, False)))
    def b_updates(self, data: st.DataObject, read: bool | None, saved: bool | None) -> None:
        """B marks ids (A's included, which must be ignored); the model follows B's own actions."""
        ids, updated = self._update(self.auth_b, data, read, saved)
        assert {item["id"] for item in updated} == {id for id in ids if id in self.b_view}
        for id in ids:
            if id in self.b_view:
                if read is not None:
                    self.b_view[id].read = read
                if saved is not None:
                    self.b_view[id].saved = saved

    # -- invariants ------------------------------------------------------------------

    @invariant()
    def b_sees_exactly_its_model(self) -> None:
        """B's list, marks and status are exactly what the sends and B's own updates produced."""
        body = self._list(self.auth_b)
        seen = {
            item["id"]: Flags(item["read"] is not None, item["saved"] is not None) for item in body["notifications"]
        }
        assert seen == self.b_view
        assert body["totalCount"] == len(self.b_view)
        assert all(item["user"] in (self.user_b, None) for item in body["notifications"])
        unread = sum(not flags.read for flags in self.b_view.values())
        status = self.client.get("/status", headers=self.auth_b).json()
        assert status == {"unread": unread, "read": len(self.b_view) - unread}


def test_user_a_never_reveals_or_changes_user_b_notifications(fuzz_host: BackgroundHost) -> None:
    """No interleaving of sends, A's calls and B's updates breaks B's view or leaks it to A."""
    IsolationMachine.host = fuzz_host
    run_state_machine_as_test(
        IsolationMachine,
        settings=settings(
            max_examples=12,
            stateful_step_count=15,
            derandomize=True,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        ),
    )
