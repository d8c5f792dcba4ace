"""No answer of Redis stops a worker: the queue or its group vanishing under blocked reads
(FLUSHALL, DEL, XGROUP DESTROY — Valkey answers NOGROUP, Redis 7 UNBLOCKED), Redis out of
memory, and a job that fails unexpectedly beside another. Each test runs on Valkey and on
Redis 7 (``redis_servers``) with a worker in this process and the scripted executor."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any
from uuid import UUID

import pytest
import redis.asyncio as aioredis

from ledger.store import PgEventStore
from ledger.streams import DEAD, QUEUE, WORKER_GROUP
from runledger.testing import wait_until
from tests.worker.conftest import (
    enqueue,
    queue_run,
    reached,
    release,
    running_worker,
    wait_terminal,
)
from worker.consumer import RunConsumer

pytestmark = [pytest.mark.integration, pytest.mark.redis_servers]

DONE = ["queued", "started", "step", "completed"]


async def blocked_readers(redis: aioredis.Redis) -> int:
    """Clients blocked in XREADGROUP right now (the workers waiting for jobs)."""
    return sum(1 for client in await redis.client_list()
               if client.get("cmd") == "xreadgroup" and "b" in client.get("flags", ""))


async def run_once(store: PgEventStore, redis: aioredis.Redis) -> UUID:
    run_id = await queue_run(store, "pass")
    await enqueue(redis, run_id)
    return run_id


@pytest.fixture
async def oom_ready(redis: aioredis.Redis) -> AsyncIterator[None]:
    """Restores the memory settings a test changes (the server is shared by the session)."""
    before = await redis.config_get("maxmemory*")
    try:
        yield
    finally:
        await redis.config_set("maxmemory", before["maxmemory"])
        await redis.config_set("maxmemory-policy", before["maxmemory-policy"])


WIPES = {
    "FLUSHALL": ("FLUSHALL",),
    "DEL runs:queue": ("DEL", QUEUE),
    "XGROUP DESTROY": ("XGROUP", "DESTROY", QUEUE, WORKER_GROUP),
}


@pytest.mark.parametrize("wipe", list(WIPES))
async def test_the_queue_vanishing_under_blocked_workers_is_survived(
    database_url: str, redis_url: str, redis: aioredis.Redis, store: PgEventStore,
    caplog: pytest.LogCaptureFixture, wipe: str,
) -> None:
    caplog.set_level(logging.INFO, logger="worker")
    async with running_worker(database_url, redis_url, worker_block_seconds=1.0) as worker, \
            running_worker(database_url, redis_url, worker_block_seconds=1.0) as other:
        await wait_until(lambda: _at_least(blocked_readers(redis), 2),
                         what="both workers to block in XREADGROUP")
        await redis.execute_command(*WIPES[wipe])
        await wait_until(lambda: _logged(caplog, "re-creating it"),
                         what="a worker to notice the group is gone")
        for _ in range(3):
            run_id = await run_once(store, redis)
            assert await wait_terminal(store, run_id) == DONE
        assert not worker.task.done() and not other.task.done()


async def test_out_of_memory_is_waited_out(
    database_url: str, redis_url: str, redis: aioredis.Redis, store: PgEventStore,
    caplog: pytest.LogCaptureFixture, oom_ready: None,
) -> None:
    caplog.set_level(logging.INFO, logger="worker")
    async with running_worker(database_url, redis_url) as worker:
        await wait_until(lambda: _at_least(blocked_readers(redis), 1),
                         what="the worker to block in XREADGROUP")
        await redis.config_set("maxmemory-policy", "noeviction")
        await redis.config_set("maxmemory", 1)
        # The group goes while Redis refuses writes: it cannot be re-created for now.
        await redis.execute_command(*WIPES["XGROUP DESTROY"])
        await wait_until(lambda: _logged(caplog, "Could not re-create the consumer group"),
                         what="the re-creation to be refused")
        assert not worker.task.done()
        # A job to dead-letter: the letter is a write that Redis refuses too.
        await redis.config_set("maxmemory", 0)
        await wait_until(lambda: _group_exists(redis), what="the group to be re-created")
        async with redis.pipeline(transaction=True) as both:  # the job, then no memory
            both.xadd(QUEUE, {"nonsense": "1"})
            both.config_set("maxmemory", 1)
            await both.execute()
        await wait_until(lambda: _logged(caplog, "Job left pending after persistent errors"),
                         what="the dead letter to be refused and the job left pending")
        assert not worker.task.done()
        await redis.config_set("maxmemory", 0)
        await wait_until(lambda: _dead_letters(redis), what="the job to be dead-lettered")
        run_id = await run_once(store, redis)
        assert await wait_terminal(store, run_id) == DONE
        assert not worker.task.done()


async def test_a_job_that_fails_unexpectedly_ends_alone(
    database_url: str, redis_url: str, redis: aioredis.Redis, store: PgEventStore,
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    doomed: set[UUID] = set()
    handle = RunConsumer.handle

    async def failing_for_doomed(self: RunConsumer, job: Any) -> str:
        if job.run_id in doomed:
            raise RuntimeError("a bug met by one job")
        return await handle(self, job)

    monkeypatch.setattr(RunConsumer, "handle", failing_for_doomed)
    async with running_worker(database_url, redis_url, worker_concurrency=2) as worker:
        survivor = await queue_run(store, "gate survivor", "pass")
        await enqueue(redis, survivor)
        await reached(redis, "survivor")
        victim = await queue_run(store, "pass")
        doomed.add(victim)
        await enqueue(redis, victim)
        await wait_until(lambda: _logged(caplog, "failed unexpectedly"),
                         what="the doomed job to fail")
        await release(redis, "survivor")
        assert await wait_terminal(store, survivor) == [
            "queued", "started", "step", "step", "completed"]
        assert not worker.task.done()
        # The failed job is left pending, for a reclaim once idle (the survivor's is
        # acknowledged just after its terminal event).
        await wait_until(lambda: _only_pending(redis, victim),
                         what="only the failed job to stay pending")


async def _only_pending(redis: aioredis.Redis, run_id: UUID) -> bool:
    pending = await redis.xpending_range(QUEUE, WORKER_GROUP, "-", "+", 10)
    entries = [await redis.xrange(QUEUE, p["message_id"], p["message_id"]) for p in pending]
    return [fields["run_id"] for entry in entries for _, fields in entry] == [str(run_id)]


async def _group_exists(redis: aioredis.Redis) -> bool:
    try:
        return bool(await redis.xinfo_groups(QUEUE))
    except aioredis.ResponseError:
        return False


async def _dead_letters(redis: aioredis.Redis) -> int:
    return int(await redis.xlen(DEAD))


async def _at_least(count: Any, minimum: int) -> bool:
    return bool(await count >= minimum)


async def _logged(caplog: pytest.LogCaptureFixture, needle: str) -> bool:
    return needle in caplog.text
