"""The retry process manager: a failed run with retries left gets its next attempt queued,
once, linked to the first; cancelled, blocked and used-up runs get none."""

from __future__ import annotations

from uuid import UUID

import asyncpg
import pytest

from ledger.domain import Run, StepResult
from ledger.retries import attempt_id
from ledger.store import PgEventStore
from projections.retries import RetryManager
from runledger.testing import log_head, wait_for_position
from tests.projections.conftest import BROWSER, advance, running

pytestmark = pytest.mark.integration


def _run(retries: int, *, attempt: int = 1, first: UUID | None = None) -> Run:
    return Run.queue(
        test_id="t-r", test_name="flaky", url="http://127.0.0.1/",
        steps=[{"action": "click", "instruction": "Click 'Go'"}], attempt=attempt,
        retries=retries, first_run_id=first,
        run_id=attempt_id(first, attempt) if first else None,
    )


def _blocked(run: Run) -> None:
    run.start(worker="w-1", browser=BROWSER)
    run.record_step(StepResult(index=0, action="click", instruction="Click 'Go'",
                               status="failed", error="navigation blocked by policy",
                               details={"error_kind": "navigation_blocked"}))
    run.complete(status="failed", duration_ms=5, error="navigation blocked", error_step=0)


async def _attempts(store: PgEventStore, first: UUID, upto: int = 4) -> list[dict[str, object]]:
    found = []
    for attempt in range(2, upto + 1):
        events = await store.read_run(attempt_id(first, attempt))
        if events:
            found.append(events[0].data)
    return found


async def test_failed_runs_are_retried_until_the_retries_are_used(
    pool: asyncpg.Pool, database_url: str, store: PgEventStore
) -> None:
    first = _run(retries=2)
    advance(first, "failed")
    cancelled = _run(retries=3)
    advance(cancelled, "cancelled")
    passed = _run(retries=3)
    advance(passed, "passed")
    blocked = _run(retries=3)
    _blocked(blocked)
    for run in (first, cancelled, passed, blocked):
        await store.save(run)

    async with running(RetryManager(pool).follower(), pool, database_url):
        await wait_for_position(pool, "retries")
        second = await store.load_run(attempt_id(first.id, 2))
        assert (second.attempt, second.first_run_id, second.retries) == (2, str(first.id), 2)
        assert second.steps == first.steps and second.test_id == first.test_id
        advance(second, "errored")  # an infrastructure error is retried too
        await store.save(second)
        await wait_for_position(pool, "retries", await log_head(pool))
        third = await store.load_run(attempt_id(first.id, 3))
        assert third.attempt == 3
        advance(third, "failed")  # the last of 1 + 2 attempts: no fourth
        await store.save(third)
        await wait_for_position(pool, "retries", await log_head(pool))

    assert len(await _attempts(store, first.id)) == 2
    for run in (cancelled, passed, blocked):
        assert await _attempts(store, run.id) == []


async def test_a_retry_is_queued_once_when_the_same_events_are_applied_again(
    pool: asyncpg.Pool, store: PgEventStore
) -> None:
    run = _run(retries=1)
    advance(run, "timed-out")
    await store.save(run)
    manager = RetryManager(pool)
    events = await store.read_run(run.id)
    for _ in range(2):  # e.g. a stale instance's batch after a failover
        async with pool.acquire() as conn, conn.transaction():
            await manager.apply(conn, events)
    assert len(await store.read_run(attempt_id(run.id, 2))) == 1
