"""The ``run_steps`` read model: one row per ``step`` event (a run's result page, a test's
history). Rows are written once with one statement per batch; other events are ignored."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg
import orjson

from ledger.codec import RecordedEvent
from ledger.domain import STEP_FIELDS, StepResult
from ledger.sql import load_queries
from projections.follower import ReadModel

Q = load_queries("projections", "steps.sql")

NAME = "run_steps"
TABLES = ("run_steps",)
#: the JSON fields, sent as text and cast to jsonb by the query
_JSON = frozenset({"artifacts", "details"})


def columns(events: Sequence[RecordedEvent]) -> list[list[Any]]:
    """The ``insert_steps`` parameter arrays (run_id, the step's fields in ``STEP_FIELDS``
    order, recorded_at) for the step events among ``events``."""
    cols: list[list[Any]] = [[] for _ in range(len(STEP_FIELDS) + 2)]
    dumps = orjson.dumps
    for event in events:
        if event.type != "step":
            continue
        step = StepResult.from_event_data(event.data)
        values = [
            dumps(getattr(step, name)).decode() if name in _JSON else getattr(step, name)
            for name in STEP_FIELDS
        ]
        for col, value in zip(cols, (event.run_id, *values, event.at), strict=True):
            col.append(value)
    return cols


async def write(conn: asyncpg.Connection, cols: list[list[Any]]) -> None:
    """Insert ``columns``' rows into ``run_steps`` (whatever it resolves to on ``conn``)."""
    if cols[0]:
        await conn.execute(Q["insert_steps"], *cols)


async def apply(conn: asyncpg.Connection, events: Sequence[RecordedEvent]) -> None:
    """Insert the batch's steps into ``run_steps``."""
    await write(conn, columns(events))


MODEL = ReadModel(NAME, TABLES, apply)
