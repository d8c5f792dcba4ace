"""Stuck-run recovery against the real ``runs`` read model: one ``timed-out`` however many
workers recover at once; never for a run whose worker is alive, or that moved on."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from uuid import UUID

import asyncpg
import pytest
import redis.asyncio as aioredis

from ledger.domain import StepResult
from ledger.store import PgEventStore
from ledger.streams import QUEUE
from projections.queries import RunQueries
from tests.worker.conftest import (
    event_types,
    queue_run,
    running_worker,
    wait_row,
    wait_until,
)
from worker.queue import RedisRunQueue
from worker.recovery import StuckRunRecovery

pytestmark = pytest.mark.integration


async def started_by_ghost(store: PgEventStore) -> UUID:
    """A run started by a worker that then died (no lease, no progress)."""
    run_id = await queue_run(store, "pass", "pass")
    run = await store.load_run(run_id)
    run.start(worker="ghost", browser={})
    await store.save(run)
    return run_id


async def recovery(
    pool: asyncpg.Pool, store: PgEventStore, redis: aioredis.Redis
) -> StuckRunRecovery:
    queue = RedisRunQueue(redis, f"r-{uuid.uuid4().hex[:6]}", claim_idle_seconds=1,
                          block_seconds=0.05)
    await queue.ensure_group()
    # Timeout 0: every running run qualifies at once, so only the safeguards decide.
    return StuckRunRecovery(RunQueries(pool), store, queue, timeout_seconds=0,
                            interval_seconds=1, claim_idle_seconds=1)


@pytest.mark.usefixtures("projector")
async def test_many_workers_recovering_at_once_append_one_event(
    pool: asyncpg.Pool, store: PgEventStore, redis: aioredis.Redis,
) -> None:
    runs = [await started_by_ghost(store) for _ in range(5)]
    for run_id in runs:
        await wait_row(pool, run_id, "running")
    recoveries = [await recovery(pool, store, redis) for _ in range(4)]
    results = await asyncio.gather(*(r.check() for r in recoveries))
    assert sorted(run for result in results for run in result) == sorted(runs)
    for run_id in runs:
        assert await event_types(store, run_id) == ["queued", "started", "timed-out"]
        row = await wait_row(pool, run_id, "failed")
        assert row["error"] == "Execution timeout"
        assert row["completed_at"] is not None
    timed_out = (await store.read_run(runs[0]))[-1].data
    assert (timed_out["message"], timed_out["detected_by"]) == ("Execution timeout", "recovery")


@pytest.mark.usefixtures("projector")
async def test_a_run_whose_job_a_live_worker_keeps_fresh_is_left_alone(
    pool: asyncpg.Pool, store: PgEventStore, redis: aioredis.Redis,
) -> None:
    run_id = await started_by_ghost(store)
    await wait_row(pool, run_id, "running")
    owner = RedisRunQueue(redis, "owner", claim_idle_seconds=0.3, block_seconds=0.05)
    await owner.ensure_group()
    await redis.xadd(QUEUE, {"run_id": str(run_id), "attempt": "1"})
    [job] = await owner.read(1)  # the owner is executing it, and keeps its job fresh
    check = await recovery(pool, store, redis)
    # Renewed just before the pass, as a live owner does: the lease is then fresh by a
    # claim-idle period, whatever setting the recovery up took on a loaded machine.
    await owner.keep_fresh([job.entry_id])
    assert await check.check() == []
    assert await event_types(store, run_id) == ["queued", "started"]

    async def timed_out_once_abandoned() -> list[UUID]:
        return await check.check()  # the owner stopped refreshing: it died or gave up

    assert await wait_until(timed_out_once_abandoned, within=5, what="recovery") == [run_id]
    assert job.deliveries == 1
    # Its lease lapsed: the run names the lost worker, not a slow test.
    timed_out = (await store.read_run(run_id))[-1].data
    assert timed_out["detected_by"] == "lease"
    assert timed_out["message"].startswith("worker ghost was lost: its lease on the run lapsed")
    assert "CLAIM_IDLE_SECONDS=1)" in timed_out["message"]


async def test_a_run_that_moved_on_since_the_read_model_saw_it_is_left_alone(
    database_url: str, redis_url: str, pool: asyncpg.Pool, store: PgEventStore,
    redis: aioredis.Redis,
) -> None:
    """The read model lags the log: recovery appends at the version the read model showed,
    so a run that recorded a step meanwhile is not timed out."""
    from projections.service import ProjectorSettings, run_projector

    run_id = await started_by_ghost(store)
    settings = ProjectorSettings(database_url=database_url, redis_url=redis_url)
    stop = asyncio.Event()
    projector = asyncio.create_task(run_projector(settings, stop))
    await wait_row(pool, run_id, "running")
    stop.set()
    await projector
    run = await store.load_run(run_id)  # progress the projection has not seen
    run.record_step(StepResult(index=0, action="click", instruction="pass", status="passed"))
    await store.save(run)
    assert await RunQueries(pool).stuck_runs(datetime.now(UTC), 10) == [(run_id, 2)]
    assert await (await recovery(pool, store, redis)).check() == []
    assert await event_types(store, run_id) == ["queued", "started", "step"]


@pytest.mark.usefixtures("projector")
async def test_recovery_racing_live_workers_never_times_out_a_progressing_run(
    database_url: str, redis_url: str, pool: asyncpg.Pool, store: PgEventStore,
) -> None:
    """Two workers recover every 50 ms with a 0.6 s lease while one of them runs a run of
    short steps and one 1.5 s step (no event for more than two lease periods): its worker
    renewing the lease keeps recovery off it; the run passes."""
    fast = {"recovery_check_interval_seconds": 0.05, "claim_idle_seconds": 0.6,
            "run_timeout_seconds": 10, "run_finish_grace_seconds": 1,
            "stuck_run_timeout_minutes": 0.2}
    cues = ["work 0.1"] * 6 + ["work 1.5", "pass"]
    async with (running_worker(database_url, redis_url, **fast),
                running_worker(database_url, redis_url, **fast)):
        run_id = await queue_run(store, *cues)
        row = await wait_row(pool, run_id, "passed", within=30)
    assert row["steps_passed"] == len(cues)
    assert "timed-out" not in await event_types(store, run_id)
