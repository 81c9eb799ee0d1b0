"""Calls to the Slack Web API (``slack_sdk``'s ``AsyncWebClient``), their throttle, and what a failure means.

Every call is made once: slack_sdk's own retry handlers are off, because the
outbox retries. A failure becomes a :class:`SlackCallError` carrying the
outbox outcome:

* HTTP 429, or ``ok: false`` with ``ratelimited``: ``retry`` after the
  ``Retry-After`` delay (capped at ``maxRetryAfter``);
* HTTP 5xx, Slack's transient errors (``service_unavailable``,
  ``internal_error``, ``fatal_error``, ``request_timeout``, ...), timeouts and
  connection errors: ``retry`` after the outbox's backoff;
* any other ``ok: false`` error (``channel_not_found``, ``not_in_channel``,
  ``invalid_auth``, ``is_archived``, ...): ``failed``, since sending the same
  message again cannot help.

Error texts name the Slack error code, the method and the destination (ids,
never the token) and become the delivery's ``lastError``.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from plugin_notifications.delivery import DeliveryOutcome
from plugin_notifications.http_channels import retry_after_seconds

#: ``ok: false`` errors worth trying again later.
TRANSIENT_ERRORS = frozenset(
    {"ratelimited", "service_unavailable", "internal_error", "fatal_error", "request_timeout", "team_added_to_org"}
)
USER_AGENT_PREFIX = "Greenroom-Notifications/0.1"


class SlackCallError(Exception):
    """A Slack call failed; :attr:`outcome` says whether the delivery should be retried."""

    def __init__(self, outcome: DeliveryOutcome) -> None:
        super().__init__(outcome.error)
        self.outcome = outcome


def classify(error: BaseException, what: str, *, max_retry_after: float) -> DeliveryOutcome:
    """The outcome of a failed call; ``what`` names the method and destination for the error text."""
    if isinstance(error, SlackApiError):
        response = error.response
        status = int(getattr(response, "status_code", 0) or 0)
        data = getattr(response, "data", None)
        code = str(data.get("error")) if isinstance(data, dict) and data.get("error") else None
        if status == 429 or code == "ratelimited":
            headers = getattr(response, "headers", None) or {}
            raw = headers.get("retry-after") or headers.get("Retry-After")
            delay = retry_after_seconds(raw if isinstance(raw, str) else None)
            if delay is not None:
                delay = min(delay, max_retry_after)
                return DeliveryOutcome.retry(
                    f"{what}: rate limited, Retry-After {math.ceil(delay)} s", after_seconds=delay
                )
            return DeliveryOutcome.retry(f"{what}: rate limited")
        if status >= 500 or code in TRANSIENT_ERRORS:
            return DeliveryOutcome.retry(f"{what}: {code or f'HTTP {status}'}")
        if code is None and status != 200:
            return DeliveryOutcome.failed(f"{what}: HTTP {status}")
        return DeliveryOutcome.failed(f"{what}: {code or 'unknown error'}")
    if isinstance(error, TimeoutError):
        return DeliveryOutcome.retry(f"{what}: timed out")
    if isinstance(error, aiohttp.ClientError):
        return DeliveryOutcome.retry(f"{what}: connection failed ({type(error).__name__})")
    return DeliveryOutcome.retry(f"{what}: {type(error).__name__}")


class Throttle:
    """At most ``limit`` calls start in any ``interval`` seconds (Backstage's ``concurrencyLimit`` per ``throttleInterval``).

    Per worker process, like Backstage's per instance. :meth:`acquire` waits
    for a free slot, but not past a deadline: a delivery that would wait longer
    is handed back to the outbox to try again when a slot frees up.
    """

    def __init__(self, limit: int, interval: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._limit = limit
        self._interval = interval
        self._clock = clock
        self._starts: deque[float] = deque()
        self._lock = asyncio.Lock()

    async def acquire(self, deadline: float) -> float | None:
        """Take a slot, waiting until ``deadline`` (a ``clock`` time) at most.

        :return: ``None`` when a slot was taken, else the seconds until one frees up.
        """
        async with self._lock:
            while True:
                now = self._clock()
                while self._starts and self._starts[0] <= now - self._interval:
                    self._starts.popleft()
                if len(self._starts) < self._limit:
                    self._starts.append(now)
                    return None
                free_at = self._starts[0] + self._interval
                if free_at > deadline:
                    return free_at - now
                await asyncio.sleep(free_at - now)


class SlackClient:
    """One workspace's Web API client: one ``aiohttp`` session, no built-in retries."""

    def __init__(self, token: str, *, api_url: str, timeout: float, max_retry_after: float) -> None:
        self._token = token
        self._api_url = api_url
        self._timeout = max(1, math.ceil(timeout))
        self._max_retry_after = max_retry_after
        self._session: aiohttp.ClientSession | None = None
        self._web: AsyncWebClient | None = None

    def _client(self) -> AsyncWebClient:
        if self._web is None:  # created on first use, inside the running event loop
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self._timeout), trust_env=False)
            self._web = AsyncWebClient(
                token=self._token,
                base_url=self._api_url,
                timeout=self._timeout,
                session=self._session,
                retry_handlers=[],
                user_agent_prefix=USER_AGENT_PREFIX,
            )
        return self._web

    async def _call(self, what: str, method: str, **kwargs: Any) -> dict[str, Any]:
        try:
            response = await getattr(self._client(), method)(**kwargs)
        except Exception as error:  # noqa: BLE001 - every failure is classified for the outbox
            raise SlackCallError(classify(error, what, max_retry_after=self._max_retry_after)) from None
        data = response.data
        return dict(data) if isinstance(data, dict) else {}

    async def user_id_by_email(self, email: str) -> str | None:
        """The Slack user id of ``email`` (``users.lookupByEmail``), ``None`` when Slack has no such user."""
        try:
            data = await self._call("users.lookupByEmail", "users_lookupByEmail", email=email)
        except SlackCallError as failure:
            if failure.outcome.kind == "failed" and "users_not_found" in (failure.outcome.error or ""):
                return None
            raise
        user = data.get("user")
        found = user.get("id") if isinstance(user, dict) else None
        return str(found) if found else None

    async def post(self, channel: str, message: dict[str, Any], metadata: dict[str, Any]) -> tuple[str, str]:
        """``chat.postMessage`` to ``channel``; return ``(conversation id, ts)``."""
        data = await self._call(
            f"chat.postMessage to {channel}", "chat_postMessage", channel=channel, metadata=metadata, **message
        )
        return str(data.get("channel") or channel), str(data.get("ts") or "")

    async def update(self, conversation: str, ts: str, message: dict[str, Any], metadata: dict[str, Any]) -> None:
        """``chat.update`` of the message ``ts`` in ``conversation`` (``username`` cannot change and is left out)."""
        args = {key: value for key, value in message.items() if key != "username"}
        await self._call(
            f"chat.update in {conversation}", "chat_update", channel=conversation, ts=ts, metadata=metadata, **args
        )

    async def close(self) -> None:
        """Close the HTTP session."""
        if self._session is not None:
            await self._session.close()
            self._session = None
            self._web = None
