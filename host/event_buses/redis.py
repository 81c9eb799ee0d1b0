"""Redis pub/sub event bus (``events.bus: redis``, ``events.redis.url``).

Each process subscribes to one channel (``greenroom:events`` by default) on a
dedicated connection and publishes on a pooled client. A lost subscription is
re-established with back-off; events published meanwhile are not replayed
(at-most-once, like the other buses). Redis has no payload limit that
matters here, so every envelope travels inline.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from host.aio import cancel_and_wait
from host.event_buses.base import EnvelopePublisher, InboundDispatcher, reconnect
from host.events import Delivery

if TYPE_CHECKING:
    from host.logging import Logger

DEFAULT_CHANNEL = "greenroom:events"
_CONNECTION_ERRORS = (RedisError, OSError, asyncio.TimeoutError)


class RedisBus(EnvelopePublisher):
    """Carries events between processes through Redis ``PUBLISH``/``SUBSCRIBE``."""

    name = "redis"
    #: What :meth:`start` raises when the server cannot be reached, beyond the standard connection errors.
    connection_errors: tuple[type[BaseException], ...] = (RedisError,)

    def __init__(
        self,
        url: str,
        logger: Logger,
        *,
        channel: str = DEFAULT_CHANNEL,
        keepalive_interval: float = 30.0,
    ) -> None:
        self._url = url
        self._logger = logger
        self.channel = channel
        self._keepalive_interval = keepalive_interval
        self._dispatcher = InboundDispatcher(self.name, logger)
        self._client: aioredis.Redis | None = None
        self._subscriber: aioredis.Redis | None = None
        self._pubsub: Any = None
        self._reader: asyncio.Task[None] | None = None

    @property
    def origin(self) -> str:
        """The id this process puts on the events it publishes."""
        return self._dispatcher.origin

    async def start(self, deliver: Delivery) -> None:
        """Connect and subscribe; raises if Redis is unreachable."""
        self._dispatcher.start(deliver)
        self._client = aioredis.Redis.from_url(self._url)
        # A separate client without a read timeout: its connection blocks waiting for messages.
        self._subscriber = aioredis.Redis.from_url(
            self._url, socket_timeout=None, client_name=f"greenroom-events-{self.origin[:12]}"
        )
        await self._subscribe()
        self._reader = asyncio.get_running_loop().create_task(self._read_forever(), name="redis-bus-reader")

    async def _send(self, envelope: bytes, topic: str) -> None:
        if self._client is None:
            raise RuntimeError("RedisBus.publish called before start")
        try:
            await self._client.publish(self.channel, envelope)
        except _CONNECTION_ERRORS as error:
            self._logger.error('Failed to publish event on topic "%s" to the redis bus', topic, exc_info=error)

    async def stop(self) -> None:
        """Unsubscribe and close the connections."""
        await cancel_and_wait(self._reader)
        self._reader = None
        await self._close_pubsub()
        await self._dispatcher.stop()
        for client in (self._client, self._subscriber):
            if client is not None:
                with contextlib.suppress(*_CONNECTION_ERRORS):
                    await client.aclose()
        self._client = self._subscriber = None

    async def _subscribe(self) -> None:
        assert self._subscriber is not None
        pubsub = self._subscriber.pubsub()
        try:
            await pubsub.subscribe(self.channel)
        except BaseException:
            with contextlib.suppress(*_CONNECTION_ERRORS):
                await pubsub.aclose()  # type: ignore[no-untyped-call, unused-ignore]
            raise
        self._pubsub = pubsub

    async def _close_pubsub(self) -> None:
        pubsub, self._pubsub = self._pubsub, None
        if pubsub is not None:
            with contextlib.suppress(*_CONNECTION_ERRORS):
                await pubsub.aclose()

    async def _read_forever(self) -> None:
        """Read messages; ping when idle; resubscribe with back-off when the connection drops."""
        while True:
            try:
                if self._pubsub is None:
                    await reconnect(self._subscribe, _CONNECTION_ERRORS, self._failed_to_resubscribe)
                    self._logger.info("Redis events subscription re-established")
                assert self._pubsub is not None
                message = await self._pubsub.get_message(timeout=self._keepalive_interval)
                if message is None:
                    await self._pubsub.ping()
                elif message.get("type") == "message":
                    self._dispatcher.push(message["data"])
            except _CONNECTION_ERRORS as error:
                self._logger.warning("Redis events subscription lost; reconnecting", exc_info=error)
                await self._close_pubsub()

    def _failed_to_resubscribe(self, error: BaseException | None) -> None:
        self._logger.warning("Redis events subscription failed to re-establish", exc_info=error)
