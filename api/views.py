"""Pure shaping of run documents: rows of the read models, or — while the projection has not
caught up with a run that was just queued — the same rows folded from the run's events by
the projection's own functions, so a client that follows ``Location`` right after
``POST /runs`` never gets a 404, nor a row shaped differently."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from ledger.codec import RecordedEvent
from ledger.domain import StepResult
from projections.run_row import fold

Row = dict[str, Any]
Event = dict[str, Any]


def step_row(event: RecordedEvent) -> Row:
    """A ``step`` event as the ``run_steps`` row the projection will hold for it."""
    step = StepResult.from_event_data(event.data)
    return {"run_id": event.run_id, **step.as_event_data(), "recorded_at": event.at}


def run_row(events: Sequence[RecordedEvent]) -> Row:
    """The ``runs`` row the projection will hold once it has applied ``events`` (one run's,
    in version order): the projection's own fold."""
    row = fold(events)
    if row is None:
        raise ValueError("a run row needs at least the run's queued event")
    return row.as_dict()


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
