"""Idempotent sends: the ``Idempotency-Key`` header of ``POST /notifications`` and the service's key.

Follows the IETF httpapi draft *The Idempotency-Key HTTP Header Field*: the header is a
Structured Field Item whose value is a String (``Idempotency-Key: "8e03978e-40d5"``; a bare token
is not a String and is refused with 400, parameters are ignored). Keys are scoped per principal.
Within ``notifications.idempotency.window`` of the first request with a key:

* the same key and the same body answer the first response again and create nothing;
* the same key with another body is a 422 (:class:`IdempotencyKeyReusedError`);
* a repeat while the first request still runs is a 409 (:class:`~host.errors.ConflictError`).

The claim is a row inserted with ``ON CONFLICT DO NOTHING`` into ``idempotency_key``, so exactly
one request wins it across workers and instances. A claim whose request crashed is taken over
once its lease (``notifications.idempotency.lease``) has passed; a failed request (4xx, 5xx)
releases its claim, since it created nothing. Only a success is kept, as a fingerprint of the
body (SHA-256 of its canonical JSON) and the zlib-compressed response (at most
``maxResponseBytes``), written in the send's own transaction (``SendWrite.before_commit``). The retention task deletes keys older than the window.
"""

from __future__ import annotations

import contextlib
import hashlib
import uuid
import zlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import http_sf
import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from host import BackstageError, Config, ConfigError, ConflictError, InputError, read_section
from plugin_notifications import tables as t
from plugin_notifications.config_schema import IdempotencyConfig
from plugin_notifications.models import Notification, notifications_to_wire, utc_now
from plugin_notifications.store import BeforeCommit

HEADER = "Idempotency-Key"
#: How often a claim is retried when the row changes between reading and taking it over.
_CLAIM_ATTEMPTS = 5


class IdempotencyKeyReusedError(BackstageError):
    """The key was already used with a different request body (422, as the draft says)."""

    status_code = 422


@dataclass(frozen=True)
class IdempotencySettings:
    """``notifications.idempotency``: how long keys are kept and how large they may be."""

    window: timedelta = timedelta(hours=24)
    lease: timedelta = timedelta(minutes=5)
    max_key_length: int = 255
    max_response_bytes: int = 16 * 1024 * 1024

    @classmethod
    def from_config(cls, config: Config) -> IdempotencySettings:
        """Read ``notifications.idempotency`` through its model (missing keys keep their defaults)."""
        settings = cls(
            **read_section(config, "notifications.idempotency", IdempotencyConfig).model_dump(exclude_none=True)
        )
        if settings.lease > settings.window:
            raise ConfigError("notifications.idempotency.lease may not be longer than notifications.idempotency.window")
        return settings


def parse_header(raw: str | None, max_length: int) -> str | None:
    """The key of an ``Idempotency-Key`` header value (``None`` without one); 400 when malformed."""
    if raw is None:
        return None
    parsed: Any = None
    with contextlib.suppress(http_sf.StructuredFieldError, UnicodeEncodeError):  # a 400 below
        parsed = http_sf.parse(raw.encode("latin-1"), tltype="item")
    value = parsed[0] if isinstance(parsed, tuple) else None  # parameters are ignored, as Structured Fields allow
    if not isinstance(value, str):
        raise InputError(
            f'Invalid {HEADER} header, must be a quoted string (a Structured Field String), e.g. {HEADER}: "a1b2c3"'
        )
    return check_key(value, max_length)


def check_key(key: str, max_length: int) -> str:
    """A key as the header can carry it: 1 to ``max_length`` printable ASCII characters; else 400."""
    if not key:
        raise InputError(f"Invalid {HEADER}, must not be empty")
    if len(key) > max_length:
        raise InputError(f"Invalid {HEADER}, must NOT have more than {max_length} characters")
    if not all(" " <= char <= "~" for char in key):
        raise InputError(f"Invalid {HEADER}, must contain only printable ASCII characters")
    return key


def header_value(key: str) -> str:
    """``key`` serialised as the header's value (a quoted Structured Field String)."""
    return str(http_sf.ser(key))


def fingerprint(body: Any) -> str:
    """SHA-256 hex of the body's canonical JSON (sorted keys), so key order does not matter; 400 if not JSON."""
    try:
        canonical = orjson.dumps(body, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)
    except (TypeError, orjson.JSONEncodeError):
        raise InputError("The request body must be JSON") from None
    return hashlib.sha256(canonical).hexdigest()


def _answer_bytes(answer: Sequence[Notification]) -> bytes:
    """The JSON body of a send's 200, as the host's JSON handler writes it."""
    return orjson.dumps(notifications_to_wire(answer), option=orjson.OPT_NON_STR_KEYS)


def key_id(principal: str, key: str) -> str:
    """The stored id of ``key`` for ``principal``: SHA-256 hex of both (bounded, and scoped per principal)."""
    return hashlib.sha256(f"{principal}\x00{key}".encode()).hexdigest()


@dataclass(frozen=True)
class KeptResponse:
    """The response of a keyed send: the first one, or the first one again (``replayed``)."""

    status: int
    body: bytes
    replayed: bool


class IdempotencyKeys:
    """Claims, completes, replays and sweeps idempotency keys in the notifications database."""

    def __init__(self, engine: AsyncEngine, settings: IdempotencySettings, logger: Any) -> None:
        self._engine = engine
        self.settings = settings
        self._logger = logger

    def parse_header(self, raw: str | None) -> str | None:
        """:func:`parse_header` with the configured maximum length."""
        return parse_header(raw, self.settings.max_key_length)

    async def run(
        self, principal: str, key: str, body: Any, send: Callable[[BeforeCommit], Awaitable[Sequence[Notification]]]
    ) -> KeptResponse:
        """Run ``send`` once per ``(principal, key)`` in the window; answer its 200 (or the first one again).

        ``send`` gets the step that records the answer inside the send's own transaction, so the
        notifications and the kept answer are written together: a send whose claim was taken
        over meanwhile (it outlived its lease) rolls back with a 409 instead of sending twice.
        """
        check_key(key, self.settings.max_key_length)
        row_id, print_ = key_id(principal, key), fingerprint(body)
        claim = str(uuid.uuid4())
        replay = await self._claim(row_id, print_, claim)
        if replay is not None:
            return replay
        recorded: list[bytes] = []

        async def record(conn: AsyncConnection, answer: Sequence[Notification]) -> None:
            data = _answer_bytes(answer)
            if not await self._complete(conn, row_id, claim, 200, data):
                raise ConflictError(
                    f"A request with this {HEADER} outlived its lease (notifications.idempotency.lease) and was "
                    "taken over by a repeat; nothing was sent by this one"
                )
            recorded.append(data)

        try:
            answer = await send(record)
            if not recorded:  # nothing was written (no recipient): record the answer on its own
                async with self._engine.begin() as conn:
                    await record(conn, answer)
        except BaseException as error:
            # A cancelled request keeps its claim until the lease ends (its database session may be gone).
            if isinstance(error, Exception):
                await self._release(row_id, claim)
            raise
        return KeptResponse(200, recorded[0], replayed=False)

    async def _claim(self, row_id: str, print_: str, claim: str) -> KeptResponse | None:
        """Win the key (``None``) or answer the first response again; 409 and 422 are raised."""
        for _ in range(_CLAIM_ATTEMPTS):
            now = utc_now()
            if await self._insert(row_id, print_, claim, now):
                return None
            async with self._engine.connect() as conn:
                row = (await conn.execute(sa.select(t.idempotency_key).where(t.idempotency_key.c.id == row_id))).first()
            if row is None:  # released or swept in between
                continue
            if row.created <= now - self.settings.window:
                if await self._take_over(row_id, row.claim, print_, claim, now):
                    return None
                continue
            if row.fingerprint != print_:
                raise IdempotencyKeyReusedError(
                    f"This {HEADER} was already used with a different request body; use a new key for a new request"
                )
            if row.status is None:
                if row.lease_until > now:
                    raise ConflictError(f"A request with this {HEADER} is still being processed; retry later")
                if await self._take_over(row_id, row.claim, print_, claim, now):
                    return None
                continue
            if row.response is None:
                raise ConflictError(
                    f"A request with this {HEADER} already succeeded (status {row.status}); its response was "
                    "too large to keep (notifications.idempotency.maxResponseBytes)"
                )
            return KeptResponse(int(row.status), zlib.decompress(row.response), replayed=True)
        raise ConflictError(f"A request with this {HEADER} is still being processed; retry later")

    def _values(self, print_: str, claim: str, now: datetime) -> dict[str, Any]:
        return {
            "fingerprint": print_,
            "claim": claim,
            "created": now,
            "lease_until": now + self.settings.lease,
            "status": None,
            "response": None,
        }

    async def _insert(self, row_id: str, print_: str, claim: str, now: datetime) -> bool:
        """Insert the claim unless the key exists (a unique insert, so one request wins it)."""
        insert = postgresql.insert if self._engine.dialect.name == "postgresql" else sqlite.insert
        statement = insert(t.idempotency_key).values(id=row_id, **self._values(print_, claim, now))
        async with self._engine.begin() as conn:
            result = await conn.execute(statement.on_conflict_do_nothing(index_elements=["id"]))
        return bool(result.rowcount)

    async def _take_over(self, row_id: str, old_claim: str, print_: str, claim: str, now: datetime) -> bool:
        """Replace an expired key or a lapsed claim, unless another request replaced it first."""
        table = t.idempotency_key
        async with self._engine.begin() as conn:
            result = await conn.execute(
                table.update()
                .where(table.c.id == row_id, table.c.claim == old_claim)
                .values(**self._values(print_, claim, now))
            )
        return bool(result.rowcount)

    async def _complete(self, conn: AsyncConnection, row_id: str, claim: str, status: int, data: bytes) -> bool:
        """Keep the answer (compressed; none over ``maxResponseBytes``) if the claim is still ours."""
        kept: bytes | None = zlib.compress(data)
        if kept is not None and len(kept) > self.settings.max_response_bytes:
            self._logger.warning(
                "The response to an %s send is %s bytes compressed, more than "
                "notifications.idempotency.maxResponseBytes; repeats will get a 409",
                HEADER,
                len(kept),
            )
            kept = None
        table = t.idempotency_key
        result = await conn.execute(
            table.update().where(table.c.id == row_id, table.c.claim == claim).values(status=status, response=kept)
        )
        return bool(result.rowcount)

    async def _release(self, row_id: str, claim: str) -> None:
        """Forget a claim whose request failed (nothing was created), so the key can be used again."""
        table = t.idempotency_key
        try:
            async with self._engine.begin() as conn:
                # only an unanswered claim: a send that committed (and then failed) keeps its answer
                await conn.execute(
                    table.delete().where(table.c.id == row_id, table.c.claim == claim, table.c.status.is_(None))
                )
        except Exception as error:  # noqa: BLE001 - the claim lapses with its lease
            self._logger.warning("Could not release an %s claim: %s", HEADER, error)

    async def sweep(self) -> int:
        """Delete keys older than the window; answer how many."""
        table = t.idempotency_key
        async with self._engine.begin() as conn:
            result = await conn.execute(table.delete().where(table.c.created < utc_now() - self.settings.window))
        return int(result.rowcount or 0)
