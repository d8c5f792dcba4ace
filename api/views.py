"""Pure shaping of run documents: rows of the read models, or — while the ``runs``
projection has not caught up with a run that was just queued — a fold of the run's events,
so a client that follows ``Location`` right after ``POST /runs`` never gets a 404."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from ledger.domain import TIMEOUT_MESSAGE

Row = dict[str, Any]
Event = dict[str, Any]


def step_from_event(event: Event) -> Row:
    data = event["data"]
    return {
        "run_id": event["run_id"],
        "index": data["index"],
        "action": data["action"],
        "instruction": data["instruction"],
        "status": data["status"],
        "strategy": data.get("strategy"),
        "healed": data.get("healed", False),
        "duration_ms": data.get("duration_ms", 0),
        "attempts": data.get("attempts", 1),
        "url": data.get("url"),
        "error": data.get("error"),
        "artifacts": data.get("artifacts", []),
        "details": data.get("details", {}),
    }


def _queued(row: Row, event: Event) -> None:
    data = event["data"]
    row.update(test_id=data["test_id"], test_name=data["test_name"], attempt=data["attempt"],
               created_at=event["timestamp"], status="queued")


def _started(row: Row, event: Event) -> None:
    row.update(status="running", started_at=event["timestamp"], worker=event["data"]["worker"],
               attempt=event["data"].get("attempt", row["attempt"]))


def _step(row: Row, event: Event) -> None:
    key = "steps_passed" if event["data"]["status"] == "passed" else "steps_failed"
    row[key] += 1


def _finish(row: Row, event: Event, status: str, error: str | None) -> None:
    row.update(status=status, completed_at=event["timestamp"], error=error)
    if row["started_at"] is not None:
        # As the projection does for terminal events without a duration of their own.
        elapsed = datetime.fromisoformat(event["timestamp"]) - datetime.fromisoformat(
            row["started_at"])
        row["duration_ms"] = round(elapsed.total_seconds() * 1000)


def _completed(row: Row, event: Event) -> None:
    data = event["data"]
    _finish(row, event, data["status"], data.get("error"))
    if data.get("duration_ms") is not None:
        row["duration_ms"] = data["duration_ms"]
    row["error_step"] = data.get("error_step")


def _errored(row: Row, event: Event) -> None:
    _finish(row, event, "failed", event["data"]["message"])
    row["error_step"] = event["data"].get("step")


def _timed_out(row: Row, event: Event) -> None:
    _finish(row, event, "failed", TIMEOUT_MESSAGE)


def _cancelled(row: Row, event: Event) -> None:
    _finish(row, event, "cancelled", event["data"].get("reason"))


def _unknown(row: Row, event: Event) -> None:
    """Event types added later change nothing a row shows."""


_FOLD: dict[str, Callable[[Row, Event], None]] = {
    "queued": _queued,
    "started": _started,
    "step": _step,
    "completed": _completed,
    "errored": _errored,
    "timed-out": _timed_out,
    "cancelled": _cancelled,
}


def row_from_events(events: Iterable[Event]) -> Row:
    """The ``runs`` row the projection will hold once it has applied ``events``."""
    row: Row = {
        "id": None, "test_id": None, "test_name": None, "status": "queued", "attempt": 1,
        "created_at": None, "started_at": None, "completed_at": None, "duration_ms": None,
        "steps_passed": 0, "steps_failed": 0, "error": None, "error_step": None,
        "worker": None, "last_event_at": None, "version": 0,
    }
    for event in events:
        row["id"] = event["run_id"]
        _FOLD.get(event["type"], _unknown)(row, event)
        row.update(version=event["version"], last_event_at=event["timestamp"])
    return row


def with_links(step: Row, artifact_url: Callable[[str], str]) -> Row:
    """A step with an ``href`` on each artifact reference (the artifact route)."""
    artifacts = [
        {**ref, "href": artifact_url(ref["id"])} for ref in step.get("artifacts") or ()
        if isinstance(ref, dict) and "id" in ref
    ]
    return {**step, "artifacts": artifacts}


def artifact_refs(events: Iterable[Event]) -> dict[str, dict[str, Any]]:
    """Every artifact a run's events reference, by id."""
    refs: dict[str, dict[str, Any]] = {}
    for event in events:
        for ref in event["data"].get("artifacts") or ():
            if isinstance(ref, dict) and isinstance(ref.get("id"), str):
                refs[ref["id"]] = ref
    return refs
