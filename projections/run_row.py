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


@dataclass(slots=True)
class RunRow:
    """A run's row in ``runs`` (column for column).

    Mutable only so that folding a batch costs one copy per run rather than one per event
    (rebuild folds ~100k events a second); ``evolve`` and the folds never change a row they
    were given.
    """

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


def _finish(row: RunRow, at: datetime, status: str, error: str | None) -> None:
    row.status = status
    row.completed_at = at
    row.error = error
    if row.started_at is not None:
        row.duration_ms = round((at - row.started_at).total_seconds() * 1000)


def _started(row: RunRow, data: dict[str, Any], at: datetime) -> None:
    row.status = RUNNING
    row.worker = data["worker"]
    row.attempt = data["attempt"]
    row.started_at = at


def _step(row: RunRow, data: dict[str, Any], at: datetime) -> None:
    if data["status"] == PASSED:
        row.steps_passed += 1
    else:
        row.steps_failed += 1


def _completed(row: RunRow, data: dict[str, Any], at: datetime) -> None:
    _finish(row, at, data["status"], data.get("error"))
    if data.get("duration_ms") is not None:
        row.duration_ms = data["duration_ms"]
    row.error_step = data.get("error_step")


def _errored(row: RunRow, data: dict[str, Any], at: datetime) -> None:
    _finish(row, at, FAILED, data["message"])
    row.error_step = data.get("step")


def _timed_out(row: RunRow, data: dict[str, Any], at: datetime) -> None:
    _finish(row, at, FAILED, data["message"])


def _cancelled(row: RunRow, data: dict[str, Any], at: datetime) -> None:
    _finish(row, at, CANCELLED, data["reason"])


_EVOLVE: dict[str, Callable[[RunRow, dict[str, Any], datetime], None]] = {
    "started": _started,
    "step": _step,
    "completed": _completed,
    "errored": _errored,
    "timed-out": _timed_out,
    "cancelled": _cancelled,
}


def _apply(row: RunRow | None, event: RecordedEvent, owned: bool) -> RunRow:
    """The row after ``event``; ``row`` is changed in place only when ``owned``."""
    if row is not None and event.version <= row.version:
        # Only a parked event re-applied by `runledger followers retry` comes late (the log
        # is otherwise applied in order): the row never moves back to an older state;
        # `runledger rebuild runs` folds such an event in its place.
        return row if owned else dataclasses.replace(row)
    at = datetime.fromisoformat(event.timestamp)
    if event.type == "queued":
        data = event.data
        return RunRow(
            id=event.run_id, test_id=data["test_id"], test_name=data["test_name"],
            status=QUEUED, attempt=data["attempt"], created_at=at, last_event_at=at,
            version=event.version,
        )
    if row is None:
        raise NoRunRow(f"run {event.run_id}: '{event.type}' v{event.version} before 'queued'")
    if not owned:
        row = dataclasses.replace(row)
    change = _EVOLVE.get(event.type)
    if change is not None:
        change(row, event.data, at)
    row.last_event_at = at
    row.version = event.version
    return row


def evolve(row: RunRow | None, event: RecordedEvent) -> RunRow:
    """The row after ``event`` (``row`` is None before the run's ``queued`` event)."""
    return _apply(row, event, owned=False)


def fold(events: Iterable[RecordedEvent], row: RunRow | None = None) -> RunRow | None:
    """Fold one run's events (version order) onto ``row``; None when there are none."""
    owned = False
    for event in events:
        row = _apply(row, event, owned)
        owned = True
    return row


def fold_runs(
    events: Iterable[RecordedEvent], rows: dict[UUID, RunRow]
) -> dict[UUID, RunRow]:
    """Fold a batch of the log (commit order, several runs) onto ``rows`` (the rows before
    the batch, by run id); returns the rows the batch changed, in first-seen order."""
    changed: dict[UUID, RunRow] = {}
    for event in events:
        run_id = event.run_id
        current = changed.get(run_id)
        if current is None:
            changed[run_id] = _apply(rows.get(run_id), event, owned=False)
        else:
            changed[run_id] = _apply(current, event, owned=True)
    return changed


__all__ = ["COLUMNS", "NoRunRow", "RunRow", "evolve", "fold", "fold_runs"]
