"""Event encoding and the one decode path every reader goes through.

Event payloads are JSON-native by design (ids as strings, lists, dicts) except the
``timestamp`` every event carries. ``OrjsonTranscoder`` implements the library's
``Transcoder`` contract, so the library's mapper and recorders read exactly what our asyncpg
store writes (a test proves it).

Reading is one function, ``decode_state``: JSON → dict, then **upcast** to the current
``class_version`` of the event's class (``upcast_v1_v2`` … static methods, as
``eventsourcing`` defines them). The aggregate (``to_domain_event``) and every read model,
the relay, history and SSE (``RecordedEvent.from_row``) are built on it, so a versioned
event is seen in its current shape by all of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import orjson
from eventsourcing.persistence import Mapper, Transcoder

from ledger.domain import EVENT_CLASSES, TOPIC_TYPES
from ledger.errors import UndecodableEvent

MAX_EVENT_BYTES = 16 * 1024


class OrjsonTranscoder(Transcoder):
    """Encodes event state as compact JSON; decodes ``timestamp`` back to a datetime."""

    def encode(self, obj: Any) -> bytes:
        return orjson.dumps(obj)

    def decode(self, data: bytes) -> Any:
        state = orjson.loads(data)
        state["timestamp"] = datetime.fromisoformat(state["timestamp"])
        return state


def make_mapper() -> Mapper[UUID]:
    """The mapper our store uses: the library's own, with the orjson transcoder."""
    return Mapper(transcoder=OrjsonTranscoder())


_CLASSES_BY_TOPIC: dict[str, type[Any]] = {cls.TOPIC: cls for cls in EVENT_CLASSES.values()}


def upcast(cls: type[Any] | None, state: dict[str, Any]) -> dict[str, Any]:
    """Bring a stored state up to ``cls``'s ``class_version`` in place (and drop the
    version marker). Unknown classes (events added by a newer release) pass unchanged."""
    stored = state.pop("class_version", 1)
    current = getattr(cls, "class_version", 1)
    while stored < current:
        getattr(cls, f"upcast_v{stored}_v{stored + 1}")(state)
        stored += 1
    return state


def decode_state(topic: str, state: bytes) -> tuple[type[Any] | None, dict[str, Any]]:
    """The event class of ``topic`` (None when this release does not know it) and the stored
    state as a dict in that class's current shape. ``timestamp`` stays an ISO string.

    Raises ``UndecodableEvent`` when the state is not a JSON object or an upcaster fails.
    """
    cls = _CLASSES_BY_TOPIC.get(topic)
    try:
        data = orjson.loads(state)
        if not isinstance(data, dict):
            raise TypeError(f"state is {type(data).__name__}, not an object")
        return cls, upcast(cls, data)
    except Exception as exc:
        raise UndecodableEvent(f"event {topic} cannot be decoded: {exc}") from exc


def to_domain_event(originator_id: UUID, version: int, topic: str, state: bytes) -> Any:
    """A stored event as the aggregate's event object (for ``Run`` replay)."""
    cls, data = decode_state(topic, state)
    if cls is None:
        raise UndecodableEvent(f"unknown event topic {topic!r}")
    data["timestamp"] = datetime.fromisoformat(data["timestamp"])
    data["originator_id"] = originator_id
    data["originator_version"] = version
    # How the library's own mapper builds events: frozen dataclasses, no __init__ re-run.
    event = object.__new__(cls)
    object.__setattr__(event, "__dict__", data)
    return event


@dataclass(frozen=True, slots=True)
class RecordedEvent:
    """A stored event in its public shape: what followers, the API and Redis see."""

    notification_id: int
    run_id: UUID
    version: int
    type: str
    timestamp: str
    data: dict[str, Any]

    @classmethod
    def from_row(
        cls, notification_id: int, run_id: UUID, version: int, topic: str, state: bytes
    ) -> RecordedEvent:
        """Raises ``UndecodableEvent`` when the state cannot be decoded (see
        ``decode_state``) or lacks its ``timestamp``."""
        _, data = decode_state(topic, state)
        try:
            timestamp = data.pop("timestamp")
        except KeyError:
            raise UndecodableEvent(f"event {topic} has no timestamp") from None
        data.pop("originator_topic", None)
        return cls(notification_id, run_id, version, TOPIC_TYPES.get(topic, topic), timestamp, data)

    @property
    def at(self) -> datetime:
        """``timestamp`` as an aware datetime."""
        return datetime.fromisoformat(self.timestamp)

    def public(self) -> dict[str, Any]:
        """``{run_id, version, type, timestamp, data}`` as the API and SSE present it."""
        return {
            "run_id": str(self.run_id),
            "version": self.version,
            "type": self.type,
            "timestamp": self.timestamp,
            "data": self.data,
        }


@dataclass(frozen=True, slots=True)
class UndecodableRow:
    """A stored event that cannot be decoded, in place of its ``RecordedEvent``: what a
    reader that must survive it (a follower, which parks it) needs to name it."""

    notification_id: int
    run_id: UUID
    version: int
    topic: str
    error: str

    @property
    def type(self) -> str:
        return TOPIC_TYPES.get(self.topic, self.topic)


#: one row of the log as a reader by position sees it
LogEntry = RecordedEvent | UndecodableRow


def decode_row(
    notification_id: int, run_id: UUID, version: int, topic: str, state: bytes
) -> LogEntry:
    """``RecordedEvent.from_row``, or an ``UndecodableRow`` naming why it failed. The log is
    immutable: a reader that stopped at a bad row would stop there forever."""
    try:
        return RecordedEvent.from_row(notification_id, run_id, version, topic, state)
    except UndecodableEvent as exc:
        return UndecodableRow(notification_id, run_id, version, topic, str(exc))


__all__ = [
    "MAX_EVENT_BYTES",
    "LogEntry",
    "OrjsonTranscoder",
    "RecordedEvent",
    "UndecodableRow",
    "decode_row",
    "decode_state",
    "make_mapper",
    "to_domain_event",
    "upcast",
]
