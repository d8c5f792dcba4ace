"""The locator-memory follower: folds ``step`` events into ``locator_memory`` rows.

``apply(conn, events)`` is a transactional follower's batch function: the runner calls it
inside the transaction that also moves the checkpoint, so every event counts exactly once.
The batch's entries are read ``FOR UPDATE``, folded in commit order in memory
(``memory.fold``), then written back with one upsert and one delete.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg

from ledger.codec import RecordedEvent
from ledger.sql import load_queries
from projections import sanitize
from projections.follower import ReadModel
from projections.locator_memory.memory import MemoryEntry, Observation, fold, observe

Q = load_queries("projections.locator_memory", "queries.sql")

NAME = "locator_memory"
TABLES = ("locator_memory",)


def entry_from_row(row: asyncpg.Record) -> MemoryEntry:
    # Every connection is opened by ``ledger.db`` with the jsonb codec: fingerprint is a dict.
    fingerprint = row["fingerprint"]
    return MemoryEntry(
        key=row["key"], url=row["url"], action=row["action"], instruction=row["instruction"],
        locator=row["locator"], fingerprint=fingerprint or {}, successes=row["successes"],
        failures=row["failures"], consecutive_failures=row["consecutive_failures"],
        updated_at=row["updated_at"],
    )


async def apply(conn: asyncpg.Connection, events: Sequence[RecordedEvent]) -> None:
    """Apply one batch (commit order) on ``conn``, inside the caller's transaction, to
    ``locator_memory`` as ``conn``'s search path resolves it (a rebuild's fresh copy too)."""
    seen: list[Observation] = [_clean_key(o) for o in map(observe, events) if o is not None]
    if not seen:
        return
    keys = sorted({o.key for o in seen})
    rows = await conn.fetch(Q["lock_entries"], keys)
    before = {row["key"]: entry_from_row(row) for row in rows}
    after: dict[str, MemoryEntry | None] = dict(before)
    for observation in seen:
        after[observation.key] = fold(after.get(observation.key), observation)
    changed = [e for k, e in after.items() if e is not None and e != before.get(k)]
    dropped = [k for k, e in after.items() if e is None and k in before]
    if changed:
        await conn.execute(Q["upsert_entries"], *_columns(changed))
    if dropped:
        await conn.execute(Q["delete_entries"], dropped)


def _clean_key(seen: Observation) -> Observation:
    # The key is also a query parameter (``lock_entries``): PostgreSQL must accept it too.
    key = sanitize.text(seen.key)
    return seen if key == seen.key else dataclasses.replace(seen, key=key)


def _columns(entries: list[MemoryEntry]) -> list[list[Any]]:
    """The ``upsert_entries`` arrays, made acceptable to PostgreSQL (``projections.sanitize``)."""
    text = sanitize.text_column
    return [
        text([e.key for e in entries]),
        text([e.url for e in entries]),
        text([e.action for e in entries]),
        text([e.instruction for e in entries]),
        text([e.locator for e in entries]),
        [sanitize.json_text(e.fingerprint) for e in entries],
        [e.successes for e in entries],
        [e.failures for e in entries],
        [e.consecutive_failures for e in entries],
        [datetime.fromisoformat(e.updated_at) if e.updated_at else None for e in entries],
    ]


#: registered with the projector (and ``rebuild``): replayable into fresh tables
MODEL = ReadModel(NAME, TABLES, apply)
FOLLOWER = MODEL.follower()
