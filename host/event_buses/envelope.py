"""The wire form of an event travelling between processes.

Every bus sends the same JSON envelope::

    {"o": "<origin process id>", "t": "<topic>", "p": <payload>, "m": {<metadata>}}

Many events published together travel as one envelope
``{"o": ..., "b": [{"t": ..., "p": ..., "m": ...}, ...]}``.

``o`` lets a process drop its own events: :class:`host.events.RootEventsService`
has already delivered them locally before handing them to the bus. A bus that
must send a payload out of band (PostgreSQL ``NOTIFY`` is limited to 8000
bytes) sends ``{"o": ..., "r": <reference>}`` instead and resolves the
reference on receipt.
"""

from __future__ import annotations

from typing import Any

import orjson

from host.events import Event


def encode_event(origin: str, event: Event) -> bytes:
    """Serialise ``event`` published by ``origin``; raises ``TypeError`` for non-JSON payloads."""
    envelope: dict[str, Any] = {"o": origin, "t": event.topic, "p": event.payload}
    if event.metadata:
        envelope["m"] = event.metadata
    return orjson.dumps(envelope)


def encode_batch(origin: str, events: list[Event]) -> bytes:
    """Serialise several events published together by ``origin`` as one envelope."""
    items = []
    for event in events:
        item: dict[str, Any] = {"t": event.topic, "p": event.payload}
        if event.metadata:
            item["m"] = event.metadata
        items.append(item)
    return orjson.dumps({"o": origin, "b": items})


def encode_reference(origin: str, reference: int | str) -> bytes:
    """Serialise a pointer to an envelope stored out of band."""
    return orjson.dumps({"o": origin, "r": reference})


def decode(raw: str | bytes) -> dict[str, Any]:
    """Parse an envelope; raises ``ValueError`` when it is not a JSON object with an origin."""
    envelope = orjson.loads(raw)
    if not isinstance(envelope, dict) or not isinstance(envelope.get("o"), str):
        raise ValueError("event envelope must be a JSON object with an origin")
    return envelope


def to_events(envelope: dict[str, Any]) -> list[Event]:
    """The events carried by a full envelope (one, or a batch)."""
    batch = envelope.get("b")
    if isinstance(batch, list):
        return [to_event(item) for item in batch]
    return [to_event(envelope)]


def to_event(envelope: dict[str, Any]) -> Event:
    """Build the :class:`Event` carried by a full envelope."""
    topic = envelope.get("t")
    if not isinstance(topic, str):
        raise ValueError("event envelope has no topic")
    metadata = envelope.get("m")
    return Event(topic, envelope.get("p"), dict(metadata) if isinstance(metadata, dict) else {})
