"""Lost replies: an append commits, its reply never arrives and the read that follows fails
too. Through a fault-injecting proxy in front of the real PostgreSQL, for ``started``,
``step`` and the terminal append: the run still ends as it should, with exactly one terminal
event, and its job is acknowledged only once that event exists."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest
import redis.asyncio as aioredis

from ledger.aio import Backoff
from ledger.db import create_pool
from ledger.domain import TERMINAL_TYPES, Run
from ledger.store import PgEventStore
from tests.worker.conftest import enqueue, event_types, pending_entries, queue_run
from tests.worker.proxy import CuttableProxy
from tests.worker.scripted import ScriptedExecutor
from worker.consumer import ConsumerConfig, RunConsumer
from worker.queue import Job, RedisRunQueue

pytestmark = pytest.mark.integration


class WatchedQueue(RedisRunQueue):
    """The real queue, noting what the ledger held for the job's run at each ack."""

    def __init__(self, store: PgEventStore, redis: aioredis.Redis) -> None:
        super().__init__(redis, "w1", claim_idle_seconds=30, block_seconds=0.05)
        self._store = store
        self.acked_with: list[list[str]] = []

    async def ack(self, job: Job) -> None:
        self.acked_with.append(await event_types(self._store, job.run_id))
        await super().ack(job)


@pytest.fixture
async def proxy(database_url: str) -> AsyncIterator[CuttableProxy]:
    proxy = CuttableProxy(database_url)
    await proxy.start()
    try:
        yield proxy
    finally:
        await proxy.close()


@pytest.fixture
async def proxied_pool(proxy: CuttableProxy) -> AsyncIterator[asyncpg.Pool]:
    # No floor to restore in the background: the next request through the proxy after the
    # lost reply is then the writer's own read.
    pool = await create_pool(proxy.url, min_size=0, max_size=4)
    try:
        yield pool
    finally:
        pool.terminate()


@pytest.mark.parametrize(
    "topic", [Run.Started.TOPIC, Run.StepRecorded.TOPIC, Run.Completed.TOPIC],
    ids=["started", "step", "terminal"],
)
async def test_a_lost_reply_after_commit_is_recognised_and_the_run_ends_once(
    store: PgEventStore, proxied_pool: asyncpg.Pool, proxy: CuttableProxy,
    redis: aioredis.Redis, redis_url: str, topic: str,
) -> None:
    run_id = await queue_run(store, "pass", "pass")
    queue = WatchedQueue(store, redis)
    await queue.ensure_group()
    await enqueue(redis, run_id)
    [job] = await queue.read(1)
    executor = ScriptedExecutor(redis_url)
    await executor.open()
    consumer = RunConsumer(
        PgEventStore(proxied_pool), proxied_pool, queue, executor,
        ConsumerConfig(consumer="w1", max_deliveries=3, run_timeout_seconds=30),
        backoff=Backoff(base_seconds=0.01),
    )
    proxy.lose_reply(topic.encode())
    try:
        result = await consumer.handle(job)
    finally:
        await executor.close()
    assert proxy.reply_lost.is_set() and proxy.read_failed.is_set()  # the fault happened
    # Without the writer keeping what it sent, the same faults made this "skipped" (the
    # run left running for recovery), "errored" (a recorded step) and "completed".
    assert result == "passed"
    types = await event_types(store, run_id)
    assert types == ["queued", "started", "step", "step", "completed"]
    assert executor.executions == [run_id]
    assert await pending_entries(redis) == 0
    assert queue.acked_with == [types]  # acknowledged once, after the terminal event
    assert sum(t in TERMINAL_TYPES for t in types) == 1
