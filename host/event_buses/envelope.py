"""The wire form of an event travelling between processes.

Every bus sends the same JSON envelope::

    {"o": "<origin process id>", "t": "<topic>", "p": <payload>, "m": {<metadata>}}

Payloads published together on one topic (``publish_many``) travel as one
envelope ``{"o": ..., "t": <topic>, "ps": [<payload>, ...]}``; receivers
still read the older batch form ``{"o": ..., "b": [{"t": ..., "p": ..., "m": ...}, ...]}``.

``o`` lets a process drop its own events: :class:`host.events.RootEventsService`
has already delivered them locally before handing them to the bus. A bus that
must send a payload out of band (PostgreSQL ``NOTIFY`` is limited to 8000
bytes) sends ``{"o": ..., "r": <reference>}`` instead and resolves the
reference on receipt.
"""

from __future__ import annotations

from typing import Any

import orjson

from host.events import Event, EventBatch


def encode_event(origin: str, event: Event) -> bytes:
    """Serialise ``event`` published by ``origin``; raises ``TypeError`` for non-JSON payloads."""
    envelope: dict[str, Any] = {"o": origin, "t": event.topic, "p": event.payload}
    if event.metadata:
        envelope["m"] = event.metadata
    return orjson.dumps(envelope)


def encode_batch(origin: str, batch: EventBatch) -> bytes:
    """Serialise the payloads of ``batch``, published together by ``origin``, as one envelope."""
    return orjson.dumps({"o": origin, "t": batch.topic, "ps": batch.payloads})


def decode(raw: str | bytes) -> dict[str, Any]:
    """Parse an envelope; raises ``ValueError`` when it is not a JSON object with an origin."""
    envelope = orjson.loads(raw)
    if not isinstance(envelope, dict) or not isinstance(envelope.get("o"), str):
        raise ValueError("event envelope must be a JSON object with an origin")
    return envelope


def to_events(envelope: dict[str, Any]) -> list[Event] | EventBatch:
    """What a full envelope carries: one event, a batch, or (the older batch form) a list of events."""
    payloads = envelope.get("ps")
    if isinstance(payloads, list):
        topic = envelope.get("t")
        if not isinstance(topic, str):
            raise ValueError("event envelope has no topic")
        return EventBatch(topic, payloads)
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
