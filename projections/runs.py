"""The ``runs`` read model: one row per run, its state after the last applied event.

A batch is folded in Python into one patch per run, then written with at most two
statements: an INSERT of the runs the batch created and an UPDATE of the others (NULL =
"unchanged", step counts as increments). The same ``apply`` serves the live follower and
``rebuild``, so a rebuilt table equals the live one by construction.

Event → row: ``queued`` creates it (status ``queued``); ``started`` → ``running``, worker,
started_at, attempt; ``step`` → steps_passed/steps_failed; ``completed`` → its status,
duration and error; ``errored`` → ``failed`` with its message and step; ``timed-out`` →
``failed`` with ``Execution timeout``; ``cancelled`` → ``cancelled`` with the reason as error.
Terminal events set completed_at; without a duration of their own it is the time since start.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from ledger.codec import RecordedEvent
from ledger.domain import CANCELLED, FAILED, QUEUED, RUNNING
from ledger.sql import load_queries
from projections.errors import FollowerError
from projections.follower import ReadModel

Q = load_queries("projections", "runs.sql")

NAME = "runs"
TABLES = ("runs",)


@dataclass(slots=True)
class RunPatch:
    """What one batch changes in one run's row."""

    id: UUID
    created: bool = False
    test_id: str | None = None
    test_name: str | None = None
    status: str | None = None
    attempt: int | None = None
    created_at: datetime | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    duration_ms: int | None = None
    steps_passed: int = 0
    steps_failed: int = 0
    error: str | None = None
    error_step: int | None = None
    worker: str | None = None
    last_event_at: datetime | None = None
    version: int = 0


def _queued(p: RunPatch, data: dict[str, Any], at: datetime) -> None:
    p.created = True
    p.test_id = data["test_id"]
    p.test_name = data["test_name"]
    p.attempt = data["attempt"]
    p.created_at = at
    p.status = QUEUED


def _started(p: RunPatch, data: dict[str, Any], at: datetime) -> None:
    p.status = RUNNING
    p.worker = data["worker"]
    p.attempt = data["attempt"]
    p.started_at = at


def _step(p: RunPatch, data: dict[str, Any], at: datetime) -> None:
    p.status = RUNNING
    if data["status"] == "passed":
        p.steps_passed += 1
    else:
        p.steps_failed += 1


def _completed(p: RunPatch, data: dict[str, Any], at: datetime) -> None:
    p.status = data["status"]
    p.completed_at = at
    p.duration_ms = data["duration_ms"]
    p.error = data.get("error")
    p.error_step = data.get("error_step")


def _errored(p: RunPatch, data: dict[str, Any], at: datetime) -> None:
    p.status = FAILED
    p.completed_at = at
    p.error = data["message"]
    p.error_step = data.get("step")


def _timed_out(p: RunPatch, data: dict[str, Any], at: datetime) -> None:
    p.status = FAILED
    p.completed_at = at
    p.error = data["message"]


def _cancelled(p: RunPatch, data: dict[str, Any], at: datetime) -> None:
    p.status = CANCELLED
    p.completed_at = at
    p.error = data["reason"]


_EVOLVE: dict[str, Callable[[RunPatch, dict[str, Any], datetime], None]] = {
    "queued": _queued,
    "started": _started,
    "step": _step,
    "completed": _completed,
    "errored": _errored,
    "timed-out": _timed_out,
    "cancelled": _cancelled,
}


def fold(events: Sequence[RecordedEvent]) -> list[RunPatch]:
    """One patch per run touched by ``events`` (commit order), in first-seen order."""
    patches: dict[UUID, RunPatch] = {}
    parse = datetime.fromisoformat
    for event in events:
        patch = patches.get(event.run_id)
        if patch is None:
            patch = patches[event.run_id] = RunPatch(event.run_id)
        at = parse(event.timestamp)
        evolve = _EVOLVE.get(event.type)
        if evolve is not None:
            evolve(patch, event.data, at)
        patch.version = event.version
        patch.last_event_at = at
    return list(patches.values())


async def write(conn: asyncpg.Connection, patches: list[RunPatch]) -> None:
    """Write ``fold``'s patches to ``runs`` (whatever ``runs`` resolves to on ``conn``)."""
    created = [p for p in patches if p.created]
    changed = [p for p in patches if not p.created]
    if created:
        await conn.execute(Q["insert_runs"], *_insert_columns(created))
    if changed:
        status = await conn.execute(Q["update_runs"], *_update_columns(changed))
        if int(status.split()[-1]) != len(changed):
            missing = await _missing(conn, [p.id for p in changed])
            raise FollowerError(
                NAME, -1,
                f"events for runs without a row (their queued event was never applied): "
                f"{', '.join(map(str, missing[:5]))}",
            )


async def apply(conn: asyncpg.Connection, events: Sequence[RecordedEvent]) -> None:
    """Apply a batch to ``runs``."""
    await write(conn, fold(events))


def _insert_columns(patches: list[RunPatch]) -> list[list[Any]]:
    return [
        [p.id for p in patches], [p.test_id for p in patches], [p.test_name for p in patches],
        [p.status for p in patches], [p.attempt for p in patches],
        [p.created_at for p in patches], [p.started_at for p in patches],
        [p.completed_at for p in patches], [p.duration_ms for p in patches],
        [p.steps_passed for p in patches], [p.steps_failed for p in patches],
        [p.error for p in patches], [p.error_step for p in patches],
        [p.worker for p in patches], [p.last_event_at for p in patches],
        [p.version for p in patches],
    ]


def _update_columns(patches: list[RunPatch]) -> list[list[Any]]:
    return [
        [p.id for p in patches], [p.status for p in patches], [p.attempt for p in patches],
        [p.started_at for p in patches], [p.completed_at for p in patches],
        [p.duration_ms for p in patches], [p.steps_passed for p in patches],
        [p.steps_failed for p in patches], [p.error for p in patches],
        [p.error_step for p in patches], [p.worker for p in patches],
        [p.last_event_at for p in patches], [p.version for p in patches],
    ]


async def _missing(conn: asyncpg.Connection, ids: list[UUID]) -> list[UUID]:
    found = {row[0] for row in await conn.fetch(Q["existing_runs"], ids)}
    return [i for i in ids if i not in found]


MODEL = ReadModel(NAME, TABLES, apply)
