"""Where messages go: SMTP (aiosmtplib), or the ``stream`` debug transport.

A transport has one coroutine, ``send(message)``; it makes one attempt and
raises when the message could not be delivered. Retries are the outbox's
(``notifications.delivery``), which :func:`is_transient` informs.
"""

from __future__ import annotations

from email.message import EmailMessage
from typing import Any, Protocol

import aiosmtplib

from greenroom_notifications_email.settings import SmtpSettings, StreamSettings


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
    """Sends each message on its own SMTP connection, once."""

    def __init__(self, settings: SmtpSettings) -> None:
        self._settings = settings

    async def send(self, message: EmailMessage) -> None:
        settings = self._settings
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

    async def send(self, message: EmailMessage) -> None:
        self.sent.append(message)
        self._logger.info(f"Email (stream transport, not sent) to {message['To']}: {message['Subject']}")


def create_transport(settings: SmtpSettings | StreamSettings, logger: Any) -> Transport:
    """The transport for ``transportConfig``."""
    if isinstance(settings, SmtpSettings):
        return SmtpTransport(settings)
    return StreamTransport(logger)
