"""Where messages go: a small :class:`Transport` protocol and a registry of transports by name.

Built in (``transportConfig.transport``):

* ``smtp`` - aiosmtplib over a bounded pool of reused connections;
* ``ses`` - Amazon SES v2 ``SendEmail`` with the raw MIME message (boto3, in a thread);
* ``sendmail`` - a local ``sendmail``-compatible binary;
* ``stream`` - logged and kept in memory, never sent (for development).

A transport makes one attempt per message and raises when the message could
not be delivered; :meth:`Transport.is_transient` tells the processor whether
the outbox should try again (``retry``) or give up at once (``failed``).
Retries are the outbox's (``notifications.delivery``). Another transport can
be added with :func:`register_transport` before the host starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any, Protocol

import aiosmtplib

from greenroom_notifications_email.settings import (
    SendmailSettings,
    SesOptions,
    SesSettings,
    SmtpSettings,
    StreamSettings,
    TransportSettings,
)


class Transport(Protocol):
    """Delivers one message or raises."""

    async def send(self, message: EmailMessage) -> None:  # pragma: no cover - protocol
        """Deliver ``message`` to its ``To`` address (one attempt)."""

    def is_transient(self, error: BaseException) -> bool:  # pragma: no cover - protocol
        """Whether sending ``message`` again later may succeed after ``error``."""

    async def close(self) -> None:  # pragma: no cover - protocol
        """Release connections and clients (the host is stopping)."""


#: ``(transport settings, logger, concurrency limit)`` -> a transport.
TransportFactory = Callable[[Any, Any, int], Transport]

_REGISTRY: dict[type, TransportFactory] = {}


def register_transport(settings_type: type, factory: TransportFactory) -> None:
    """Use ``factory`` for transport settings of ``settings_type`` (the built-ins register themselves)."""
    _REGISTRY[settings_type] = factory


def create_transport(settings: TransportSettings, logger: Any, concurrency: int = 1) -> Transport:
    """The transport for ``transportConfig`` (``concurrency``: messages in flight at most)."""
    factory = _REGISTRY.get(type(settings))
    if factory is None:
        raise ValueError(f"No email transport registered for {type(settings).__name__}")
    return factory(settings, logger, concurrency)


def is_transient(error: BaseException) -> bool:
    """SMTP's rule: network trouble and 4xx replies may pass later, 5xx replies (permanent) not."""
    if isinstance(error, aiosmtplib.SMTPRecipientsRefused):
        return all(400 <= refusal.code < 500 for refusal in error.recipients)
    if isinstance(error, aiosmtplib.SMTPResponseException):
        return 400 <= error.code < 500
    return isinstance(error, (aiosmtplib.SMTPException, OSError, TimeoutError))


# -- SMTP ----------------------------------------------------------------------------


@dataclass
class _Connection:
    client: aiosmtplib.SMTP
    sent: int = 0
    idle_since: float = field(default_factory=time.monotonic)


class SmtpTransport:
    """SMTP over at most ``concurrency`` connections, each reused for up to ``maxMessages`` messages.

    A connection idle for longer than ``idleTimeout`` is closed (by a reaper
    task, or when it is next taken). A message that fails on a *reused*
    connection because the server dropped it is sent once more on a fresh
    connection; every other failure is the caller's to classify.
    """

    def __init__(self, settings: SmtpSettings, logger: Any = None, concurrency: int = 1) -> None:
        self._settings = settings
        self._logger = logger
        self._slots = asyncio.Semaphore(max(1, concurrency))
        self._idle: list[_Connection] = []
        self._reaper: asyncio.Task[None] | None = None
        self._closing: set[asyncio.Task[None]] = set()  # QUITs under way (referenced until done)
        #: connections opened so far (for tests and the benchmark)
        self.connections_opened = 0

    def is_transient(self, error: BaseException) -> bool:
        """Network trouble and 4xx replies: yes; 5xx replies: no."""
        return is_transient(error)

    async def send(self, message: EmailMessage) -> None:
        """Send over an idle connection (or a new one within the limit)."""
        async with self._slots:
            connection = self._take_idle()
            if connection is None:
                connection = await self._connect()
            elif not await self._send_on(connection, message, reused=True):
                connection = await self._connect()  # the server had dropped it: once more, fresh
            else:
                self._give_back(connection)
                return
            await self._send_on(connection, message, reused=False)
            self._give_back(connection)

    async def _send_on(self, connection: _Connection, message: EmailMessage, *, reused: bool) -> bool:
        """Send on ``connection``; ``False`` if it was a stale reused connection (closed, nothing sent)."""
        try:
            await connection.client.send_message(message, timeout=self._settings.timeout)
        except (aiosmtplib.SMTPServerDisconnected, ConnectionError) as error:
            await self._discard(connection)
            if reused:
                self._debug(f"Reconnecting to the SMTP server after {type(error).__name__}")
                return False
            raise
        except BaseException:
            if not connection.client.is_connected:
                await self._discard(connection)
            else:
                self._give_back(connection)
            raise
        connection.sent += 1
        return True

    def _take_idle(self) -> _Connection | None:
        now = time.monotonic()
        while self._idle:
            connection = self._idle.pop()
            if connection.client.is_connected and now - connection.idle_since < self._settings.idle_timeout:
                return connection
            self._close_soon(connection)
        return None

    def _give_back(self, connection: _Connection) -> None:
        """Keep ``connection`` for the next message, or close it after ``maxMessages``."""
        if connection.sent >= self._settings.max_messages or not connection.client.is_connected:
            self._close_soon(connection)
            return
        if connection not in self._idle:
            connection.idle_since = time.monotonic()
            self._idle.append(connection)
            if self._reaper is None or self._reaper.done():
                self._reaper = asyncio.get_running_loop().create_task(self._reap())

    async def _connect(self) -> _Connection:
        settings = self._settings
        client = aiosmtplib.SMTP(
            hostname=settings.hostname,
            port=settings.port,
            username=settings.username,
            password=settings.password,
            use_tls=settings.secure,
            # None: upgrade with STARTTLS when offered (as nodemailer does); True: require it.
            start_tls=True if settings.require_tls else None,
            timeout=settings.timeout,
        )
        await client.connect()
        self.connections_opened += 1
        return _Connection(client)

    async def _reap(self) -> None:
        """Close connections that stayed idle for ``idleTimeout``; ends when none is idle."""
        while self._idle:
            await asyncio.sleep(self._settings.idle_timeout)
            now = time.monotonic()
            expired = [c for c in self._idle if now - c.idle_since >= self._settings.idle_timeout]
            for connection in expired:
                self._idle.remove(connection)
                await self._quit(connection)

    def _close_soon(self, connection: _Connection) -> None:
        task = asyncio.get_running_loop().create_task(self._quit(connection))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def _quit(self, connection: _Connection) -> None:
        with contextlib.suppress(Exception):
            if connection.client.is_connected:
                await connection.client.quit(timeout=5)
        await self._discard(connection)

    async def _discard(self, connection: _Connection) -> None:
        with contextlib.suppress(ValueError):
            self._idle.remove(connection)
        connection.client.close()

    async def close(self) -> None:
        """QUIT every idle connection and stop the reaper."""
        if self._reaper is not None:
            self._reaper.cancel()
        idle, self._idle = self._idle, []
        await asyncio.gather(*(self._quit(c) for c in idle), *self._closing, return_exceptions=True)

    def _debug(self, message: str) -> None:
        if self._logger is not None:
            self._logger.debug(message)


# -- SES -------------------------------------------------------------------------------

#: SES error codes worth another attempt (everything else in 4xx is permanent).
_SES_TRANSIENT_CODES = frozenset(
    {"Throttling", "ThrottlingException", "TooManyRequestsException", "LimitExceededException",
     "ServiceUnavailable", "InternalFailure", "RequestTimeout", "RequestTimeoutException"}
)  # fmt: skip


class SesTransport:
    """Amazon SES v2 ``SendEmail`` with ``Content.Raw`` (the same MIME message SMTP would carry).

    Credentials come from boto3's default chain (environment, shared files,
    container or instance roles). boto3 is blocking, so each call runs in a
    worker thread; at most ``concurrency`` at once (the processor's limit).
    botocore's own retries are off: the outbox retries.
    """

    def __init__(self, settings: SesSettings, options: SesOptions, logger: Any = None, concurrency: int = 1) -> None:
        import boto3
        from botocore.config import Config as BotoConfig

        self._settings = settings
        self._options = options
        self._logger = logger
        self.client = boto3.session.Session().client(
            "sesv2",
            region_name=settings.region,
            endpoint_url=settings.endpoint,
            config=BotoConfig(
                retries={"total_max_attempts": 1},
                connect_timeout=settings.timeout,
                read_timeout=settings.timeout,
                max_pool_connections=max(10, concurrency),
            ),
        )

    def request(self, message: EmailMessage) -> dict[str, Any]:
        """The ``SendEmail`` parameters for ``message``."""
        params: dict[str, Any] = {
            "FromEmailAddress": str(message["From"]),
            "Destination": {"ToAddresses": [str(message["To"])]},
            "Content": {"Raw": {"Data": message.as_bytes()}},
        }
        if self._options.from_arn:
            params["FromEmailAddressIdentityArn"] = self._options.from_arn
        if self._options.configuration_set_name:
            params["ConfigurationSetName"] = self._options.configuration_set_name
        return params

    async def send(self, message: EmailMessage) -> None:
        """One ``SendEmail`` call in a worker thread."""
        params = self.request(message)
        await asyncio.to_thread(lambda: self.client.send_email(**params))

    def is_transient(self, error: BaseException) -> bool:
        """Throttling, 5xx, timeouts and connection errors: yes; other SES errors (``MessageRejected``...): no."""
        from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

        if isinstance(error, ClientError):
            code = str(error.response.get("Error", {}).get("Code", ""))
            status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
            return code in _SES_TRANSIENT_CODES or status >= 500 or status == 429
        # connection and read timeouts, endpoint unreachable, credentials not (yet) available
        return isinstance(error, (BotoCoreError, NoCredentialsError, OSError, TimeoutError))

    async def close(self) -> None:
        """Close the client's HTTP connection pool."""
        with contextlib.suppress(Exception):
            self.client.close()


# -- sendmail ---------------------------------------------------------------------------

#: sysexits.h EX_TEMPFAIL: the local MTA asks to try again later.
_EX_TEMPFAIL = 75


class SendmailError(Exception):
    """The sendmail binary exited with a failure status."""

    def __init__(self, status: int, stderr: str) -> None:
        super().__init__(f"sendmail exited with status {status}: {stderr.strip()[:200]}")
        self.status = status


class SendmailTransport:
    """Pipes each message to ``path -i -f <sender> -- <recipient>`` (Backstage's ``sendmail`` transport)."""

    def __init__(self, settings: SendmailSettings, logger: Any = None, concurrency: int = 1) -> None:
        self._settings = settings
        self._slots = asyncio.Semaphore(max(1, concurrency))

    async def send(self, message: EmailMessage) -> None:
        """Run the binary once; a non-zero exit raises :class:`SendmailError`."""
        data = message.as_bytes()
        if self._settings.newline == "windows":
            data = data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        else:
            data = data.replace(b"\r\n", b"\n")
        sender = str(message["From"])
        recipient = str(message["To"])
        async with self._slots:
            process = await asyncio.create_subprocess_exec(
                self._settings.path, "-i", "-f", sender, "--", recipient,
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
            )  # fmt: skip
            try:
                _, stderr = await asyncio.wait_for(process.communicate(data), self._settings.timeout)
            except TimeoutError:
                process.kill()
                await process.wait()
                raise
        if process.returncode != 0:
            raise SendmailError(process.returncode or -1, stderr.decode(errors="replace"))

    def is_transient(self, error: BaseException) -> bool:
        """``EX_TEMPFAIL``, timeouts and a missing/unstartable binary (it may be installed): yes."""
        if isinstance(error, SendmailError):
            return error.status == _EX_TEMPFAIL
        return isinstance(error, (OSError, TimeoutError))

    async def close(self) -> None:
        """Nothing to release."""


# -- stream -----------------------------------------------------------------------------


class StreamTransport:
    """The ``stream`` transport: logs each message and keeps it in :attr:`sent`; nothing leaves the host."""

    def __init__(self, logger: Any) -> None:
        self._logger = logger
        self.sent: list[EmailMessage] = []

    async def send(self, message: EmailMessage) -> None:
        """Keep and log ``message``."""
        self.sent.append(message)
        self._logger.info("Email (stream transport, not sent) to %s: %s", message["To"], message["Subject"])

    def is_transient(self, error: BaseException) -> bool:
        """Nothing fails here."""
        return False

    async def close(self) -> None:
        """Nothing to release."""


register_transport(SmtpSettings, lambda settings, logger, concurrency: SmtpTransport(settings, logger, concurrency))
register_transport(
    SesSettings, lambda settings, logger, concurrency: SesTransport(settings, settings.options, logger, concurrency)
)
register_transport(
    SendmailSettings, lambda settings, logger, concurrency: SendmailTransport(settings, logger, concurrency)
)
register_transport(StreamSettings, lambda settings, logger, concurrency: StreamTransport(logger))
