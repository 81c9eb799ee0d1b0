"""The ``Email`` notification processor: catalog addresses in, one SMTP message per address out.

It is a durable processor (:mod:`plugin_notifications.delivery`): it
declares the channel ``Email`` and delivers the outbox's batches in
``notifications_deliver``, so an email is written to the outbox in the
send's transaction and survives a worker's death. Each delivery answers
``sent``, ``retry`` (network trouble, SMTP 4xx: the outbox backs off and
tries again up to ``notifications.delivery.maxAttempts``), ``failed`` (SMTP
5xx, an invalid address: dead at once) or ``skipped`` (no address, or none
that the allow and deny lists let through). Messages carry a
``Message-ID`` derived from the delivery id, the same on every attempt, so
a repeat after a crash can be recognised.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable
from email.message import EmailMessage
from typing import Any

from greenroom_notifications_email.digest import digest_content
from greenroom_notifications_email.settings import EmailSettings, is_valid_address
from greenroom_notifications_email.templates import EmailContent, EmailTemplates
from greenroom_notifications_email.transport import Transport, create_transport
from host import UserDirectory
from plugin_notifications import Notification, ProcessorFilters, hookimpl
from plugin_notifications.delivery import Delivery, DeliveryChannel, DeliveryOutcome, Digest

PROCESSOR_NAME = "Email"
#: Deliveries per ``notifications_deliver`` call (``concurrencyLimit`` bounds the messages in flight).
BATCH_SIZE = 100


def is_single_address(value: str) -> bool:
    """Whether ``value`` is one well-formed address such as ``jane@example.com``."""
    return is_valid_address(value)


def screen_addresses(
    addresses: Iterable[str],
    *,
    allowlist: Iterable[str] | None,
    allowed_domains: Iterable[str] | None,
    denylist: Iterable[str] = (),
) -> list[str]:
    """The addresses email may go to, in Backstage's order (all comparisons case-insensitive).

    1. an address on the allowlist passes, even outside ``allowed_domains``;
    2. with ``allowed_domains`` set, any other address passes only in one of those domains;
    3. without domains, a set allowlist lets nothing else pass (closed mode); unset, everything passes;
    4. the denylist then removes addresses, even allowlisted ones.
    """
    allow = set(allowlist) if allowlist is not None else None
    domains = set(allowed_domains) if allowed_domains is not None else None
    deny = set(denylist)
    kept: list[str] = []
    for address in addresses:
        normalized = address.strip().lower()
        if allow is not None and normalized in allow:
            passed = True
        elif domains is not None:
            passed = normalized.rpartition("@")[2] in domains
        else:
            passed = allow is None
        if passed and normalized not in deny:
            kept.append(address)
    return kept


class TtlCache:
    """A small in-process cache whose entries expire ``ttl`` seconds after they were stored."""

    def __init__(self, ttl: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl = ttl
        self._clock = clock
        self._entries: dict[str, tuple[float, Any]] = {}

    async def get_or_load(self, key: str, load: Callable[[], Awaitable[Any]]) -> Any:
        """The cached value of ``key``, or ``await load()`` stored for next time."""
        hit = self._entries.get(key)
        if hit is not None and hit[0] > self._clock():
            return hit[1]
        value = await load()
        self.put(key, value)
        return value

    def has(self, key: str) -> bool:
        """Whether ``key`` holds a value that has not expired."""
        hit = self._entries.get(key)
        return hit is not None and hit[0] > self._clock()

    def put(self, key: str, value: Any) -> None:
        """Store ``value`` under ``key`` for ``ttl`` seconds."""
        self._entries[key] = (self._clock() + self._ttl, value)


def _profile_emails(entity: dict[str, Any] | None) -> list[str]:
    """``[spec.profile.email]`` of a user entity, or ``[]``."""
    spec = (entity or {}).get("spec") or {}
    email = (spec.get("profile") or {}).get("email")
    return [email] if isinstance(email, str) and email else []


class EmailProcessor:
    """Sends notifications by email (Backstage's ``NotificationsEmailProcessor``)."""

    def __init__(
        self,
        settings: EmailSettings,
        *,
        catalog: UserDirectory,
        logger: Any,
        base_url: str,
        templates: EmailTemplates | None = None,
        transport_factory: Callable[..., Transport] = create_transport,
    ) -> None:
        self._settings = settings
        self._catalog = catalog
        self._logger = logger
        self._base_url = base_url
        self._templates = templates or EmailTemplates()
        self._transport_factory = transport_factory
        self._transport: Transport | None = None
        self._filters = ProcessorFilters.model_validate(settings.filters)  # invalid severities fail startup
        self._slots = asyncio.Semaphore(settings.concurrency_limit)
        self._cache = TtlCache(settings.cache_ttl.total_seconds())

    async def close(self) -> None:
        """Close the transport's connections (the host is stopping)."""
        if self._transport is not None:
            await self._transport.close()

    # -- hooks -----------------------------------------------------------------

    @hookimpl
    def notifications_processor_name(self) -> str:
        """``Email``: also the settings channel users switch on and off."""
        return PROCESSOR_NAME

    @hookimpl
    def notifications_processor_filters(self) -> ProcessorFilters:
        """``notifications.processors.email.filter``."""
        return self._filters

    @hookimpl
    def notifications_delivery_channels(self) -> list[DeliveryChannel]:
        """One durable channel, ``Email``, one delivery per recipient (or per broadcast)."""
        return [DeliveryChannel(PROCESSOR_NAME, scope="recipient", batch_size=BATCH_SIZE)]

    @hookimpl
    async def notifications_deliver(self, deliveries: list[Delivery]) -> dict[str, DeliveryOutcome]:
        """Email each delivery's user (or the broadcast receivers); one outcome per delivery."""
        users = [delivery.notification.user for delivery in deliveries if delivery.notification.user]
        if users:
            try:
                await self.prefetch_user_emails(users)
            except Exception as error:  # noqa: BLE001 - each delivery then looks its user up (and retries)
                self._logger.warning("Could not look up email addresses in bulk: %s", error)
        outcomes = await asyncio.gather(*(self.deliver(delivery) for delivery in deliveries))
        return {delivery.id: outcome for delivery, outcome in zip(deliveries, outcomes, strict=True)}

    async def deliver(self, delivery: Delivery) -> DeliveryOutcome:
        """Send one delivery's messages; classify the first failure."""
        notification = delivery.notification
        try:
            found = await self._found_emails(notification)
        except Exception as error:  # noqa: BLE001 - the catalog is down: try again later
            return DeliveryOutcome.retry(f"Could not look up email addresses: {error}")
        valid, invalid = self._validate(found)
        emails = self._screen(valid)
        if not emails:
            if invalid and not valid:  # never sendable: dead now instead of retried
                return DeliveryOutcome.failed(f"{len(invalid)} invalid email address(es), nothing sent")
            self._logger.info("No email recipients found for notification: %s, skipping", notification.id)
            return DeliveryOutcome.skipped("no email address" if not valid else "no allowed email address")
        content = await self._templates.render(notification, self._base_url, self._settings.description_format)
        return await self._send_all(emails, content, delivery.id)

    @hookimpl
    async def notifications_deliver_digest(self, digests: list[Digest]) -> dict[str, DeliveryOutcome]:
        """One summary email per digest (a user's held notifications); its outcome covers all of them."""
        outcomes = await asyncio.gather(*(self.deliver_digest(digest) for digest in digests))
        return {digest.id: outcome for digest, outcome in zip(digests, outcomes, strict=True)}

    async def deliver_digest(self, digest: Digest) -> DeliveryOutcome:
        """Email the digest's user one message listing every notification in it."""
        try:
            valid, _invalid = self._validate(await self._user_emails(digest.user))
        except Exception as error:  # noqa: BLE001 - the catalog is down: try again later
            return DeliveryOutcome.retry(f"Could not look up email addresses: {error}")
        emails = self._screen(valid)
        if not emails:
            return DeliveryOutcome.skipped("no email address" if not valid else "no allowed email address")
        content = digest_content([delivery.notification for delivery in digest.deliveries], self._base_url)
        return await self._send_all(emails, content, digest.id)

    async def _send_all(self, emails: list[str], content: EmailContent, key: str) -> DeliveryOutcome:
        """Send ``content`` to each address; ``sent``, or the first failures classified."""
        results = await asyncio.gather(
            *(self._send(address, content, f"{key}.{index}") for index, address in enumerate(emails)),
            return_exceptions=True,
        )
        errors = [result for result in results if isinstance(result, BaseException)]
        if not errors:
            return DeliveryOutcome.sent()
        message = "; ".join(f"{type(error).__name__}: {error}" for error in errors[:3])
        if any(self._get_transport().is_transient(error) for error in errors):
            return DeliveryOutcome.retry(message)
        return DeliveryOutcome.failed(message)

    # -- recipients ------------------------------------------------------------

    async def recipient_emails(self, notification: Notification) -> list[str]:
        """The addresses ``notification`` is emailed to: valid, then allowed (see :func:`screen_addresses`)."""
        valid, _invalid = self._validate(await self._found_emails(notification))
        return self._screen(valid)

    async def _found_emails(self, notification: Notification) -> list[str]:
        if notification.user is None:
            return await self._broadcast_emails()
        return await self._user_emails(notification.user)

    async def _broadcast_emails(self) -> list[str]:
        receiver = self._settings.broadcast_receiver
        if receiver == "config":
            return list(self._settings.broadcast_emails)
        if receiver == "users":
            emails: list[str] = await self._cache.get_or_load("user-emails:all", self._all_user_emails)
            return emails
        return []  # no broadcastConfig, or receiver: none

    async def _all_user_emails(self) -> list[str]:
        return [email for _ref, email in await self._catalog.list_users_with_email()]

    async def prefetch_user_emails(self, user_refs: Iterable[str]) -> None:
        """Look up the addresses of the uncached users among ``user_refs`` in one catalog call."""
        missing = [ref for ref in dict.fromkeys(user_refs) if not self._cache.has(f"user-emails:{ref}")]
        if not missing:
            return
        entities = await self._catalog.get_entities_by_refs(missing)
        for ref, entity in zip(missing, entities, strict=True):
            self._cache.put(f"user-emails:{ref}", _profile_emails(entity))

    async def _user_emails(self, user_ref: str) -> list[str]:
        async def load() -> list[str]:
            return _profile_emails(await self._catalog.get_entity_by_ref(user_ref))

        emails: list[str] = await self._cache.get_or_load(f"user-emails:{user_ref}", load)
        return emails

    def _validate(self, emails: Iterable[str]) -> tuple[list[str], list[str]]:
        """``(valid, invalid)`` addresses, trimmed and without repeats; invalid ones are logged."""
        valid: list[str] = []
        invalid: list[str] = []
        for email in dict.fromkeys(e.strip() for e in emails):
            if is_valid_address(email):
                valid.append(email)
            else:
                self._logger.warning("Skipping invalid notification email address for delivery: %r", email)
                invalid.append(email)
        return valid, invalid

    def _screen(self, emails: Iterable[str]) -> list[str]:
        settings = self._settings
        return screen_addresses(
            emails, allowlist=settings.allowlist, allowed_domains=settings.allowed_domains, denylist=settings.denylist
        )

    # -- delivery --------------------------------------------------------------

    def build_message(self, address: str, content: EmailContent, message_key: str | None = None) -> EmailMessage:
        """One message to one address: a text body with an HTML alternative.

        ``message_key`` (the delivery id and address index) becomes the ``Message-ID``.
        """
        message = EmailMessage()
        if message_key:
            domain = self._settings.sender.rpartition("@")[2] or "greenroom"
            message["Message-ID"] = f"<{message_key}@{domain}>"
        message["From"] = self._settings.sender
        message["To"] = address
        if self._settings.reply_to:
            message["Reply-To"] = self._settings.reply_to
        message["Subject"] = " ".join(content.subject.split())  # no header injection through the title
        message.set_content(content.text)
        message.add_alternative(content.html, subtype="html")
        return message

    def _get_transport(self) -> Transport:
        if self._transport is None:  # created lazily, once
            self._transport = self._transport_factory(
                self._settings.transport, self._logger, self._settings.concurrency_limit
            )
        return self._transport

    async def _send(self, address: str, content: EmailContent, message_key: str) -> None:
        """Send one message within the concurrency limit; raise what the transport raised."""
        async with self._slots:
            try:
                await self._get_transport().send(self.build_message(address, content, message_key))
            except Exception as error:
                self._logger.warning("Failed to send email to %s: %s", address, error)
                raise
            finally:
                await asyncio.sleep(self._settings.throttle_interval.total_seconds())
