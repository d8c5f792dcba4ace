"""The ``test_stats`` read model: per test, the results of its finished runs — the last
``WINDOW`` of them, for the pass/fail strip and the flakiness measure — and counts since its
first run.

A run's result is decided by its terminal event: ``completed`` gives its own status and
duration; ``errored`` and ``timed-out`` are failures lasting from start to end; a
``cancelled`` run is no result of the test and is left out. Results are ordered by the
commit of their terminal event, i.e. as they finished.

**Flakiness** is the flip rate: of the consecutive pairs of results in the window, the share
whose outcomes differ. A test is *flaky* when it flipped at least ``FLAKY_FLIPS`` times in
the window: one flip is a change of state (a regression, or its fix); going back and forth
is not.

A terminal event names only its run, so the model keeps the runs queued and not finished
yet in ``test_stats_pending`` (run → test, start time); both tables are the model's, so
``runledger rebuild test_stats`` replays them together.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import pairwise
from typing import Any
from uuid import UUID

import asyncpg
import orjson

from ledger.codec import RecordedEvent
from ledger.db import translated
from ledger.domain import CANCELLED, FAILED, PASSED, TERMINAL_TYPES
from ledger.sql import load_queries
from projections import sanitize
from projections.follower import ReadModel

Q = load_queries("projections", "test_stats.sql")

NAME = "test_stats"
TABLES = ("test_stats", "test_stats_pending")
#: how many of a test's latest results the model keeps (the strip, the flip rate)
WINDOW = 30
#: flips in the window from which a test is called flaky
FLAKY_FLIPS = 2


@dataclass(frozen=True, slots=True)
class Pending:
    """A run queued and not finished: its test, and when it started (None: not yet)."""

    test_id: str
    started_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class History:
    """What the model holds for a test; ``recent`` oldest first, at most ``WINDOW``."""

    test_id: str
    runs: int = 0
    passed: int = 0
    recent: tuple[dict[str, Any], ...] = ()

    def add(self, result: dict[str, Any]) -> History:
        return dataclasses.replace(
            self, runs=self.runs + 1, passed=self.passed + (result["status"] == PASSED),
            recent=(*self.recent, result)[-WINDOW:],
        )


def result_of(run_id: UUID, pending: Pending, event: RecordedEvent) -> dict[str, Any] | None:
    """The run's result after its terminal ``event``; None for a cancelled run."""
    data = event.data
    if event.type == "completed":
        status, duration = data.get("status"), data.get("duration_ms")
    else:
        status, duration = (CANCELLED if event.type == "cancelled" else FAILED), None
    if status not in (PASSED, FAILED):
        return None
    if duration is None and pending.started_at is not None:
        duration = round((event.at - pending.started_at).total_seconds() * 1000)
    return {"run_id": str(run_id), "status": status,
            "duration_ms": sanitize.bigint(duration), "finished_at": event.timestamp}


def summary(test_id: str, history: History | None) -> dict[str, Any]:
    """The statistics the API shows for a test (``api.schemas.TestStats``)."""
    history = history or History(test_id)
    outcomes = [r["status"] for r in history.recent]
    passed = outcomes.count(PASSED)
    flips = sum(a != b for a, b in pairwise(outcomes))
    pairs = len(outcomes) - 1
    return {
        "test_id": test_id,
        "runs": history.runs,
        "passed": history.passed,
        "window": len(outcomes),
        "window_passed": passed,
        "pass_rate": round(passed / len(outcomes), 4) if outcomes else None,
        "flips": flips,
        "flip_rate": round(flips / pairs, 4) if pairs > 0 else None,
        "flaky": flips >= FLAKY_FLIPS,
        "recent": list(reversed(history.recent)),  # newest first, as the runs list
    }


# -- the follower -----------------------------------------------------------------------------

_TRACKED = frozenset({"queued", "started"}) | TERMINAL_TYPES


def fold(
    events: Sequence[RecordedEvent], pending: dict[UUID, Pending], histories: dict[str, History]
) -> tuple[dict[UUID, Pending], set[UUID], dict[str, History]]:
    """Fold a batch (commit order) onto the pending runs and histories before it; returns
    the pending runs the batch changed, the runs it ended, and the histories it changed.
    ``pending`` must hold every run of the batch queued before it; ``histories`` the
    tests whose runs end in it (when they exist). Neither is changed."""
    open_runs = dict(pending)
    touched: dict[UUID, Pending] = {}
    ended: set[UUID] = set()
    changed: dict[str, History] = {}
    for event in events:
        run = open_runs.get(event.run_id)
        if event.type == "queued":
            run = Pending(sanitize.text(str(event.data["test_id"])))
        elif run is None:
            continue  # a run whose queued event a follower parked: it has no test here
        elif event.type == "started":
            run = dataclasses.replace(run, started_at=event.at)
        elif event.type in TERMINAL_TYPES:
            del open_runs[event.run_id]
            touched.pop(event.run_id, None)
            ended.add(event.run_id)
            result = result_of(event.run_id, run, event)
            if result is not None:
                before = changed.get(run.test_id) or histories.get(run.test_id)
                changed[run.test_id] = (before or History(run.test_id)).add(result)
            continue
        else:
            continue
        open_runs[event.run_id] = touched[event.run_id] = run
    return touched, ended, changed


async def apply(conn: asyncpg.Connection, events: Sequence[RecordedEvent]) -> None:
    """Apply a batch inside the follower's transaction (or a rebuild's)."""
    tracked = [e for e in events if e.type in _TRACKED]
    if not tracked:
        return
    queued_here = {e.run_id for e in tracked if e.type == "queued"}
    earlier = [r for r in dict.fromkeys(e.run_id for e in tracked) if r not in queued_here]
    pending = {row["run_id"]: Pending(row["test_id"], row["started_at"])
               for row in await conn.fetch(Q["lock_pending"], earlier)} if earlier else {}
    test_of = {r: p.test_id for r, p in pending.items()} | {
        e.run_id: sanitize.text(str(e.data["test_id"])) for e in tracked if e.type == "queued"}
    tests = sorted({test_of[e.run_id] for e in tracked
                    if e.type in TERMINAL_TYPES and e.run_id in test_of})
    histories = {row["test_id"]: _history(row)
                 for row in await conn.fetch(Q["lock_stats"], tests)} if tests else {}
    touched, ended, changed = fold(tracked, pending, histories)
    if touched:
        await conn.execute(Q["upsert_pending"], list(touched),
                           [p.test_id for p in touched.values()],
                           [p.started_at for p in touched.values()])
    if ended:
        await conn.execute(Q["delete_pending"], list(ended))
    if changed:
        # A test's row is as of its own latest result, whatever else its batch held, so
        # the live follower and a rebuild (other batches) write the same time.
        ended_at: dict[str, Any] = {}
        for e in tracked:
            if e.type in TERMINAL_TYPES and e.run_id in test_of:
                test = test_of[e.run_id]
                ended_at[test] = max(ended_at.get(test, e.at), e.at)
        await conn.execute(
            Q["upsert_stats"], list(changed), [h.runs for h in changed.values()],
            [h.passed for h in changed.values()],
            [sanitize.json_text(list(h.recent)) for h in changed.values()],
            [ended_at[test] for test in changed])


def _history(row: asyncpg.Record) -> History:
    recent = row["recent"]
    if isinstance(recent, str):  # a connection without the jsonb codec
        recent = orjson.loads(recent)
    return History(row["test_id"], row["runs"], row["passed"], tuple(recent))


MODEL = ReadModel(NAME, TABLES, apply)


class TestStatsQueries:
    """What the API reads of the model. Handed a pool; never closes it."""

    __test__ = False  # not a pytest class, despite the name

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def of_tests(self, test_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """``summary`` of each of ``test_ids`` (a test without finished runs has zeros)."""
        with translated():
            rows = await self._pool.fetch(Q["stats_of_tests"], list(test_ids))
        found = {row["test_id"]: _history(row) for row in rows}
        return {t: summary(t, found.get(t)) for t in test_ids}
