"""The queue loses jobs while the relay's marker survives: no run waits forever.

``DEL runs:queue`` after the relay published a run's job, with no worker up yet: the relay
notices the queue is gone and re-enqueues the queued runs of the log. When a worker re-creates
an empty queue first (so queue and group look fine), the run is enqueued again once it has
been queued for ``QUEUED_RUN_REPAIR_SECONDS``. ``FLUSHALL``, ``DEL runs:queue`` and
``XGROUP DESTROY`` under workers blocked in ``XREADGROUP``: the runs queued before and after
all finish.
"""

from __future__ import annotations

import asyncpg
import pytest
import redis.asyncio as aioredis

from ledger.store import PgEventStore
from ledger.streams import QUEUE, WORKER_GROUP
from runledger.testing import wait_for_position, wait_until
from tests.faults.cluster import Cluster, submit
from tests.faults.invariants import check, settle

pytestmark = pytest.mark.integration


async def job_published(redis: aioredis.Redis, run_id: object) -> bool:
    entries = await redis.xrange(QUEUE)
    return any(fields.get("run_id") == str(run_id) for _, fields in entries)


async def test_queue_deleted_after_publishing_the_run_still_completes(
    cluster: Cluster, pool: asyncpg.Pool, database_url: str, redis: aioredis.Redis,
    store: PgEventStore,
) -> None:
    projector = await cluster.projector()
    [run_id] = await submit(store, 1, "pass")
    await wait_until(lambda: job_published(redis, run_id), what="the relay to publish the job")
    await redis.delete(QUEUE)
    await projector.logged(f"relay: {QUEUE} is gone while the marker survived")
    await cluster.worker()
    await settle(pool, redis, [run_id])
    tally = await check(pool, database_url, redis, [run_id])
    assert tally.violations == []


async def test_a_queue_recreated_empty_is_repaired_by_the_age_of_its_queued_runs(
    cluster: Cluster, pool: asyncpg.Pool, database_url: str, redis: aioredis.Redis,
    store: PgEventStore,
) -> None:
    projector = await cluster.projector()
    [run_id] = await submit(store, 1, "pass")
    await wait_until(lambda: job_published(redis, run_id), what="the relay to publish the job")
    await wait_for_position(pool, "runs")
    # As a worker does on NOGROUP: an empty queue with its group, in one step, so the relay
    # never sees the queue missing — only the run's age can tell its job is gone.
    async with redis.pipeline(transaction=True) as pipe:
        pipe.delete(QUEUE)
        pipe.xgroup_create(QUEUE, WORKER_GROUP, id="$", mkstream=True)
        await pipe.execute()
    await projector.logged(f"relay: run_id={run_id} queued for over 2s without a job")
    await cluster.worker()
    await settle(pool, redis, [run_id])
    tally = await check(pool, database_url, redis, [run_id])
    assert tally.violations == []
    assert projector.count("is gone while the marker survived") == 0


@pytest.mark.redis_servers  # Redis 7 answers a blocked read on a wiped queue differently
async def test_queue_wiped_under_blocked_workers(
    cluster: Cluster, pool: asyncpg.Pool, database_url: str, redis: aioredis.Redis,
    store: PgEventStore, fault_trials: int,
) -> None:
    await cluster.projector()
    workers = [await cluster.worker(), await cluster.worker()]
    run_ids = await submit(store, 4, "pass", "pass")
    await settle(pool, redis, run_ids)
    for _ in range(fault_trials):
        for wipe in WIPES:
            # Both workers are blocked in XREADGROUP on an idle queue now.
            await wipe(redis)
            run_ids += await submit(store, 6, "pass", "work 0.05", "pass")
            await settle(pool, redis, run_ids)
    assert all(w.alive for w in workers), [w.text()[-2000:] for w in workers if not w.alive]
    tally = await check(pool, database_url, redis, run_ids)
    print(tally.line(f"FLUSHALL, DEL runs:queue, XGROUP DESTROY under blocked workers "
                     f"x{fault_trials}"))
    assert tally.violations == []


async def flushall(redis: aioredis.Redis) -> None:
    await redis.flushall()


async def delete_queue(redis: aioredis.Redis) -> None:
    await redis.delete(QUEUE)


async def destroy_group(redis: aioredis.Redis) -> None:
    await redis.xgroup_destroy(QUEUE, WORKER_GROUP)


WIPES = (flushall, delete_queue, destroy_group)
