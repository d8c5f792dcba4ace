"""The relay against real PostgreSQL and Valkey: entries, jobs, idempotence, retention,
Redis losing data, and trimming that never drops a pending job."""

from __future__ import annotations

from uuid import UUID

import asyncpg
import pytest
import redis.asyncio as aioredis

from ledger.domain import StepResult
from ledger.store import PgEventStore
from ledger.streams import QUEUE, WORKER_GROUP, stream_key
from ledger.streams import RELAY_MARKER as MARKER
from projections.errors import RelayUnavailable
from projections.relay import RedisRelay
from runledger.testing import wait_for_position, wait_until

from .conftest import advance, new_run, running, write_runs

pytestmark = [pytest.mark.integration, pytest.mark.redis_servers]

RETENTION = 3600


def make_relay(pool: asyncpg.Pool, redis: aioredis.Redis) -> RedisRelay:
    return RedisRelay(pool, redis, retention_seconds=RETENTION, check_interval_seconds=0.05,
                      trim_interval_seconds=3600)


async def versions(redis: aioredis.Redis, run_id: UUID) -> list[str]:
    return [entry_id for entry_id, _ in await redis.xrange(stream_key(run_id))]


async def expected_entries(store: PgEventStore, run_id: UUID) -> list[tuple[str, dict]]:
    import orjson

    return [
        (f"{e.version}-0", {"type": e.type, "version": str(e.version),
                            "timestamp": e.timestamp, "data": orjson.dumps(e.data).decode()})
        for e in await store.read_run(run_id)
    ]


async def queued_jobs(redis: aioredis.Redis) -> list[dict[str, str]]:
    return [fields for _, fields in await redis.xrange(QUEUE)]


async def test_publishes_every_event_and_enqueues_queued_runs(
    pool: asyncpg.Pool, database_url: str, redis: aioredis.Redis, store: PgEventStore
) -> None:
    written = await write_runs(store, 12, seed=4)
    async with running(make_relay(pool, redis).follower(), pool, database_url, batch_size=5):
        await wait_for_position(pool, "relay")
        extra = new_run("t-late", attempt=2)
        await store.save(extra)
        await wait_until(lambda: _has_job(redis, extra.id), what="job of a new run")
    for run in [*written, extra]:
        assert await redis.xrange(stream_key(run.id)) == await expected_entries(store, run.id)
        history = await store.read_run(run.id)
        ttl = await redis.ttl(stream_key(run.id))
        if history[-1].type in ("completed", "errored", "timed-out", "cancelled"):
            assert 0 < ttl <= RETENTION
        else:
            assert ttl == -1
    jobs = await queued_jobs(redis)
    assert sorted(j["run_id"] for j in jobs) == sorted(str(r.id) for r in [*written, extra])
    assert {"run_id": str(extra.id), "test_id": "t-late", "attempt": "2"} in jobs
    assert await redis.get(MARKER) == str(await store.head_id())


async def _has_job(redis: aioredis.Redis, run_id: UUID) -> bool:
    return any(j["run_id"] == str(run_id) for j in await queued_jobs(redis))


async def test_replaying_from_zero_leaves_one_entry_per_version(
    pool: asyncpg.Pool, database_url: str, redis: aioredis.Redis, store: PgEventStore
) -> None:
    written = await write_runs(store, 10, seed=6)
    async with running(make_relay(pool, redis).follower(), pool, database_url, batch_size=7):
        await wait_for_position(pool, "relay")
    before = {r.id: await redis.xrange(stream_key(r.id)) for r in written}
    # As after a crash right after the pipeline, before the checkpoint: everything again.
    await pool.execute("UPDATE follower_checkpoints SET position = 0 WHERE name = 'relay'")
    async with running(make_relay(pool, redis).follower(), pool, database_url, batch_size=3):
        await wait_for_position(pool, "relay")
    for run in written:
        assert await redis.xrange(stream_key(run.id)) == before[run.id]
        assert await versions(redis, run.id) == [
            f"{v}-0" for v in range(1, len(before[run.id]) + 1)]
    # Jobs are at-least-once: a replay may enqueue a queued run again (workers skip it).
    jobs = [j["run_id"] for j in await queued_jobs(redis)]
    assert set(jobs) == {str(r.id) for r in written} and len(jobs) == 2 * len(written)


async def make_mixed_runs(store: PgEventStore) -> dict[str, object]:
    runs = {}
    for outcome in ("passed", "running", "queued", "cancelled"):
        run = new_run(f"t-{outcome}")
        advance(run, outcome, steps=2)
        await store.save(run)
        runs[outcome] = run
    return runs


async def test_redis_wipe_republishes_unfinished_runs_and_requeues_queued_ones(
    pool: asyncpg.Pool, database_url: str, redis: aioredis.Redis, store: PgEventStore
) -> None:
    runs = await make_mixed_runs(store)
    async with running(make_relay(pool, redis).follower(), pool, database_url):
        await wait_for_position(pool, "relay")
        before = {k: await redis.xrange(stream_key(r.id)) for k, r in runs.items()}
        await redis.flushdb()
        # Noticed while idle (marker gone), repaired without any new event.
        await wait_until(lambda: redis.exists(stream_key(runs["running"].id)),
                       what="running run re-published")
        await wait_until(lambda: _has_job(redis, runs["queued"].id), what="re-enqueued")
        # The repair sets the marker last, a round trip after the jobs: once it is back at
        # the head, the whole repair is done (the assertions below include the marker).
        await wait_until(lambda: _marker_at_head(redis, store), what="the repair to end")
        assert await redis.xrange(stream_key(runs["running"].id)) == before["running"]
        assert await redis.xrange(stream_key(runs["queued"].id)) == before["queued"]
        assert not await redis.exists(stream_key(runs["passed"].id))
        assert not await redis.exists(stream_key(runs["cancelled"].id))
        assert [j["run_id"] for j in await queued_jobs(redis)] == [str(runs["queued"].id)]
        # The workers' group exists from the start of the stream, so a worker re-creating
        # it after the wipe cannot skip the re-enqueued job.
        groups = await redis.xinfo_groups(QUEUE)
        assert [(g["name"], g["last-delivered-id"]) for g in groups] == [(WORKER_GROUP, "0-0")]
        assert await redis.get(MARKER) == str(await store.head_id())


async def test_wipe_noticed_by_a_batch_keeps_streams_complete(
    pool: asyncpg.Pool, database_url: str, redis: aioredis.Redis, store: PgEventStore
) -> None:
    runs = await make_mixed_runs(store)
    relay = RedisRelay(pool, redis, retention_seconds=RETENTION, check_interval_seconds=3600,
                       trim_interval_seconds=3600)
    async with running(relay.follower(), pool, database_url):
        await wait_for_position(pool, "relay")
        await redis.flushdb()
        running_run = await store.load_run(runs["running"].id)
        running_run.record_step(
            StepResult(index=2, action="click", instruction="x", status="passed"))
        await store.save(running_run)
        # The batch lands in an empty Redis; its marker check finds the marker gone.
        await wait_until(lambda: _marker_at_head(redis, store), what="repair")
    assert await versions(redis, running_run.id) == [f"{v}-0" for v in range(1, 6)]
    assert await redis.xrange(stream_key(running_run.id)) == await expected_entries(
        store, running_run.id)


async def _marker_at_head(redis: aioredis.Redis, store: PgEventStore) -> bool:
    return await redis.get(MARKER) == str(await store.head_id())


async def test_restored_older_snapshot_is_repaired(
    pool: asyncpg.Pool, database_url: str, redis: aioredis.Redis, store: PgEventStore
) -> None:
    """Redis restarted from an older snapshot: the marker is behind and streams lost their
    newest entries or have holes; both come back complete and in order."""
    runs = await make_mixed_runs(store)
    async with running(make_relay(pool, redis).follower(), pool, database_url):
        await wait_for_position(pool, "relay")
        running_id = runs["running"].id
        full = await redis.xrange(stream_key(running_id))
        old_marker = await pool.fetchval(
            "SELECT notification_id FROM stored_events WHERE originator_id = $1 "
            "AND originator_version = 2", running_id)
        queued_id = runs["queued"].id
        queued_entries = await redis.xrange(stream_key(queued_id))
        # The older state: the running run's stream stops at version 2 and the queued
        # run's stream is gone; one stream even has a hole (what no snapshot has, but a
        # repair must not trust it).
        async with redis.pipeline(transaction=True) as pipe:
            pipe.delete(stream_key(running_id), stream_key(queued_id))
            for entry_id, fields in [full[0], full[1]]:
                pipe.xadd(stream_key(running_id), fields, id=entry_id)
            pipe.set(MARKER, old_marker)
            await pipe.execute()
        await wait_until(lambda: _marker_at_head(redis, store), what="repair")
        assert await redis.xrange(stream_key(running_id)) == full
        assert await redis.xrange(stream_key(queued_id)) == queued_entries
        async with redis.pipeline(transaction=True) as pipe:
            pipe.xdel(stream_key(running_id), full[1][0])
            pipe.set(MARKER, old_marker)
            await pipe.execute()
        await wait_until(lambda: _marker_at_head(redis, store), what="second repair")
        assert await redis.xrange(stream_key(running_id)) == full


async def test_trimming_removes_only_what_every_group_acknowledged(
    pool: asyncpg.Pool, redis: aioredis.Redis
) -> None:
    relay = make_relay(pool, redis)
    ids = [await redis.xadd(QUEUE, {"run_id": str(n), "test_id": "t", "attempt": "1"})
           for n in range(6)]
    assert await relay.trim_queue() == 0, "no group yet: the workers have not seen anything"
    await redis.xgroup_create(QUEUE, WORKER_GROUP, id="0")
    delivered = await redis.xreadgroup(WORKER_GROUP, "w1", {QUEUE: ">"}, count=3)
    assert [i for i, _ in delivered[0][1]] == ids[:3]
    await redis.xack(QUEUE, WORKER_GROUP, ids[0], ids[2])
    assert await relay.trim_queue() == 1
    remaining = [i for i, _ in await redis.xrange(QUEUE)]
    assert remaining == ids[1:], "the pending job and everything after it stay"
    pending = await redis.xpending_range(QUEUE, WORKER_GROUP, "-", "+", 10)
    assert [p["message_id"] for p in pending] == [ids[1]]

    await redis.xack(QUEUE, WORKER_GROUP, ids[1])
    assert await relay.trim_queue() == 2
    assert [i for i, _ in await redis.xrange(QUEUE)] == ids[3:], "undelivered jobs stay"

    # A second group that has read nothing holds everything back.
    await redis.xgroup_create(QUEUE, "audit", id="0")
    await redis.xreadgroup(WORKER_GROUP, "w1", {QUEUE: ">"}, count=10)
    await redis.xack(QUEUE, WORKER_GROUP, *ids[3:])
    assert await relay.trim_queue() == 0
    await redis.xreadgroup("audit", "a1", {QUEUE: ">"}, count=10)
    await redis.xack(QUEUE, "audit", *ids[3:])
    assert await relay.trim_queue() == 3
    assert await redis.xlen(QUEUE) == 0


async def test_unreachable_redis_is_a_transient_error(
    pool: asyncpg.Pool, store: PgEventStore
) -> None:
    run = new_run()
    await store.save(run)
    dead = aioredis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=1)
    try:
        relay = RedisRelay(pool, dead)
        async with pool.acquire() as conn:
            with pytest.raises(RelayUnavailable):
                await relay.apply(conn, await store.read_after(0))
    finally:
        await dead.aclose()


