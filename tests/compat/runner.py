"""A small runner for the compatibility cases in :mod:`tests.compat.cases`.

A case is a list of steps (HTTP requests or WebSocket upgrades). The runner
sends them to a :class:`Target` (a Greenroom host or the real Backstage),
fills ``$names`` in paths, headers and bodies from the run's context (a
unique ``$tag``, the tokens, values captured from earlier answers), and
turns each checked answer into a normalised, comparable :data:`Answer`:
ids, timestamps, tokens, hashes and paths that differ between servers and
runs become placeholders, and captured values become ``<name>`` so that
"the re-send kept the id" stays visible.
"""

from __future__ import annotations

import json
import re
import string
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

#: What the runner compares for one step: status, content type, selected headers and a projection of the body.
Answer = dict[str, Any]

NO_BODY = object()


@dataclass(frozen=True)
class Http:
    """One HTTP request of a case.

    ``auth`` is ``user`` (the guest's token), ``service`` (the static token) or ``none``.
    ``json`` is sent as ``application/json``; ``body`` is sent as is, with only the given ``headers``.
    ``capture`` names values of the JSON answer (dotted paths, e.g. ``0.id``) for later steps.
    ``pick`` selects part of the body (dotted path, ``*`` maps over a list) and ``check`` says how
    it is compared: ``full`` (the normalised value), ``shape`` (types and keys only), ``length``
    (of a list), ``headers`` (only ``response_headers``) or ``none`` (not compared: a setup step).
    """

    method: str
    path: str
    auth: str = "user"
    json: Any = NO_BODY
    body: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    capture: Mapping[str, str] = field(default_factory=dict)
    pick: str | None = None
    check: str = "full"
    response_headers: tuple[str, ...] = ()


@dataclass(frozen=True)
class Ws:
    """A WebSocket upgrade to ``/api/signals``: offered sub-protocols and an optional ``Authorization`` token."""

    protocols: tuple[str, ...] = ()
    bearer: str | None = None
    path: str = "/api/signals"
    check: str = "full"


Step = Http | Ws


@dataclass(frozen=True)
class Case:
    """A named sequence of steps and the Backstage behaviour it checks.

    ``greenroom`` overrides the recorded Backstage answer of some steps (by index) where Greenroom
    deliberately answers otherwise; ``why`` says why (a Backstage bug, documented in docs/compat.md).
    ``recorded_from`` is ``peer`` (the shared Backstage) or ``cors-oracle`` (Backstage's CORS
    middleware with :data:`tests.compat.peer.CORS_CONFIG`, which the shared peer does not have).
    """

    name: str
    checks: str
    steps: tuple[Step, ...]
    greenroom: Mapping[int, Answer] = field(default_factory=dict)
    why: str = ""
    recorded_from: str = "peer"


@dataclass
class Target:
    """A server to run cases against: its base URL, static service token and catalog directory."""

    name: str
    base_url: str
    service_token: str
    catalog_dir: str | None = None
    _user_token: str | None = None

    def user_token(self) -> str:
        """The guest's token from the guest sign-in provider (``user:default/guest``), fetched once."""
        if self._user_token is None:
            response = httpx.post(f"{self.base_url}/api/auth/guest/refresh", timeout=30)
            response.raise_for_status()
            self._user_token = str(response.json()["backstageIdentity"]["token"])
        return self._user_token


_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)?")
_JWT = re.compile(r"eyJ[\w-]+\.[\w-]+\.[\w-]+")
_GENERATED_NAME = re.compile(r"generated-[0-9a-f]{40}")
_LOG_ID = re.compile(r"logId=[0-9a-f]+")
_VOLATILE_KEYS = {"uid": "<uid>", "etag": "<etag>", "nextCursor": "<cursor>", "prevCursor": "<cursor>"}


class Run:
    """The state of one case on one target: the context for ``$names`` and the normaliser."""

    def __init__(self, target: Target) -> None:
        self.target = target
        tag = f"cmp{uuid.uuid4().hex[:10]}"
        self.context: dict[str, str] = {
            "tag": tag,
            "TAG": tag.upper(),
            "service_token": target.service_token,
        }
        self.captured: dict[str, str] = {}

    def fill(self, value: Any) -> Any:
        """Substitute ``$names`` in every string of ``value``."""
        if isinstance(value, str):
            if "$user_token" in value or "${user_token}" in value:
                self.context["user_token"] = self.target.user_token()
            return string.Template(value).safe_substitute(self.context)
        if isinstance(value, list):
            return [self.fill(item) for item in value]
        if isinstance(value, tuple):
            return tuple(self.fill(item) for item in value)
        if isinstance(value, dict):
            return {self.fill(key): self.fill(item) for key, item in value.items()}
        return value

    def normalise(self, value: Any, key: str | None = None) -> Any:
        """Replace what differs between servers and runs by placeholders."""
        if key in _VOLATILE_KEYS and isinstance(value, str):
            return _VOLATILE_KEYS[key]
        if isinstance(value, dict):
            return {k: self.normalise(v, k) for k, v in value.items()}
        if isinstance(value, list):
            return [self.normalise(item) for item in value]
        if not isinstance(value, str):
            return value
        for name, captured in sorted(self.captured.items(), key=lambda item: -len(item[1])):
            value = value.replace(captured, f"<{name}>")
        for name in ("tag", "TAG"):
            value = value.replace(self.context[name], f"<{name}>")
        if self.target.catalog_dir:
            value = value.replace(self.target.catalog_dir, "<catalog>")
        value = _JWT.sub("<jwt>", value)
        value = value.replace(self.target.service_token, "<service-token>")
        value = _UUID.sub("<uuid>", value)
        value = _TIMESTAMP.sub("<timestamp>", value)
        value = _LOG_ID.sub("logId=<id>", value)
        return _GENERATED_NAME.sub("generated-<hash>", value)

    def capture(self, body: Any, names: Mapping[str, str]) -> None:
        """Remember values of ``body`` for later steps (``$name``, URL-encoded ``$name_q``) and for normalisation."""
        for name, path in names.items():
            (value,) = list(select(body, path))
            self.captured[name] = str(value)
            self.context[name] = str(value)
            self.context[f"{name}_q"] = quote(str(value), safe="")


def select(value: Any, path: str | None) -> Iterator[Any]:
    """The values at a dotted ``path`` (``*`` maps over a list; numbers index lists)."""
    if not path:
        yield value
        return
    head, _, rest = path.partition(".")
    if head == "*":
        for item in value:
            yield from select(item, rest)
    elif isinstance(value, list):
        yield from select(value[int(head)], rest)
    elif isinstance(value, dict) and head in value:
        yield from select(value[head], rest)


def shape(value: Any) -> Any:
    """Keys and value types of ``value`` (a list by the shape of its first item)."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    return type(value).__name__


def project(body: Any, pick: str | None, check: str) -> Any:
    """The part of a (normalised) body that ``check`` compares."""
    if pick is not None and body is not None:
        picked = list(select(body, pick))
        body = picked if "*" in pick else (picked[0] if picked else None)
    if check == "shape":
        return shape(body)
    if check == "length":
        return len(body) if isinstance(body, list) else body
    return body


def run_http(run: Run, client: httpx.Client, step: Http) -> Answer:
    """Send one HTTP step; return its normalised answer."""
    headers = {key: run.fill(value) for key, value in step.headers.items()}
    if step.auth == "user":
        headers["Authorization"] = f"Bearer {run.target.user_token()}"
    elif step.auth == "service":
        headers["Authorization"] = f"Bearer {run.target.service_token}"
    content: bytes | None = None
    if step.json is not NO_BODY:
        content = json.dumps(run.fill(step.json)).encode()
        headers.setdefault("Content-Type", "application/json")
    elif step.body is not None:
        content = run.fill(step.body).encode()
    response = client.request(step.method, run.fill(step.path), headers=headers, content=content)
    text = response.text
    try:
        body: Any = json.loads(text) if text else None
    except ValueError:
        body = text
    if step.capture:
        run.capture(body, step.capture)
    headers_seen = {name: run.normalise(response.headers.get(name)) for name in step.response_headers}
    if step.check == "headers":
        return {"headers": headers_seen}
    answer: Answer = {
        "status": response.status_code,
        "contentType": response.headers.get("content-type") if text else None,
    }
    if headers_seen:
        answer["headers"] = headers_seen
    answer["body"] = project(run.normalise(body), step.pick, step.check)
    return answer


def run_ws(run: Run, step: Ws) -> Answer:
    """Attempt one WebSocket upgrade; return the status and the selected sub-protocol."""
    url = run.target.base_url.replace("http", "ws", 1) + step.path
    protocols = [run.fill(protocol) for protocol in step.protocols] or None
    headers = {"Authorization": f"Bearer {run.fill(step.bearer)}"} if step.bearer else None
    try:
        with connect(url, subprotocols=protocols, additional_headers=headers, open_timeout=10) as ws:
            return {"status": 101, "subprotocol": run.normalise(ws.subprotocol)}
    except InvalidStatus as error:
        return {"status": error.response.status_code, "subprotocol": None}


def run_case(case: Case, target: Target) -> list[Answer | None]:
    """Run every step of ``case`` against ``target``; ``None`` stands for an unchecked (setup) step."""
    run = Run(target)
    answers: list[Answer | None] = []
    with httpx.Client(base_url=target.base_url, timeout=30) as client:
        for step in case.steps:
            answer = run_ws(run, step) if isinstance(step, Ws) else run_http(run, client, step)
            answers.append(None if step.check == "none" else answer)
    return answers
