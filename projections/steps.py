"""The ``run_steps`` read model: one row per ``step`` event (a run's result page, a test's
history). Rows are written once with one statement per batch; other events are ignored."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg
import orjson

from ledger.codec import RecordedEvent
from ledger.sql import load_queries
from projections.follower import ReadModel

Q = load_queries("projections", "steps.sql")

NAME = "run_steps"
TABLES = ("run_steps",)
_FIELDS = 14


def columns(events: Sequence[RecordedEvent]) -> list[list[Any]]:
    """The ``insert_steps`` parameter arrays for the step events among ``events``."""
    cols: list[list[Any]] = [[] for _ in range(_FIELDS)]
    dumps = orjson.dumps
    for event in events:
        if event.type != "step":
            continue
        d = event.data
        row = (
            event.run_id, d["index"], d["action"], d["instruction"], d["status"],
            d.get("strategy"), bool(d.get("healed", False)), d.get("duration_ms", 0),
            d.get("attempts", 1), d.get("url"), d.get("error"),
            dumps(d.get("artifacts") or []).decode(), dumps(d.get("details") or {}).decode(),
            datetime.fromisoformat(event.timestamp),
        )
        for col, value in zip(cols, row, strict=True):
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
