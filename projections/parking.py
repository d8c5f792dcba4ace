"""Parked events: what a follower could not apply, recorded so that it can go on.

The log is immutable: an event a follower cannot apply — its code refuses it, PostgreSQL or
Redis refuses what it writes, or the stored bytes do not even decode — would stop that
follower at the same position for ever. The runner (``projections.follower``) retries such
an event a bounded number of times, then **parks** it here (one row per follower and
event) and moves past it; a transactional follower parks in the same transaction that moves
its checkpoint, so "applied or parked" stays exactly-once.

* ``park`` writes the row and logs it at ERROR (follower, run_id, position);
* ``parked_counts`` / ``follower_status`` feed ``/metrics``, ``/health`` and
  ``runledger followers``;
* ``projections.retry`` re-applies parked events once a follower's code is fixed.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import asyncpg

from ledger.codec import LogEntry, RecordedEvent, UndecodableRow
from ledger.db import translated
from ledger.domain import EVENT_CLASSES
from ledger.sql import load_queries
from projections import sanitize

log = logging.getLogger(__name__)

Q = load_queries("projections", "parking.sql")

#: the longest error text a parked row keeps (the full one is in the log line)
MAX_ERROR_CHARS = 2000


def describe(exc: BaseException) -> str:
    """An error as a parked row records it: type and message, safe for a ``text`` column."""
    message = str(exc)
    described = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    return sanitize.text(described[:MAX_ERROR_CHARS])


def now() -> datetime:
    return datetime.now(UTC)


async def park(
    conn: asyncpg.Connection, follower: str, entry: LogEntry, error: str, *, attempts: int,
    first_failure: datetime,
) -> None:
    """Record that ``follower`` could not apply ``entry`` (inside the caller's transaction,
    if any) and log it at ERROR."""
    error = sanitize.text(error[:MAX_ERROR_CHARS])
    await conn.execute(Q["park"], follower, entry.notification_id, entry.run_id, entry.type,
                       _topic(entry), error, attempts, first_failure)
    log.error("follower %s: parked the %s event at position %d of run_id %s after %d "
              "attempt(s): %s", follower, entry.type, entry.notification_id, entry.run_id,
              attempts, error)


async def run_has_parked(conn: asyncpg.Connection, follower: str, run_id: UUID) -> bool:
    """Whether ``follower`` has parked an event of ``run_id``."""
    with translated():
        return bool(await conn.fetchval(Q["run_has_parked"], follower, run_id))


def _topic(entry: LogEntry) -> str:
    if isinstance(entry, UndecodableRow):
        return entry.topic
    cls = EVENT_CLASSES.get(entry.type)
    return str(cls.TOPIC) if cls is not None else entry.type


async def parked_counts(pool: asyncpg.Pool) -> dict[str, int]:
    """Per follower (every one with a checkpoint or parked events), how many events it
    parked."""
    with translated():
        rows = await pool.fetch(Q["counts"])
    return {row["name"]: int(row["parked"]) for row in rows}


@dataclass(frozen=True)
class FollowerStatus:
    name: str
    position: int
    lag: int
    parked: int


async def follower_status(pool: asyncpg.Pool) -> list[FollowerStatus]:
    """Every follower with a checkpoint or parked events: position, lag and parked count."""
    with translated():
        rows = await pool.fetch(Q["status"])
    return [FollowerStatus(r["name"], int(r["position"]), int(r["lag"]), int(r["parked"]))
            for r in rows]


async def parked_events(
    pool: asyncpg.Pool, *, follower: str | None = None, ids: Sequence[int] | None = None
) -> list[dict[str, Any]]:
    """Parked rows (all columns) in notification order, filtered by follower and ids."""
    with translated():
        rows = await pool.fetch(Q["list"], follower, list(ids) if ids else None)
    return [dict(row) for row in rows]


def split(
    entries: Sequence[LogEntry],
) -> tuple[Sequence[RecordedEvent], list[UndecodableRow]]:
    """The decoded events of a batch and its undecodable rows (usually none)."""
    if UndecodableRow not in map(type, entries):
        # The happy path: one pass in C, no copy.
        return entries, []  # type: ignore[return-value]  # all RecordedEvent, checked above
    return ([e for e in entries if isinstance(e, RecordedEvent)],
            [e for e in entries if isinstance(e, UndecodableRow)])


__all__ = [
    "FollowerStatus",
    "describe",
    "follower_status",
    "park",
    "parked_counts",
    "parked_events",
    "split",
]
