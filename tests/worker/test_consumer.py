"""``RunConsumer`` with a scripted executor, real PostgreSQL and Valkey: what each kind of job
and each executor ending turns into — events, acknowledgements, dead letters."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from uuid import UUID

import asyncpg
import orjson
import pytest
import redis.asyncio as aioredis

from ledger.aio import Backoff
from ledger.domain import Run
from ledger.store import PgEventStore
from ledger.streams import DEAD, QUEUE, WORKER_GROUP
from tests.worker.conftest import (
    enqueue,
    event_types,
    pending_entries,
    queue_run,
    reached,
    release,
)
from tests.worker.scripted import ScriptedExecutor
from worker.consumer import ConsumerConfig, RunConsumer
from worker.queue import STARTS_PREFIX, RedisRunQueue

pytestmark = [pytest.mark.integration, pytest.mark.redis_servers]


@pytest.fixture
async def executor(redis_url: str) -> AsyncIterator[ScriptedExecutor]:
    executor = ScriptedExecutor(redis_url)
    await executor.open()
    try:
        yield executor
    finally:
        await executor.close()


@pytest.fixture
async def queue(redis: aioredis.Redis) -> RedisRunQueue:
    queue = RedisRunQueue(redis, "w1", claim_idle_seconds=0.2, block_seconds=0.05)
    await queue.ensure_group()
    return queue


def consumer_for(
    store: PgEventStore, pool: asyncpg.Pool, queue: RedisRunQueue, executor: ScriptedExecutor, *,
    run_timeout: float = 30.0, name: str = "w1",
) -> RunConsumer:
    config = ConsumerConfig(consumer=name, max_deliveries=3, run_timeout_seconds=run_timeout)
    return RunConsumer(
        store, pool, queue, executor, config, backoff=Backoff(base_seconds=0.01)
    )


async def deliver(redis: aioredis.Redis, queue: RedisRunQueue, run_id: UUID | str):  # type: ignore[no-untyped-def]
    await enqueue(redis, run_id)
    [job] = await queue.read(1)
    return job


async def test_a_passing_run_is_recorded_then_acknowledged(
    store: PgEventStore, pool: asyncpg.Pool, redis: aioredis.Redis, queue: RedisRunQueue,
    executor: ScriptedExecutor,
) -> None:
    run_id = await queue_run(store, "pass", "pass", "pass")
    job = await deliver(redis, queue, run_id)
    assert await consumer_for(store, pool, queue, executor).handle(job) == "passed"
    events = await store.read_run(run_id)
    assert [e.type for e in events] == ["queued", "started", "step", "step", "step", "completed"]
    started, completed = events[1].data, events[-1].data
    assert (started["worker"], started["browser"], started["attempt"]) == (
        "w1", {"name": "scripted", "version": "1"}, 1)
    assert [e.data["index"] for e in events[2:5]] == [0, 1, 2]
    assert (completed["status"], completed["steps_completed"]) == ("passed", 3)
    assert await pending_entries(redis) == 0


async def test_a_failing_step_completes_the_run_as_failed(
    store: PgEventStore, pool: asyncpg.Pool, redis: aioredis.Redis, queue: RedisRunQueue,
    executor: ScriptedExecutor,
) -> None:
    run_id = await queue_run(store, "pass", "fail button missing", "pass")
    job = await deliver(redis, queue, run_id)
    assert await consumer_for(store, pool, queue, executor).handle(job) == "failed"
    events = await store.read_run(run_id)
    assert [e.type for e in events] == ["queued", "started", "step", "step", "completed"]
    assert events[-1].data.items() >= {
        "status": "failed", "error": "button missing", "error_step": 1, "steps_completed": 2
    }.items()


@pytest.mark.parametrize(
    ("cue", "kind", "message"),
    [("error page crashed", "browser", "page crashed"),
     ("crash boom", "crash", "executor crashed: RuntimeError('boom')"),
     ("big", "ledger", "step 1 could not be recorded")],
)
async def test_executor_failures_become_errored_keeping_earlier_steps(
    store: PgEventStore, pool: asyncpg.Pool, redis: aioredis.Redis, queue: RedisRunQueue,
    executor: ScriptedExecutor,
    cue: str, kind: str, message: str,
) -> None:
    run_id = await queue_run(store, "pass", cue, "pass")
    job = await deliver(redis, queue, run_id)
    assert await consumer_for(store, pool, queue, executor).handle(job) == "errored"
    events = await store.read_run(run_id)
    assert [e.type for e in events] == ["queued", "started", "step", "errored"]
    assert events[-1].data["kind"] == kind
    assert events[-1].data["message"].startswith(message)
    assert await pending_entries(redis) == 0


async def test_a_run_over_its_timeout_is_timed_out_by_the_worker(
    store: PgEventStore, pool: asyncpg.Pool, redis: aioredis.Redis, queue: RedisRunQueue,
    executor: ScriptedExecutor,
) -> None:
    run_id = await queue_run(store, "pass", "hang")
    job = await deliver(redis, queue, run_id)
    # The timeout also covers the first step and its append to the log, which a loaded
    # machine can stretch past a few tenths of a second: 1 s, the time the hang then takes.
    consumer = consumer_for(store, pool, queue, executor, run_timeout=1.0)
    assert await consumer.handle(job) == "timed-out"
    events = await store.read_run(run_id)
    assert [e.type for e in events] == ["queued", "started", "step", "timed-out"]
    assert events[-1].data.items() >= {
        "message": "Execution timeout", "detected_by": "worker", "timeout_seconds": 1.0
    }.items()
    assert executor.stopped == [(run_id, "interrupted")]


async def test_cancellation_is_noticed_between_steps(
    store: PgEventStore, pool: asyncpg.Pool, redis: aioredis.Redis, queue: RedisRunQueue,
    executor: ScriptedExecutor,
) -> None:
    gate = f"cancel-{uuid.uuid4().hex[:6]}"
    run_id = await queue_run(store, "pass", f"gate {gate}", "pass", "pass")
    job = await deliver(redis, queue, run_id)
    handling = asyncio.create_task(consumer_for(store, pool, queue, executor).handle(job))
    await reached(redis, gate)
    run = await store.load_run(run_id)  # as the API's cancel does
    run.cancel(reason="user asked")
    await store.save(run)
    await release(redis, gate)
    assert await handling == "cancelled"
    assert await event_types(store, run_id) == ["queued", "started", "step", "cancelled"]
    assert executor.stopped == [(run_id, "cancelled")]  # the executor was told to stop
    assert await pending_entries(redis) == 0


@pytest.mark.parametrize("state", ["running", "finished"])
async def test_a_job_whose_run_is_not_queued_is_acknowledged_and_skipped(
    store: PgEventStore, pool: asyncpg.Pool, redis: aioredis.Redis, queue: RedisRunQueue,
    executor: ScriptedExecutor,
    state: str,
) -> None:
    run_id = await queue_run(store, "pass")
    run = await store.load_run(run_id)
    run.start(worker="someone-else", browser={})
    if state == "finished":
        run.complete(status="passed", duration_ms=1)
    await store.save(run)
    job = await deliver(redis, queue, run_id)
    assert await consumer_for(store, pool, queue, executor).handle(job) == "skipped"
    assert executor.executions == []
    assert len(await store.read_run(run_id)) == run.version
    assert await pending_entries(redis) == 0


@pytest.mark.parametrize(
    ("fields", "reason"),
    [({"run_id": "not-a-uuid"}, "malformed job"), ({"attempt": "1"}, "malformed job"),
     ({"run_id": "00000000-0000-0000-0000-000000000001"}, "does not exist")],
)
async def test_malformed_and_unknown_jobs_are_dead_lettered(
    store: PgEventStore, pool: asyncpg.Pool, redis: aioredis.Redis, queue: RedisRunQueue,
    executor: ScriptedExecutor,
    fields: dict[str, str], reason: str,
) -> None:
    entry = await redis.xadd(QUEUE, fields)
    [job] = await queue.read(1)
    assert await consumer_for(store, pool, queue, executor).handle(job) == "dead"
    [(_, letter)] = await redis.xrange(DEAD)
    assert reason in letter["reason"]
    assert (letter["entry_id"], orjson.loads(letter["fields"])) == (entry, fields)
    assert await pending_entries(redis) == 0
    assert executor.executions == []


async def test_redeliveries_before_the_start_do_not_count_toward_max_deliveries(
    store: PgEventStore, pool: asyncpg.Pool, redis: aioredis.Redis, queue: RedisRunQueue,
    executor: ScriptedExecutor,
) -> None:
    """Outages: three consumers got the job and died (or lost the database) before the
    run's start. The fourth delivery starts and runs it: a healthy run is not poison."""
    run_id = await queue_run(store, "pass")
    entry = await enqueue(redis, run_id)
    await redis.xreadgroup(WORKER_GROUP, "dead-1", {QUEUE: ">"}, count=1)
    await redis.xclaim(QUEUE, WORKER_GROUP, "dead-3", 0, [entry], retrycount=3, idle=1000)
    [job] = await queue.reclaim(1)
    assert (job.entry_id, job.deliveries) == (entry, 4)
    assert await consumer_for(store, pool, queue, executor).handle(job) == "passed"
    assert await event_types(store, run_id) == ["queued", "started", "step", "completed"]
    assert await redis.xlen(DEAD) == 0 and await pending_entries(redis) == 0
    assert await redis.get(f"{STARTS_PREFIX}{entry}") == "1"


async def test_a_job_started_past_max_deliveries_is_dead_lettered_and_its_run_errored(
    store: PgEventStore, pool: asyncpg.Pool, redis: aioredis.Redis, queue: RedisRunQueue,
    executor: ScriptedExecutor,
) -> None:
    """A run that keeps killing its worker before anything is recorded: the worker (same
    name, e.g. restarted in place) recognises its own ``started`` each time and carries on;
    each of those deliveries reached the start, and past MAX_DELIVERIES=3 the run ends."""
    run_id = await queue_run(store, "pass")
    run = await store.load_run(run_id)
    run.start(worker="w1", browser={}, attempt=1)
    await store.save(run)
    entry = await enqueue(redis, run_id)
    await redis.xreadgroup(WORKER_GROUP, "w1", {QUEUE: ">"}, count=1)
    await redis.xclaim(QUEUE, WORKER_GROUP, "w1", 0, [entry], retrycount=3, idle=1000)
    await redis.set(f"{STARTS_PREFIX}{entry}", 3)  # three earlier deliveries got this far
    [job] = await queue.reclaim(1)
    assert await consumer_for(store, pool, queue, executor).handle(job) == "dead"
    events = await store.read_run(run_id)
    assert [e.type for e in events] == ["queued", "started", "errored"]
    assert events[-1].data["kind"] == "poison"
    assert "started 4 times" in events[-1].data["message"]
    assert "MAX_DELIVERIES=3" in events[-1].data["message"]
    [(_, letter)] = await redis.xrange(DEAD)
    assert letter["run_id"] == str(run_id)
    assert await pending_entries(redis) == 0 and executor.executions == []


async def test_a_recognised_own_start_is_carried_on(
    store: PgEventStore, pool: asyncpg.Pool, redis: aioredis.Redis, queue: RedisRunQueue,
    executor: ScriptedExecutor,
) -> None:
    """The job came back to the worker whose ``started`` is stored (it gave up after
    persistent errors, its outcome unknown): same worker and attempt, nothing recorded
    after it, so it runs the steps instead of skipping a run nobody else will run."""
    run_id = await queue_run(store, "pass")
    run = await store.load_run(run_id)
    run.start(worker="w1", browser={}, attempt=1)
    await store.save(run)
    job = await deliver(redis, queue, run_id)
    assert await consumer_for(store, pool, queue, executor).handle(job) == "passed"
    assert await event_types(store, run_id) == ["queued", "started", "step", "completed"]
    assert await pending_entries(redis) == 0


async def test_two_workers_holding_one_job_start_the_run_once(
    store: PgEventStore, pool: asyncpg.Pool, redis: aioredis.Redis, executor: ScriptedExecutor,
) -> None:
    """The decisive race: both loaded the run while it was queued; the append at the version
    read lets exactly one of them start it."""
    run_id = await queue_run(store, "pass")
    one, two = (RedisRunQueue(redis, n, claim_idle_seconds=5, block_seconds=0.05)
                for n in ("w1", "w2"))
    await one.ensure_group()
    a, b = await store.load_run(run_id), await store.load_run(run_id)
    first, second = (consumer_for(store, pool, q, executor, name=q.consumer) for q in (one, two))

    async def start(consumer: RunConsumer, run: Run) -> Run | None:
        async with consumer.writer() as writer:
            return await consumer._start(writer, run, 1)

    results = await asyncio.gather(start(first, a), start(second, b))
    winners = [r for r in results if r is not None]
    assert len(winners) == 1
    assert await event_types(store, run_id) == ["queued", "started"]


async def test_one_job_delivered_to_two_consumers_executes_once(
    store: PgEventStore, pool: asyncpg.Pool, redis: aioredis.Redis, executor: ScriptedExecutor,
) -> None:
    """The relay published the job twice (e.g. re-publishing after a crash): both copies are
    consumed at the same time by two consumers, and the run executes once."""
    runs = [await queue_run(store, "pass", "work 0.01") for _ in range(10)]
    for run_id in runs:
        await enqueue(redis, run_id)
        await enqueue(redis, run_id)
    queues = [RedisRunQueue(redis, n, claim_idle_seconds=5, block_seconds=0.05)
              for n in ("w1", "w2")]
    await queues[0].ensure_group()
    consumers = [consumer_for(store, pool, q, executor, name=q.consumer) for q in queues]

    async def drain(consumer: RunConsumer, queue: RedisRunQueue) -> list[str]:
        results = []
        while jobs := await queue.read(2):
            results += await asyncio.gather(*(consumer.handle(j) for j in jobs))
        return results

    results = await asyncio.gather(*(drain(c, q) for c, q in zip(consumers, queues, strict=True)))
    outcomes = sorted(r for rs in results for r in rs)
    assert outcomes.count("passed") == 10 and outcomes.count("skipped") == 10
    assert sorted(executor.executions) == sorted(runs)
    for run_id in runs:
        assert await event_types(store, run_id) == ["queued", "started", "step", "step",
                                                    "completed"]
    assert await pending_entries(redis) == 0


async def test_attempt_from_the_job_is_recorded(
    store: PgEventStore, pool: asyncpg.Pool, redis: aioredis.Redis, queue: RedisRunQueue,
    executor: ScriptedExecutor,
) -> None:
    run = Run.queue(test_id="t", test_name="n", url="http://127.0.0.1:9/",
                    steps=[{"action": "click", "instruction": "pass"}], attempt=2)
    await store.save(run)
    await enqueue(redis, run.id, attempt=2)
    [job] = await queue.read(1)
    await consumer_for(store, pool, queue, executor).handle(job)
    assert (await store.read_run(run.id))[1].data["attempt"] == 2


async def test_an_append_whose_reply_was_lost_is_recognised_as_ours(
    store: PgEventStore, pool: asyncpg.Pool, redis: aioredis.Redis, queue: RedisRunQueue,
    executor: ScriptedExecutor,
) -> None:
    """After a connection failure the writer cannot know whether its append committed; it
    compares the stored event with the one it sent instead of deciding again."""
    run_id = await queue_run(store, "pass")
    ours, theirs = await store.load_run(run_id), await store.load_run(run_id)
    ours.start(worker="w1", browser={})
    theirs.start(worker="w2", browser={})
    [sent] = ours.collect_events()
    [other] = theirs.collect_events()
    await store.append([sent], expected_version=1)  # committed; the reply "was lost"
    async with consumer_for(store, pool, queue, executor).writer() as writer:
        assert await writer._committed(sent)
        assert not await writer._committed(other)  # same version, someone else's event
