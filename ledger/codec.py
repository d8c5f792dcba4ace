"""Event encoding: JSON via orjson, pluggable into ``eventsourcing``'s own ``Mapper``.

Event payloads are JSON-native by design (ids as strings, lists, dicts) except the
``timestamp`` every event carries, which this transcoder restores to an aware datetime.
Because it implements the library's ``Transcoder`` contract, the library's mapper and
recorders read exactly what our asyncpg store writes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import orjson
from eventsourcing.persistence import Mapper, Transcoder

from ledger.domain import TOPIC_TYPES

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
        data = orjson.loads(state)
        timestamp = data.pop("timestamp")
        data.pop("originator_topic", None)
        return cls(notification_id, run_id, version, TOPIC_TYPES.get(topic, topic), timestamp, data)

    def public(self) -> dict[str, Any]:
        """``{run_id, version, type, timestamp, data}`` as the API and SSE present it."""
        return {
            "run_id": str(self.run_id),
            "version": self.version,
            "type": self.type,
            "timestamp": self.timestamp,
            "data": self.data,
        }


__all__ = ["MAX_EVENT_BYTES", "OrjsonTranscoder", "RecordedEvent", "make_mapper"]
