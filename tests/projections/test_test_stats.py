"""The test_stats read model: results per test in finishing order, the window, flip rate and
the flaky mark (pure); the follower across batch boundaries and ``rebuild`` (real
PostgreSQL) give the rows one fold of the whole log gives."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from ledger.codec import RecordedEvent
from ledger.store import PgEventStore, read_log_entries
from projections import test_stats
from projections.rebuild import rebuild
from projections.test_stats import WINDOW, History, Pending, fold, summary
from runledger.testing import wait_for_position

from .conftest import running, write_runs

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def event(run_id: uuid.UUID, version: int, kind: str, seconds: float = 0,
          **data: Any) -> RecordedEvent:
    return RecordedEvent(version, run_id, version, kind,
                         (T0 + timedelta(seconds=seconds)).isoformat(), data)


def lifecycle(test_id: str, outcome: str, start: float = 0) -> list[RecordedEvent]:
    run = uuid.uuid4()
    events = [event(run, 1, "queued", start, test_id=test_id),
              event(run, 2, "started", start + 1)]
    if outcome in ("passed", "failed"):
        events.append(event(run, 3, "completed", start + 3, status=outcome, duration_ms=2000))
    else:
        events.append(event(run, 3, outcome, start + 4, message="x", reason="x"))
    return events


@pytest.mark.unit
def test_alternating_results_are_flaky_and_one_flip_is_not() -> None:
    flaky = History("t")
    for status in ("passed", "failed", "passed", "failed"):
        flaky = flaky.add({"run_id": "r", "status": status, "duration_ms": 1,
                           "finished_at": T0.isoformat()})
    stats = summary("t", flaky)
    assert (stats["flips"], stats["flip_rate"], stats["flaky"]) == (3, 1.0, True)
    assert (stats["pass_rate"], stats["window"], stats["runs"]) == (0.5, 4, 4)
    assert [r["status"] for r in stats["recent"]] == ["failed", "passed", "failed", "passed"]

    regressed = History("t")
    for status in ("passed", "passed", "passed", "failed"):
        regressed = regressed.add({"run_id": "r", "status": status, "duration_ms": 1,
                                   "finished_at": T0.isoformat()})
    assert (summary("t", regressed)["flips"], summary("t", regressed)["flaky"]) == (1, False)


@pytest.mark.unit
def test_no_results_have_no_rates_and_the_window_keeps_the_latest() -> None:
    empty = summary("t", None)
    assert (empty["pass_rate"], empty["flip_rate"], empty["runs"], empty["recent"]) == (
        None, None, 0, [])
    history = History("t")
    for n in range(WINDOW + 5):
        history = history.add({"run_id": str(n), "status": "passed", "duration_ms": n,
                               "finished_at": T0.isoformat()})
    stats = summary("t", history)
    assert (stats["runs"], stats["passed"], stats["window"]) == (WINDOW + 5, WINDOW + 5, WINDOW)
    assert stats["recent"][0]["run_id"] == str(WINDOW + 4)
    assert stats["recent"][-1]["run_id"] == "5"


@pytest.mark.unit
def test_fold_counts_terminal_events_and_leaves_cancelled_runs_out() -> None:
    events = (lifecycle("a", "passed") + lifecycle("a", "errored", 10)
              + lifecycle("a", "cancelled", 20) + lifecycle("b", "timed-out", 30))
    touched, ended, changed = fold(events, {}, {})
    assert touched == {} and len(ended) == 4
    a = [(r["status"], r["duration_ms"]) for r in changed["a"].recent]
    assert a == [("passed", 2000), ("failed", 3000)]  # errored: from start to the event
    assert [r["status"] for r in changed["b"].recent] == ["failed"]


@pytest.mark.unit
def test_fold_ends_runs_queued_in_an_earlier_batch() -> None:
    first, rest = lifecycle("a", "passed")[:1], lifecycle("a", "passed")[1:]
    touched, ended, changed = fold(first, {}, {})
    assert list(touched.values()) == [Pending("a")] and not ended and not changed
    # The next batch: a run the model already holds as pending, another one unknown.
    other = lifecycle("a", "failed", 5)[1:]
    run = first[0].run_id
    rest = [event(run, e.version, e.type, 1 + i, **e.data) for i, e in enumerate(rest)]
    before = {"a": History("a", 1, 1, ({"run_id": "old", "status": "passed",
                                        "duration_ms": 5, "finished_at": T0.isoformat()},))}
    touched, ended, changed = fold(rest + other, touched, before)
    assert ended == {run}
    assert [r["run_id"] for r in changed["a"].recent] == ["old", str(run)]
    assert before["a"].runs == 1  # the input is left alone


async def _rows(pool: asyncpg.Pool) -> list[dict[str, Any]]:
    return [dict(r) for r in await pool.fetch(
        "SELECT test_id, runs, passed, recent FROM test_stats ORDER BY test_id")]


@pytest.mark.integration
async def test_follower_and_rebuild_equal_one_fold_of_the_log(
    pool: asyncpg.Pool, database_url: str, store: PgEventStore
) -> None:
    await write_runs(store, 40, seed=7)
    log = [e for e in await read_log_entries(pool, 0, 10_000) if isinstance(e, RecordedEvent)]
    _, _, expected = fold(log, {}, {})
    assert len(expected) == 3 and sum(h.runs for h in expected.values()) > 10

    # Small batches: most runs end in a later batch than the one that queued them.
    async with running(test_stats.MODEL.follower(), pool, database_url, batch_size=3):
        await wait_for_position(pool, test_stats.NAME)
    live = await _rows(pool)
    assert [(r["test_id"], r["runs"], r["passed"], r["recent"]) for r in live] == [
        (h.test_id, h.runs, h.passed, list(h.recent))
        for h in sorted(expected.values(), key=lambda h: h.test_id)]
    pending = await pool.fetchval("SELECT count(*) FROM test_stats_pending")
    assert pending == len({e.run_id for e in log} - {e.run_id for e in log if e.type in (
        "completed", "errored", "timed-out", "cancelled")})

    await rebuild(database_url, [test_stats.MODEL], batch_size=11)
    assert await _rows(pool) == live
