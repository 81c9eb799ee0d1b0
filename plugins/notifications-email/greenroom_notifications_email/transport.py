"""Where messages go: SMTP (aiosmtplib) with retries, or the ``stream`` debug transport.

A transport has one coroutine, ``send(message)``; it raises when the message
could not be delivered after its retries.
"""

from __future__ import annotations

from email.message import EmailMessage
from typing import Any, Protocol

import aiosmtplib
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential

from greenroom_notifications_email.settings import RetrySettings, SmtpSettings, StreamSettings


class Transport(Protocol):
    """Delivers one message or raises."""

    async def send(self, message: EmailMessage) -> None:  # pragma: no cover - protocol
        """Deliver ``message`` to its ``To`` address."""


def is_transient(error: BaseException) -> bool:
    """Whether sending again may help: network trouble and 4xx replies, not 5xx (permanent) ones."""
    if isinstance(error, aiosmtplib.SMTPRecipientsRefused):
        return all(400 <= refusal.code < 500 for refusal in error.recipients)
    if isinstance(error, aiosmtplib.SMTPResponseException):
        return 400 <= error.code < 500
    return isinstance(error, (aiosmtplib.SMTPException, OSError, TimeoutError))


class SmtpTransport:
    """Sends each message on its own SMTP connection, retrying transient failures with backoff."""

    def __init__(self, settings: SmtpSettings, retry: RetrySettings) -> None:
        self._settings = settings
        self._retry = retry

    async def send(self, message: EmailMessage) -> None:  # noqa: D102
        settings = self._settings
        async for attempt in AsyncRetrying(
            stop=stop_after_attempt(self._retry.attempts),
            wait=wait_exponential(
                multiplier=self._retry.initial_delay.total_seconds(),
                max=self._retry.max_delay.total_seconds(),
            ),
            retry=retry_if_exception(is_transient),
            reraise=True,
        ):
            with attempt:
                await aiosmtplib.send(
                    message,
                    hostname=settings.hostname,
                    port=settings.port,
                    username=settings.username,
                    password=settings.password,
                    use_tls=settings.secure,
                    # None: upgrade with STARTTLS when offered (as nodemailer does); True: require it.
                    start_tls=True if settings.require_tls else None,
                    timeout=settings.timeout,
                )


class StreamTransport:
    """The ``stream`` transport: logs each message and keeps it in :attr:`sent`; nothing leaves the host."""

    def __init__(self, logger: Any) -> None:
        self._logger = logger
        self.sent: list[EmailMessage] = []

    async def send(self, message: EmailMessage) -> None:  # noqa: D102
        self.sent.append(message)
        self._logger.info(f"Email (stream transport, not sent) to {message['To']}: {message['Subject']}")


def create_transport(settings: SmtpSettings | StreamSettings, retry: RetrySettings, logger: Any) -> Transport:
    """The transport for ``transportConfig``."""
    if isinstance(settings, SmtpSettings):
        return SmtpTransport(settings, retry)
    return StreamTransport(logger)
