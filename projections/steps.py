"""The ``run_steps`` read model: one row per ``step`` event (a run's result page, a test's
history). Rows are written once with one statement per batch; other events are ignored."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import MISSING, Field, fields
from datetime import datetime
from typing import Any

import asyncpg
import orjson

from ledger.codec import RecordedEvent
from ledger.domain import StepResult
from ledger.sql import load_queries
from projections import sanitize
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


#: positions in ``columns``' arrays (after run_id) by kind, for sanitising whole columns
_TEXT = [i + 1 for i, f in enumerate(fields(StepResult)) if f.type in ("str", "str | None")]
_JSON = [i + 1 for i, (_, _, is_json) in enumerate(_READ) if is_json]
_BIGINT = [i + 1 for i, (name, _, _) in enumerate(_READ) if name == "duration_ms"]


def _dump(value: Any) -> str:
    return orjson.dumps(value).decode()


def _columns(events: Sequence[RecordedEvent], dump: Callable[[Any], str]) -> list[list[Any]]:
    cols: list[list[Any]] = [[] for _ in range(len(_READ) + 2)]
    parse = datetime.fromisoformat
    for event in events:
        if event.type != "step":
            continue
        d = event.data
        values = [dump(d.get(name) or default) if is_json else d.get(name, default)
                  for name, default, is_json in _READ]
        for col, value in zip(cols, (event.run_id, *values, parse(event.timestamp)),
                              strict=True):
            col.append(value)
    return cols


def columns(events: Sequence[RecordedEvent]) -> list[list[Any]]:
    """The ``insert_steps`` parameter arrays (run_id, the step's fields in ``STEP_FIELDS``
    order, recorded_at) for the step events among ``events``, made acceptable to
    PostgreSQL (``projections.sanitize``) column by column."""
    try:
        cols = _columns(events, _dump)
    except orjson.JSONEncodeError:
        # A lone surrogate somewhere in artifacts or details: the slow, sanitising dump.
        cols = _columns(events, sanitize.json_text)
    for i in _TEXT:
        cols[i] = sanitize.text_column(cols[i])
    for i in _JSON:
        cols[i] = sanitize.json_column(cols[i])
    for i in _BIGINT:
        cols[i] = sanitize.bigint_column(cols[i])
    return cols


async def write(conn: asyncpg.Connection, cols: list[list[Any]]) -> None:
    """Insert ``columns``' rows into ``run_steps`` (whatever it resolves to on ``conn``)."""
    if cols[0]:
        await conn.execute(Q["insert_steps"], *cols)


async def apply(conn: asyncpg.Connection, events: Sequence[RecordedEvent]) -> None:
    """Insert the batch's steps into ``run_steps``."""
    await write(conn, columns(events))


MODEL = ReadModel(NAME, TABLES, apply)
