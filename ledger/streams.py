"""The Redis contract: every key, group and entry shape that runledger keeps in Redis.

Redis only ever holds data derived from the log. The relay (``projections``) writes it; the
worker and the API read it. Writer and readers import the names and the encoders from here,
so the two sides of each entry are one definition:

* ``run_events:{run_id}`` — a run's live stream: entry ``{version}-0`` per event with the
  fields ``type``, ``version``, ``timestamp``, ``data`` (JSON of the event's public data).
* ``runs:queue`` — one job per ``queued`` event, fields ``run_id``, ``test_id``,
  ``attempt``; read by workers through the consumer group ``run-workers``.
* ``runs:dead`` — dead letters: the job's entry id, the reason, delivery count, consumer,
  the job's fields (JSON) and, when known, the run id.
* ``runledger:no-browser:{consumer}`` — a worker process waiting for a browser (expires).
* ``runledger:relay:position`` — the log position Redis is known to hold (the relay's
  marker: a missing or older one means Redis lost data and the relay repairs it).

Pure: no client, no I/O. Malformed entries raise ``MalformedEntry`` naming what is wrong.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

import orjson
from redis import exceptions as rex

from ledger.codec import RecordedEvent
from ledger.errors import LedgerError

QUEUE = "runs:queue"
WORKER_GROUP = "run-workers"
DEAD = "runs:dead"
RELAY_MARKER = "runledger:relay:position"
#: ``{prefix}{consumer}`` = how to install a browser, set (with an expiry, refreshed) by a
#: worker process that has none; ``/health`` reports "no browser" while one exists
NO_BROWSER_PREFIX = "runledger:no-browser:"
STREAM_PREFIX = "run_events:"
#: the status a live stream's reader sees (the event's public type)
EVENT_FIELDS = ("type", "version", "timestamp", "data")
JOB_FIELDS = ("run_id", "test_id", "attempt")
DEAD_LETTER_FIELDS = ("entry_id", "reason", "deliveries", "consumer", "fields", "run_id")


class MalformedEntry(LedgerError):
    """Raised when a Redis entry does not have the shape this contract defines."""


def stream_key(run_id: UUID | str) -> str:
    """The key of a run's live event stream."""
    return f"{STREAM_PREFIX}{run_id}"


def stream_entry_id(version: int) -> str:
    """A run stream's entry id for the event at ``version``: Redis refuses an id that is not
    above the stream's top, which makes re-publishing idempotent."""
    return f"{version}-0"


# -- run event streams ---------------------------------------------------------------------


def encode_event(event: RecordedEvent) -> dict[str, str]:
    """The fields of an event's stream entry."""
    return {
        "type": event.type,
        "version": str(event.version),
        "timestamp": event.timestamp,
        "data": orjson.dumps(event.data).decode(),
    }


def decode_event(run_id: UUID | str, fields: dict[str, str]) -> dict[str, Any]:
    """An entry of ``run_events:{run_id}`` in the public shape the API and SSE present:
    ``{run_id, version, type, timestamp, data}``."""
    try:
        data = orjson.loads(fields["data"])
        if not isinstance(data, dict):
            raise TypeError(f"data is {type(data).__name__}, not an object")
        return {
            "run_id": str(run_id),
            "version": int(fields["version"]),
            "type": fields["type"],
            "timestamp": fields["timestamp"],
            "data": data,
        }
    except (KeyError, ValueError, TypeError, orjson.JSONDecodeError) as exc:
        raise MalformedEntry(
            f"entry of {stream_key(run_id)} is malformed ({type(exc).__name__}: {exc})"
        ) from exc


def entry_version(fields: dict[str, str]) -> int:
    """The version an entry of a run stream carries."""
    try:
        return int(fields["version"])
    except (KeyError, ValueError, TypeError) as exc:
        raise MalformedEntry(f"stream entry without a valid version: {exc!r}") from exc


# -- the job queue ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class JobFields:
    """What a ``runs:queue`` entry says: which run to execute (and its attempt, if known)."""

    run_id: UUID
    test_id: str | None
    attempt: int | None


def encode_job(queued: RecordedEvent) -> dict[str, str]:
    """The job a ``queued`` event adds to ``runs:queue``."""
    return {
        "run_id": str(queued.run_id),
        "test_id": str(queued.data["test_id"]),
        "attempt": str(queued.data["attempt"]),
    }


def decode_job(entry_id: str, fields: dict[str, str]) -> JobFields:
    """Parse a job entry; ``MalformedEntry`` names the entry and the bad field."""
    try:
        run_id = UUID(fields["run_id"])
    except (KeyError, ValueError, TypeError, AttributeError) as exc:
        raise MalformedEntry(f"entry {entry_id} has no valid run_id: {exc!r}") from None
    raw = fields.get("attempt")
    attempt: int | None = None
    if raw:  # absent or empty: the worker takes the run's own attempt
        try:
            attempt = int(raw)
        except ValueError:
            raise MalformedEntry(f"entry {entry_id} has a non-integer attempt") from None
        if attempt < 1:
            raise MalformedEntry(f"entry {entry_id} has attempt {attempt} < 1")
    return JobFields(run_id, fields.get("test_id"), attempt)


def encode_dead_letter(
    entry_id: str, fields: dict[str, str], *, reason: str, deliveries: int, consumer: str,
    run_id: UUID | None,
) -> dict[str, str]:
    """A ``runs:dead`` entry for the job ``entry_id`` that was given up on."""
    letter = {
        "entry_id": entry_id,
        "reason": reason,
        "deliveries": str(deliveries),
        "consumer": consumer,
        "fields": orjson.dumps(fields).decode(),
    }
    if run_id is not None:
        letter["run_id"] = str(run_id)
    return letter


def decode_dead_letter(fields: dict[str, str]) -> dict[str, Any]:
    """A dead letter as data: the job's fields decoded, deliveries as a number."""
    letter: dict[str, Any] = dict(fields)
    try:
        letter["deliveries"] = int(fields.get("deliveries", 0))
        letter["fields"] = orjson.loads(fields.get("fields", "{}"))
    except (ValueError, orjson.JSONDecodeError) as exc:
        raise MalformedEntry(f"dead letter is malformed: {exc}") from exc
    return letter


# Answers about the state of Redis rather than about the command: out of memory with no
# eviction, a read-only replica during failover, a failed snapshot (MISCONF), a server still
# loading or busy with a script. Waiting helps, as for a lost connection; refusing or parking
# the work would not.
_STATE_ERRORS = (
    rex.ConnectionError, rex.TimeoutError, rex.ReadOnlyError, rex.OutOfMemoryError,
    rex.BusyLoadingError, rex.TryAgainError, rex.MasterDownError, rex.ClusterDownError,
    OSError, TimeoutError,
)
# The same answers when redis-py leaves them a plain ResponseError (a pipeline's results, or
# a code it has no class for), by their error code.
_STATE_CODES = frozenset({"MISCONF", "BUSY", "NOREPLICAS", "MASTERDOWN", "CLUSTERDOWN",
                          "LOADING", "OOM", "READONLY", "TRYAGAIN"})


def redis_unavailable(exc: BaseException) -> bool:
    """Whether a failed Redis call failed for a reason of Redis's own (connection or server
    state): every process waits and tries again; any other answer is a refusal."""
    if isinstance(exc, _STATE_ERRORS):
        return True
    return isinstance(exc, rex.ResponseError) and str(exc).split(" ", 1)[0] in _STATE_CODES


__all__ = [
    "DEAD",
    "DEAD_LETTER_FIELDS",
    "EVENT_FIELDS",
    "JOB_FIELDS",
    "NO_BROWSER_PREFIX",
    "QUEUE",
    "RELAY_MARKER",
    "STREAM_PREFIX",
    "WORKER_GROUP",
    "JobFields",
    "MalformedEntry",
    "decode_dead_letter",
    "decode_event",
    "decode_job",
    "encode_dead_letter",
    "encode_event",
    "encode_job",
    "entry_version",
    "redis_unavailable",
    "stream_entry_id",
    "stream_key",
]
