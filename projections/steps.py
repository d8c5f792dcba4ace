"""The ``run_steps`` read model: one row per ``step`` event (a run's result page, a test's
history). Rows are written once with one statement per batch; other events are ignored."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import MISSING, Field, fields
from datetime import datetime
from typing import Any

import asyncpg
import orjson

from ledger.codec import RecordedEvent
from ledger.domain import StepResult
from ledger.sql import load_queries
from projections.follower import ReadModel

Q = load_queries("projections", "steps.sql")

NAME = "run_steps"
TABLES = ("run_steps",)
def _default(f: Field[Any]) -> Any:
    if callable(f.default_factory):
        return f.default_factory()
    return None if f.default is MISSING else f.default


#: per field of a step (``STEP_FIELDS`` order): its name, its default when an event lacks it,
#: and whether it is JSON (sent as text, cast to jsonb by the query). Read straight from the
#: event's data rather than through ``StepResult``: rebuild does this ~100k times a second.
_READ = tuple((f.name, _default(f), f.name in ("artifacts", "details"))
              for f in fields(StepResult))


def columns(events: Sequence[RecordedEvent]) -> list[list[Any]]:
    """The ``insert_steps`` parameter arrays (run_id, the step's fields in ``STEP_FIELDS``
    order, recorded_at) for the step events among ``events``."""
    cols: list[list[Any]] = [[] for _ in range(len(_READ) + 2)]
    dumps = orjson.dumps
    parse = datetime.fromisoformat
    for event in events:
        if event.type != "step":
            continue
        d = event.data
        values = [dumps(d.get(name) or default).decode() if is_json else d.get(name, default)
                  for name, default, is_json in _READ]
        for col, value in zip(cols, (event.run_id, *values, parse(event.timestamp)),
                              strict=True):
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
