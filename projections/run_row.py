"""The run row: what the ``runs`` read model holds for a run, as a pure fold of its events.

One definition, used by the ``runs`` follower (live and in ``rebuild``) and by the API while
the follower has not caught up with a run yet — so what a client reads is the same row
whichever path served it.

Event → row: ``queued`` creates it (status ``queued``); ``started`` → ``running``, worker,
started_at, attempt; ``step`` → steps_passed / steps_failed; ``completed`` → its status,
duration and error; ``errored`` → ``failed`` with its message and step; ``timed-out`` →
``failed`` with its message (``Execution timeout``); ``cancelled`` → ``cancelled`` with the
reason as error. Terminal events set completed_at; without a duration of their own the
duration is the time since start (none when the run never started). Events of types this
release does not know change only version and last_event_at.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from ledger.codec import RecordedEvent
from ledger.domain import CANCELLED, FAILED, PASSED, QUEUED, RUNNING


@dataclass(frozen=True, slots=True)
class RunRow:
    """A run's row in ``runs`` (column for column)."""

    id: UUID
    test_id: str
    test_name: str
    status: str
    attempt: int
    created_at: datetime
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

    def as_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in COLUMNS}


#: the columns of ``runs``, in the order of ``RunRow``'s fields
COLUMNS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(RunRow))


class NoRunRow(ValueError):
    """Raised when a run's first event seen is not ``queued`` and no row was given."""


def _finish(row: RunRow, at: datetime, status: str, error: str | None, **more: Any) -> RunRow:
    duration = more.pop("duration_ms", None)
    if duration is None and row.started_at is not None:
        duration = round((at - row.started_at).total_seconds() * 1000)
    return dataclasses.replace(
        row, status=status, completed_at=at, error=error, duration_ms=duration, **more)


def _started(row: RunRow, data: dict[str, Any], at: datetime) -> RunRow:
    return dataclasses.replace(
        row, status=RUNNING, worker=data["worker"], attempt=data["attempt"], started_at=at)


def _step(row: RunRow, data: dict[str, Any], at: datetime) -> RunRow:
    if data["status"] == PASSED:
        return dataclasses.replace(row, steps_passed=row.steps_passed + 1)
    return dataclasses.replace(row, steps_failed=row.steps_failed + 1)


def _completed(row: RunRow, data: dict[str, Any], at: datetime) -> RunRow:
    return _finish(row, at, data["status"], data.get("error"),
                   duration_ms=data.get("duration_ms"), error_step=data.get("error_step"))


def _errored(row: RunRow, data: dict[str, Any], at: datetime) -> RunRow:
    return _finish(row, at, FAILED, data["message"], error_step=data.get("step"))


def _timed_out(row: RunRow, data: dict[str, Any], at: datetime) -> RunRow:
    return _finish(row, at, FAILED, data["message"])


def _cancelled(row: RunRow, data: dict[str, Any], at: datetime) -> RunRow:
    return _finish(row, at, CANCELLED, data["reason"])


_EVOLVE: dict[str, Callable[[RunRow, dict[str, Any], datetime], RunRow]] = {
    "started": _started,
    "step": _step,
    "completed": _completed,
    "errored": _errored,
    "timed-out": _timed_out,
    "cancelled": _cancelled,
}


def evolve(row: RunRow | None, event: RecordedEvent) -> RunRow:
    """The row after ``event`` (``row`` is None before the run's ``queued`` event)."""
    at = event.at
    if event.type == "queued":
        data = event.data
        return RunRow(
            id=event.run_id, test_id=data["test_id"], test_name=data["test_name"],
            status=QUEUED, attempt=data["attempt"], created_at=at, last_event_at=at,
            version=event.version,
        )
    if row is None:
        raise NoRunRow(f"run {event.run_id}: '{event.type}' v{event.version} before 'queued'")
    change = _EVOLVE.get(event.type)
    if change is not None:
        row = change(row, event.data, at)
    return dataclasses.replace(row, last_event_at=at, version=event.version)


def fold(events: Iterable[RecordedEvent], row: RunRow | None = None) -> RunRow | None:
    """Fold one run's events (version order) onto ``row``; None when there are none."""
    for event in events:
        row = evolve(row, event)
    return row


def fold_runs(
    events: Iterable[RecordedEvent], rows: dict[UUID, RunRow]
) -> dict[UUID, RunRow]:
    """Fold a batch of the log (commit order, several runs) onto ``rows`` (the rows before
    the batch, by run id); returns the rows the batch changed, in first-seen order."""
    changed: dict[UUID, RunRow] = {}
    for event in events:
        changed[event.run_id] = evolve(changed.get(event.run_id, rows.get(event.run_id)), event)
    return changed


__all__ = ["COLUMNS", "NoRunRow", "RunRow", "evolve", "fold", "fold_runs"]
