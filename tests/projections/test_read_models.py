"""The runs and run_steps read models: what each lifecycle becomes, whatever the batching."""

from __future__ import annotations

import random
from datetime import datetime

import asyncpg
import pytest

from ledger.store import PgEventStore
from projections import runs, steps
from projections.errors import FollowerError
from projections.run_row import fold_runs

from .conftest import advance, new_run, write_runs


async def apply_log(pool: asyncpg.Pool, batch_size: int) -> None:
    """Apply the whole log to both models in batches of ``batch_size``, one transaction each."""
    store = PgEventStore(pool)
    async with pool.acquire() as conn:
        async for batch in store.iter_after(0, batch_size):
            async with conn.transaction():
                await runs.apply(conn, batch)
                await steps.apply(conn, batch)


@pytest.mark.integration
async def test_each_lifecycle_becomes_its_row(pool: asyncpg.Pool, store: PgEventStore) -> None:
    made = {}
    for outcome in ("passed", "failed", "errored", "timed-out", "running", "queued"):
        run = new_run(f"t-{outcome}")
        advance(run, outcome, steps=3)
        await store.save(run)
        made[outcome] = run
    cancelled = new_run("t-cancel")
    cancelled.start(worker="w-9", browser={})
    cancelled.cancel(reason="user pressed stop")
    await store.save(cancelled)
    await apply_log(pool, batch_size=1000)

    rows = {r["test_id"]: r for r in map(dict, await pool.fetch("SELECT * FROM runs"))}
    passed = rows["t-passed"]
    assert passed["status"] == "passed" and passed["worker"] == "w-1"
    assert (passed["steps_passed"], passed["steps_failed"]) == (3, 0)
    assert passed["duration_ms"] == 123 and passed["error"] is None
    assert passed["version"] == 6 and passed["attempt"] == 1
    assert passed["test_name"] == "test t-passed"
    assert passed["created_at"] <= passed["started_at"] <= passed["completed_at"]
    assert passed["last_event_at"] == passed["completed_at"]

    failed = rows["t-failed"]
    assert failed["status"] == "failed" and failed["error"] == "step failed"
    assert (failed["steps_passed"], failed["steps_failed"], failed["error_step"]) == (2, 1, 2)

    errored = rows["t-errored"]
    assert errored["status"] == "failed" and errored["error"] == "browser crashed"
    assert errored["error_step"] == 2 and errored["completed_at"] is not None
    assert errored["duration_ms"] == _ms(errored["completed_at"] - errored["started_at"])

    timed_out = rows["t-timed-out"]
    assert timed_out["status"] == "failed" and timed_out["error"] == "Execution timeout"
    assert timed_out["completed_at"] is not None and timed_out["duration_ms"] is not None

    running = rows["t-running"]
    assert running["status"] == "running" and running["completed_at"] is None
    assert running["steps_passed"] == 3 and running["version"] == 5

    queued = rows["t-queued"]
    assert queued["status"] == "queued" and queued["started_at"] is None
    assert queued["worker"] is None and queued["version"] == 1

    stopped = rows["t-cancel"]
    assert stopped["status"] == "cancelled" and stopped["error"] == "user pressed stop"
    assert stopped["completed_at"] is not None

    step_rows = await pool.fetch(
        "SELECT * FROM run_steps WHERE run_id = $1 ORDER BY index", made["failed"].id)
    assert [(s["index"], s["status"], s["healed"]) for s in step_rows] == [
        (0, "passed", False), (1, "passed", True), (2, "failed", False)]
    last = dict(step_rows[2])
    assert last["error"] == "not found" and last["strategy"] == "dom"
    assert last["artifacts"] == [{"id": "a2", "kind": "screenshot", "size": 3}]
    assert last["details"] == {"locator": "#b2"} and last["attempts"] == 1
    assert last["action"] == "click" and last["instruction"] == "Click #2"
    assert last["duration_ms"] == 12 and last["url"] == "http://127.0.0.1/"
    assert isinstance(last["recorded_at"], datetime)


def _ms(delta: object) -> int:
    return round(delta.total_seconds() * 1000)  # type: ignore[attr-defined]


@pytest.mark.integration
@pytest.mark.parametrize("batch_size", [1, 2, 7])
async def test_batching_does_not_change_the_rows(
    pool: asyncpg.Pool, database_url: str, store: PgEventStore, batch_size: int
) -> None:
    """Runs split across batches at every point fold to the same rows as one big batch."""
    await write_runs(store, 30, seed=batch_size)
    await apply_log(pool, batch_size=10_000)
    expected_runs = await pool.fetch("SELECT * FROM runs ORDER BY id")
    expected_steps = await pool.fetch("SELECT * FROM run_steps ORDER BY run_id, index")
    await pool.execute("TRUNCATE runs, run_steps")
    await apply_log(pool, batch_size=batch_size)
    assert await pool.fetch("SELECT * FROM runs ORDER BY id") == expected_runs
    assert await pool.fetch("SELECT * FROM run_steps ORDER BY run_id, index") == expected_steps
    step_events = await pool.fetch(
        "SELECT originator_id, count(*) FROM stored_events "
        "WHERE topic = 'runledger:Run.StepRecorded' GROUP BY originator_id")
    counts = {r["id"]: r["steps_passed"] + r["steps_failed"] for r in expected_runs}
    assert {r[0]: r[1] for r in step_events} == {k: v for k, v in counts.items() if v}


@pytest.mark.integration
async def test_events_of_a_run_without_a_row_fail_loudly(
    pool: asyncpg.Pool, store: PgEventStore
) -> None:
    run = new_run()
    advance(run, "running", steps=1)
    await store.save(run)
    events = await store.read_after(0)
    async with pool.acquire() as conn:
        with pytest.raises(FollowerError, match=str(run.id)):
            await runs.apply(conn, events[1:])


@pytest.mark.integration
async def test_a_step_applied_twice_is_refused(pool: asyncpg.Pool, store: PgEventStore) -> None:
    run = new_run()
    advance(run, "passed", steps=1)
    await store.save(run)
    events = await store.read_after(0)
    async with pool.acquire() as conn:
        await steps.apply(conn, events)
        with pytest.raises(asyncpg.UniqueViolationError):
            await steps.apply(conn, events)


@pytest.mark.integration
def test_fold_runs_is_one_row_per_run_in_first_seen_order() -> None:
    rng = random.Random(3)
    a, b = new_run("a"), new_run("b")
    advance(a, "passed", steps=2, rng=rng)
    advance(b, "running", steps=1, rng=rng)
    from ledger.codec import RecordedEvent

    events = []
    for n, event in enumerate([*a.collect_events(), *b.collect_events()], start=1):
        state = dict(event.__dict__)
        events.append(RecordedEvent(
            n, state.pop("originator_id"), state.pop("originator_version"),
            type(event).TYPE, state.pop("timestamp").isoformat(), state))
    patches = list(fold_runs(events, {}).values())
    assert [p.id for p in patches] == [a.id, b.id]
    assert (patches[0].status, patches[0].steps_passed, patches[0].version) == ("passed", 2, 5)
    assert (patches[1].status, patches[1].worker, patches[1].version) == ("running", "w-1", 3)
