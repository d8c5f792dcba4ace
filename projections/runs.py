"""The ``runs`` read model: one row per run, its state after the last applied event.

A batch is applied in three steps: the rows of the runs it touches that already exist are
read (one query; runs the batch creates need none), the batch is folded onto them by the
one pure fold (``projections.run_row``), and the changed rows are written back with one
upsert. The same ``apply`` serves the live follower and ``rebuild``, and the API folds a
not-yet-projected run with the same function, so every path yields the same row.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any
from uuid import UUID

import asyncpg

from ledger.codec import RecordedEvent
from ledger.sql import load_queries
from ledger.store import read_runs
from projections import sanitize
from projections.errors import FollowerError
from projections.follower import ReadModel
from projections.run_row import COLUMNS, NoRunRow, RunRow, fold, fold_runs

Q = load_queries("projections", "runs.sql")

NAME = "runs"
TABLES = ("runs",)


async def read_rows(conn: asyncpg.Connection, run_ids: Sequence[UUID]) -> dict[UUID, RunRow]:
    """The current rows of ``run_ids`` that exist (on ``conn``'s search path)."""
    if not run_ids:
        return {}
    rows = await conn.fetch(Q["rows_of_runs"], list(run_ids))
    return {row["id"]: RunRow(**dict(row)) for row in rows}


def _existing_needed(events: Sequence[RecordedEvent]) -> list[UUID]:
    """Runs whose first event in the batch is not their ``queued`` event: their row exists."""
    seen: dict[UUID, bool] = {}
    for event in events:
        seen.setdefault(event.run_id, event.type != "queued")
    return [run_id for run_id, needed in seen.items() if needed]


#: how each column's values are made acceptable to PostgreSQL (``projections.sanitize``)
_CLEAN: dict[str, Callable[[list[Any]], list[Any]]] = {
    "test_id": sanitize.text_column, "test_name": sanitize.text_column,
    "status": sanitize.text_column, "error": sanitize.text_column,
    "worker": sanitize.text_column, "duration_ms": sanitize.bigint_column,
}


async def write(conn: asyncpg.Connection, rows: Sequence[RunRow]) -> None:
    """Upsert ``rows`` into ``runs`` (whatever ``runs`` resolves to on ``conn``), their text
    sanitised and durations clamped on the way (the rows themselves are left alone)."""
    if rows:
        columns: list[list[Any]] = []
        for c in COLUMNS:
            values = [getattr(r, c) for r in rows]
            clean = _CLEAN.get(c)
            columns.append(values if clean is None else clean(values))
        await conn.execute(Q["upsert_runs"], *columns)


async def apply(conn: asyncpg.Connection, events: Sequence[RecordedEvent]) -> None:
    """Apply a batch (commit order) to ``runs``."""
    existing = await read_rows(conn, _existing_needed(events))
    try:
        changed = fold_runs(events, existing)
    except NoRunRow as exc:
        raise FollowerError(
            NAME, -1, f"events for a run without a row (its queued event was never applied): "
            f"{exc}") from exc
    await write(conn, list(changed.values()))


async def refold(conn: asyncpg.Connection, events: Sequence[RecordedEvent]) -> None:
    """Re-apply parked events: each one's run is folded again from its whole history, so an
    event retried after later ones (which the live fold ignores as late) still counts."""
    for run_id in dict.fromkeys(e.run_id for e in events):
        history = [e for e in await read_runs(conn, [run_id], _EVERYTHING)
                   if isinstance(e, RecordedEvent)]
        try:
            row = fold(history)
        except NoRunRow as exc:
            raise FollowerError(NAME, -1, f"run {run_id} cannot be folded: {exc}") from exc
        if row is not None:
            await write(conn, [row])


#: a position past any log: read a run's history whole
_EVERYTHING = (1 << 63) - 1

MODEL = ReadModel(NAME, TABLES, apply, reapply=refold)
