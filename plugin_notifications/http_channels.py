"""What the channel modules that POST to configured HTTP endpoints share (webhooks, Microsoft Teams).

* :class:`HttpRoute`: one endpoint of such a module's config (``url``, ``name``,
  the filters, ``timeout``); :class:`HttpChannelSettings`: the knobs around
  them (``timeout``, ``concurrency``, ``batchSize``, ``maxRetryAfter``,
  ``entityRefsCacheTtl``). Both are pydantic config sections (camelCase keys).
* :class:`RouteFilter`: ``origins``, ``topics`` and ``minimumSeverity``,
  checked at send time (a channel's ``accepts``): a send that does not pass
  writes no outbox row for the route.
* :class:`RecipientMatcher`: ``entityRefs``, checked at delivery time. The
  refs are resolved through the user directory (the catalog) exactly as a send's
  ``recipients: {type: entity, entityRef: [...]}`` would be (a user is
  itself, a group is its members and its child groups' members), and a
  delivery's recipients are narrowed to those users.
* :func:`classify`: what the outbox does with an HTTP answer: 2xx ``sent``;
  408, 429 and 5xx ``retry`` (after ``Retry-After`` when given, capped at
  ``maxRetryAfter``); timeouts and connection errors ``retry``; anything else
  (3xx: redirects are not followed; 4xx) ``failed`` at once.
* :class:`JsonPoster`: one POST over a shared connection pool that never
  raises for HTTP or network trouble.

Error texts become a delivery's ``lastError``, which its recipients can read:
they name the status or the kind of failure, never the URL (it may hold a
token) or the response body.
"""

from __future__ import annotations

import hashlib
import math
import re
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Annotated, Any, ClassVar, TypeVar

import httpx
from cachetools import TTLCache
from pydantic import AfterValidator, BaseModel, Field, ValidationError, field_validator, model_validator

from host import Config, ConfigError, ConfigSection, UserDirectory
from host import Duration as AnyDuration
from plugin_notifications.delivery import DeliveryOutcome
from plugin_notifications.models import Notification, Severity, severities_at_least

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
#: Statuses below 500 that are worth retrying.
RETRYABLE_4XX = frozenset({408, 429})


def _positive(value: timedelta) -> timedelta:
    if value <= timedelta(0):
        raise ValueError("must be a positive duration")
    return value


#: A Backstage duration (``{seconds: 5}``, ``PT5S``, ``5s``, milliseconds), positive.
Duration = Annotated[AnyDuration, AfterValidator(_positive)]


def check_http_url(value: str) -> str:
    """``value`` if it is an absolute http(s) URL with a host; raises :class:`ValueError` otherwise."""
    try:
        url = httpx.URL(value)
    except (httpx.InvalidURL, TypeError) as error:
        raise ValueError(f"must be an http(s) URL ({error})") from None
    if url.scheme not in ("http", "https") or not url.host:
        raise ValueError("must be an http(s) URL")
    return value


# -- config ------------------------------------------------------------------------------


class HttpRoute(ConfigSection):
    """One endpoint: where to POST and which notifications it wants (subclasses add their own keys)."""

    #: Channel names are ``<channel_prefix><name>``.
    channel_prefix: ClassVar[str] = ""

    url: str
    name: str | None = None
    origins: tuple[str, ...] | None = None
    topics: tuple[str, ...] | None = None
    minimum_severity: Severity | None = None
    entity_refs: tuple[str, ...] | None = None
    timeout: Duration | None = None

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        return check_http_url(value)

    @field_validator("name")
    @classmethod
    def _valid_name(cls, value: str | None) -> str | None:
        if value is not None and not _NAME.match(value):
            raise ValueError("must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit")
        return value

    @field_validator("minimum_severity", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value

    @property
    def channel(self) -> str:
        """The outbox channel: the prefix and the name, by default 12 hex digits of the URL's SHA-256.

        Derived from the URL rather than the position, so reordering routes keeps
        their pending deliveries; the URL itself (which may hold a token) is never shown.
        """
        name = self.name or hashlib.sha256(self.url.encode()).hexdigest()[:12]
        return self.channel_prefix + name


class HttpChannelSettings(ConfigSection):
    """How a module's routes are called; subclasses name their list of routes in :meth:`http_routes`."""

    timeout: Duration = timedelta(seconds=10)
    concurrency: int = Field(default=8, ge=1, le=256)
    batch_size: int = Field(default=20, ge=1, le=1000)
    max_retry_after: Duration = timedelta(hours=1)
    entity_refs_cache_ttl: Duration = timedelta(minutes=1)

    def http_routes(self) -> Sequence[HttpRoute]:
        """Every configured route."""
        return ()

    @model_validator(mode="after")
    def _unique_channels(self) -> HttpChannelSettings:
        seen: set[str] = set()
        for route in self.http_routes():
            if route.channel in seen:
                raise ValueError(f"two routes share the channel name {route.channel}; give them distinct names")
            seen.add(route.channel)
        return self

    def timeout_for(self, route: HttpRoute) -> float:
        """The request timeout of ``route`` in seconds."""
        return (route.timeout or self.timeout).total_seconds()

    def longest_batch_seconds(self, routes: Sequence[HttpRoute] | None = None) -> float:
        """How long one dispatcher call can take at worst: every request of a full batch timing out."""
        routes = self.http_routes() if routes is None else routes
        rounds = -(-self.batch_size // self.concurrency)
        return rounds * max((self.timeout_for(route) for route in routes), default=self.timeout.total_seconds())


Section = TypeVar("Section", bound=BaseModel)


def read_section(config: Config, key: str, model: type[Section]) -> Section | None:
    """Validate the config section at ``key`` into ``model``; ``None`` when absent.

    Raises :class:`ConfigError` naming each bad key (never the rejected value: it may be a secret).
    """
    if not config.has(key):
        return None
    try:
        return model.model_validate(config.get(key))
    except ValidationError as error:
        raise ConfigError(describe_config_error(key, error)) from None


def describe_config_error(key: str, error: ValidationError) -> str:
    """One line per problem, each naming the full config key below ``key``."""
    lines = []
    for problem in error.errors(include_input=False, include_url=False):
        where = key + "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in problem["loc"])
        message = str(problem["msg"]).removeprefix("Value error, ")
        lines.append(f"Invalid config at '{where}': {message}")
    return "; ".join(lines)


def warn_if_batches_outlast_lease(settings: HttpChannelSettings, config: Config, logger: Any) -> None:
    """Warn when a full batch can outlive the outbox lease (its outcomes would be recorded late: a repeat)."""
    from plugin_notifications.outbox import DeliveryConfig

    lease = DeliveryConfig.from_config(config).lease_seconds
    longest = settings.longest_batch_seconds()
    if longest >= lease:
        logger.warning(
            "A batch of deliveries can outlast the outbox lease; lower timeout or batchSize, raise concurrency "
            "or notifications.delivery.leaseSeconds",
            longest_batch_seconds=longest,
            lease_seconds=lease,
        )


# -- filters -----------------------------------------------------------------------------


class RouteFilter:
    """The send-time filters of one route: origins, topics, minimum severity."""

    def __init__(self, route: HttpRoute) -> None:
        self._origins = frozenset(route.origins) if route.origins is not None else None
        self._topics = frozenset(route.topics) if route.topics is not None else None
        self._severities = frozenset(severities_at_least(route.minimum_severity)) if route.minimum_severity else None

    def accepts(self, notification: Notification) -> bool:
        """Whether ``notification`` passes every filter set (an unset filter passes everything).

        A ``topics`` filter never passes a notification without a topic.
        """
        payload = notification.payload
        if self._origins is not None and notification.origin not in self._origins:
            return False
        if self._topics is not None and payload.topic not in self._topics:
            return False
        return self._severities is None or payload.severity in self._severities


#: Routes whose resolved users one matcher remembers.
_MATCHER_CACHE_SIZE = 4096


class RecipientMatcher:
    """Narrows a delivery's recipients to the users a route's ``entityRefs`` resolve to.

    Resolutions are cached per route for ``ttl`` seconds, so a dispatcher
    batch costs at most one catalog query per route.
    """

    def __init__(self, catalog: UserDirectory, ttl: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._catalog = catalog
        self._cache: TTLCache[str, frozenset[str]] = TTLCache(maxsize=_MATCHER_CACHE_SIZE, ttl=ttl, timer=clock)

    async def recipients(self, route: HttpRoute, recipients: tuple[str, ...]) -> tuple[str, ...]:
        """``recipients`` that the route wants, in order (all of them without ``entityRefs``)."""
        if route.entity_refs is None:
            return recipients
        wanted = await self._users(route)
        return tuple(ref for ref in recipients if ref.lower() in wanted)

    async def _users(self, route: HttpRoute) -> frozenset[str]:
        hit = self._cache.get(route.channel)
        if hit is not None:
            return hit
        users = await self._catalog.resolve_users(list(route.entity_refs or ()), [])
        resolved = frozenset(ref.lower() for ref in users)
        self._cache[route.channel] = resolved
        return resolved


# -- HTTP --------------------------------------------------------------------------------


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


class JsonPoster:
    """Posts JSON bodies over one shared connection pool (httpx), never following redirects."""

    def __init__(
        self, *, user_agent: str, max_retry_after: float, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self._max_retry_after = max_retry_after
        self._http = httpx.AsyncClient(
            follow_redirects=False,
            headers={"user-agent": user_agent},
            transport=transport,
            trust_env=False,  # no proxy or netrc from the environment: the endpoint is what is configured
        )

    async def post(
        self, url: str, body: bytes, headers: dict[str, str] | None = None, *, timeout_seconds: float
    ) -> DeliveryOutcome:
        """POST ``body`` to ``url`` once; return the outcome (never raises for HTTP or network trouble)."""
        try:
            async with self._http.stream(
                "POST",
                url,
                content=body,
                headers={"content-type": "application/json", **(headers or {})},
                timeout=httpx.Timeout(timeout_seconds),
            ) as response:  # the response body is not read: only the status and headers matter
                return classify(response, max_retry_after=self._max_retry_after)
        except httpx.TimeoutException:
            return DeliveryOutcome.retry(f"timed out after {timeout_seconds:g} s")
        except httpx.TransportError as error:
            return DeliveryOutcome.retry(f"connection failed ({type(error).__name__})")
        except httpx.InvalidURL:
            return DeliveryOutcome.failed("invalid URL")

    async def close(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()
