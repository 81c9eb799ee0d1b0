"""One POST to one endpoint, and what the outbox should do about its result.

The classification (Standard Webhooks' recommendations):

* 2xx: ``sent``.
* 408, 429 and 5xx: ``retry``, after the ``Retry-After`` delay when the
  receiver gives one (seconds or an HTTP date, capped at
  ``maxRetryAfter``), otherwise after the outbox's backoff.
* timeouts and connection errors: ``retry``.
* any other status (3xx: redirects are not followed; 4xx): ``failed``,
  dead at once, since sending the same message again cannot help.

Error texts become a delivery's ``lastError``, which its recipients can
read: they name the status or the kind of failure, never the URL (it may
hold a token) or the response body.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx

from plugin_notifications.delivery import DeliveryOutcome

USER_AGENT = "Greenroom-Webhooks/0.1"
#: Statuses below 500 that are worth retrying.
RETRYABLE_4XX = frozenset({408, 429})


def retry_after_seconds(value: str | None, *, now: datetime | None = None) -> float | None:
    """Parse a ``Retry-After`` header (delay-seconds or HTTP-date) into seconds from ``now``; ``None`` if unusable."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def classify(response: httpx.Response, *, max_retry_after: float) -> DeliveryOutcome:
    """The outcome of a delivery that got ``response``."""
    status = response.status_code
    if 200 <= status < 300:
        return DeliveryOutcome.sent()
    if status in RETRYABLE_4XX or status >= 500:
        delay = retry_after_seconds(response.headers.get("retry-after"))
        if delay is not None:
            delay = min(delay, max_retry_after)
            return DeliveryOutcome.retry(f"HTTP {status}, Retry-After {math.ceil(delay)} s", after_seconds=delay)
        return DeliveryOutcome.retry(f"HTTP {status}")
    if 300 <= status < 400:
        return DeliveryOutcome.failed(f"HTTP {status} (redirects are not followed)")
    return DeliveryOutcome.failed(f"HTTP {status}")


class WebhookClient:
    """Posts signed messages over one shared connection pool (httpx), never following redirects."""

    def __init__(self, *, max_retry_after: float, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self._max_retry_after = max_retry_after
        self._http = httpx.AsyncClient(
            follow_redirects=False,
            headers={"user-agent": USER_AGENT},
            transport=transport,
            trust_env=False,  # no proxy or netrc from the environment: the endpoint is what is configured
        )

    async def post(self, url: str, body: bytes, headers: dict[str, str], *, timeout_seconds: float) -> DeliveryOutcome:
        """POST ``body`` to ``url`` once; return the outcome (never raises for HTTP or network trouble)."""
        try:
            async with self._http.stream(
                "POST",
                url,
                content=body,
                headers={"content-type": "application/json", **headers},
                timeout=httpx.Timeout(timeout_seconds),
            ) as response:  # the response body is not read: only the status and headers matter
                return classify(response, max_retry_after=self._max_retry_after)
        except httpx.TimeoutException:
            return DeliveryOutcome.retry(f"timed out after {timeout_seconds:g} s")
        except httpx.TransportError as error:
            return DeliveryOutcome.retry(f"connection failed ({type(error).__name__})")

    async def close(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()
