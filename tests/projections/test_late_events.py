"""A parked event re-applied later (``runledger followers retry``) arrives after newer ones:
the run row never moves back to an older state."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from ledger.codec import RecordedEvent
from projections.run_row import evolve, fold

pytestmark = pytest.mark.unit


def event(run_id: uuid.UUID, version: int, type_: str, data: dict[str, Any]) -> RecordedEvent:
    at = datetime(2026, 1, 1, 0, 0, version, tzinfo=UTC).isoformat()
    return RecordedEvent(version, run_id, version, type_, at, data)


def test_a_late_event_never_moves_a_run_row_back() -> None:
    run_id = uuid.uuid4()
    queued = event(run_id, 1, "queued", {"test_id": "t", "test_name": "t", "attempt": 1})
    started = event(run_id, 2, "started", {"worker": "w", "attempt": 1})
    completed = event(run_id, 3, "completed", {"status": "passed", "duration_ms": 5})
    row = fold([queued, completed])  # `started` was parked
    assert row is not None and (row.status, row.version) == ("passed", 3)
    late = evolve(row, started)
    assert late == row and late is not row
    assert evolve(row, queued) == row
