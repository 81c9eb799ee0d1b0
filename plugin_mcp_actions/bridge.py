"""Calling an ASGI app from inside a Falcon responder with a body already read, collecting its response."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

#: The ASGI scope key under which the endpoint hands the caller's credentials to the MCP handlers.
CREDENTIALS_SCOPE_KEY = "greenroom.credentials"

#: An ASGI application (``app(scope, receive, send)``).
ASGICallable = Callable[[Any, Any, Any], Awaitable[None]]


async def call_asgi(app: ASGICallable, scope: dict[str, Any], body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
    """Run ``app`` on ``scope`` with ``body`` as the request; answer ``(status, headers, body)``.

    The app's response must be complete (JSON mode, not a stream): after the last body
    chunk the app is told the client disconnected.
    """
    done = asyncio.Event()
    delivered = False
    status = 500
    headers: list[tuple[str, str]] = []
    chunks: list[bytes] = []

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        await done.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = int(message["status"])
            headers.extend(
                (bytes(k).decode("latin-1"), bytes(v).decode("latin-1")) for k, v in message.get("headers", [])
            )
        elif message["type"] == "http.response.body":
            chunks.append(bytes(message.get("body", b"")))
            if not message.get("more_body", False):
                done.set()

    try:
        await app(scope, receive, send)
    finally:
        done.set()
    return status, headers, b"".join(chunks)
