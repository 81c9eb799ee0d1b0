"""The signals WebSocket at ``/api/signals``: handshake authentication and the socket session.

Handshake (Backstage's newest behaviour, plus the status codes observed on a
running Backstage):

* the candidates are the offered ``Sec-WebSocket-Protocol`` values, in order,
  then the ``Authorization: Bearer`` token; at most :data:`MAX_CANDIDATES`
  (Backstage's ``authenticateWebSocket``). The first that authenticates as a
  user or a service wins; if it is an offered sub-protocol the server selects
  (echoes) it, as browsers require, so an unrelated sub-protocol next to a
  bearer token does not stand in the way;
* no token or only invalid ones give HTTP 401 at the upgrade, a token that is
  not a user's (a service token) gives 403.

The rejection is a close before accept with code ``3000 + status``; the host's
plugin router turns it into that HTTP status on the upgrade response.

A subscribe frame with ``"since": "<position>"`` resumes: see
:meth:`plugin_signals.connections.SignalManager.resume`.

After accept, a socket beyond the user's ``signals.limits.maxSocketsPerUser``
is closed with 4429, and a socket is closed with :data:`CLOSE_TOKEN_EXPIRED`
(4401) when the token it was opened with expires: it receives nothing after.

Keepalive pings are protocol-level frames that an ASGI application cannot
send: the server sends them (see :data:`PING_INTERVAL_SECONDS`).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import falcon
import falcon.asgi

from host import AuthenticationError, BackstageError, NotAllowedError, is_database_unavailable
from plugin_signals.connections import CLOSE_TOO_MANY_SOCKETS, Frame, SignalConnection, SignalManager

if TYPE_CHECKING:
    from host import Logger

# The server pings every socket every PING_INTERVAL_SECONDS and drops it after
# PING_TIMEOUT_SECONDS without a pong (two missed pings); see host.worker.
from host import PING_INTERVAL_SECONDS, PING_TIMEOUT_SECONDS, cancel_and_wait  # noqa: F401

#: WebSocket close code before accept that the host turns into an HTTP status: ``3000 + status``.
HTTP_STATUS_CLOSE_BASE = 3000
#: At most this many tokens are tried (offered sub-protocols plus the bearer token), as in Backstage.
MAX_CANDIDATES = 5
#: Close code once the socket's token expired (mirrors HTTP 401).
CLOSE_TOKEN_EXPIRED = 4401


class SignalsWebSocket:
    """Falcon resource for ``/api/signals``: authenticates the upgrade and runs the socket."""

    def __init__(self, manager: SignalManager, auth: Any, user_info: Any, logger: Logger) -> None:
        self._manager = manager
        self._auth = auth
        self._user_info = user_info
        self._logger = logger

    async def on_websocket(self, req: falcon.asgi.Request, ws: falcon.asgi.WebSocket) -> None:
        """Authenticate, accept, then apply client frames until the socket closes."""
        try:
            credentials, protocol = await authenticate_upgrade(self._auth, req, ws)
            if credentials.principal.type != "user":
                await self._reject(req, ws, 403, "non_user_principal")
                return
            info = await self._user_info.get_user_info(credentials)
        except BackstageError as error:
            reason = {401: "invalid_token", 403: "not_allowed"}.get(error.status_code, "upgrade_failed")
            await self._reject(req, ws, error.status_code, reason)
            return
        except Exception as error:
            if is_database_unavailable(error):
                await self._reject(req, ws, 503, "service_unavailable")
                return
            self._logger.error("WebSocket upgrade failed", exc_info=error)
            await self._reject(req, ws, 500, "upgrade_failed")
            return

        await ws.accept(subprotocol=protocol)
        if not self._manager.has_room_for(info.user_entity_ref):
            self._logger.warning(
                "User %s has %s signal sockets open; closing a new one",
                info.user_entity_ref,
                self._manager.limits.max_sockets_per_user,
            )
            await ws.close(CLOSE_TOO_MANY_SOCKETS)
            return

        async def send(frame: Frame) -> None:
            await ws.send_text(frame.text)

        conn = self._manager.add_connection(info.user_entity_ref, info.ownership_entity_refs, send, ws.close)
        loop = asyncio.get_running_loop()
        tasks = [loop.create_task(self._write(conn), name=f"signals-writer-{conn.id}")]
        if credentials.expires_at is not None:
            tasks.append(
                loop.create_task(self._expire(ws, conn, credentials.expires_at), name=f"signals-expiry-{conn.id}")
            )
        try:
            await self._read(ws, conn)
        finally:
            self._manager.remove_connection(conn)
            await cancel_and_wait(*tasks)

    async def _expire(self, ws: falcon.asgi.WebSocket, conn: SignalConnection, expires_at: datetime) -> None:
        """Close the socket when its token expires; it gets no signal after that."""
        await asyncio.sleep(max(0.0, (expires_at - datetime.now(UTC)).total_seconds()))
        self._manager.remove_connection(conn)
        with contextlib.suppress(Exception):  # already closing
            await ws.close(CLOSE_TOKEN_EXPIRED)

    async def _read(self, ws: falcon.asgi.WebSocket, conn: SignalConnection) -> None:
        while True:
            try:
                text = await ws.receive_text()
            except falcon.errors.PayloadTypeError:
                continue  # binary frames are ignored
            except falcon.errors.WebSocketDisconnected:
                return
            resume = self._manager.handle_client_message(conn, text)
            if resume is not None:  # a subscribe with "since": replay before reading on (frames stay in order)
                await self._manager.resume(conn, [resume[0]], resume[1])

    async def _write(self, conn: SignalConnection) -> None:
        try:
            await conn.run_writer()
        except falcon.errors.WebSocketDisconnected:
            return  # the reader sees the disconnect and cleans up
        except Exception as error:
            self._logger.error("Failed to send a signal to connection %s", conn.id, exc_info=error)

    async def _reject(self, req: falcon.asgi.Request, ws: falcon.asgi.WebSocket, status: int, reason: str) -> None:
        self._logger.warning(
            "WebSocket upgrade rejected",
            remoteAddress=req.remote_addr,
            timestamp=datetime.now(UTC).isoformat(),
            reason=reason,
        )
        await ws.close(HTTP_STATUS_CLOSE_BASE + status)


def handshake_candidates(req: falcon.asgi.Request, ws: falcon.asgi.WebSocket) -> tuple[list[str], list[str]]:
    """The offered sub-protocols (trimmed, non-empty) and the tokens to try: those, then the bearer token."""
    protocols = [value.strip() for value in ws.subprotocols if value.strip()]
    match = re.match(r"^Bearer +(\S+)$", req.get_header("Authorization") or "", re.IGNORECASE)
    return protocols, [*protocols, match.group(1)] if match else protocols


async def authenticate_upgrade(
    auth: Any, req: falcon.asgi.Request, ws: falcon.asgi.WebSocket
) -> tuple[Any, str | None]:
    """The credentials of the first candidate that authenticates, and the sub-protocol to select.

    Raises :class:`~host.errors.AuthenticationError` (401) when none does, or a
    :class:`~host.errors.NotAllowedError` (403) when one was refused and none accepted.
    """
    protocols, candidates = handshake_candidates(req, ws)
    if len(candidates) > MAX_CANDIDATES:
        raise AuthenticationError(f"WebSocket authentication accepts at most {MAX_CANDIDATES} candidates")
    denied: BackstageError | None = None
    failed: BackstageError | None = None
    for token in candidates:
        try:
            credentials = await auth.authenticate(token)
        except NotAllowedError as error:
            denied = error
            continue
        except AuthenticationError as error:
            failed = failed or error
            continue
        if credentials.principal.type in ("user", "service"):
            return credentials, token if token in protocols else None
    raise denied or failed or AuthenticationError("Missing or invalid WebSocket credentials")
