"""``RedisRunQueue`` against a real Valkey: group creation, delivery counts, reclaiming,
keeping jobs fresh, leases, acknowledgement and dead letters."""

from __future__ import annotations

import asyncio
import re
import uuid
from pathlib import Path

import orjson
import pytest
import redis.asyncio as aioredis
from redis import exceptions as rex

from ledger.streams import DEAD, QUEUE, WORKER_GROUP
from runledger.embedded import start_valkey
from tests.worker.conftest import wait_until
from tests.worker.proxy import CuttableProxy
from worker.errors import (
    GroupMissing,
    MalformedJob,
    QueueError,
    QueueUnavailable,
    StartupError,
)
from worker.queue import Job, RedisRunQueue, translate

# Each test that reaches a server runs on Valkey and on Redis 7 (tests/conftest.py).
pytestmark = pytest.mark.redis_servers


def make_queue(redis: aioredis.Redis, name: str, idle: float = 0.2) -> RedisRunQueue:
    return RedisRunQueue(redis, name, claim_idle_seconds=idle, block_seconds=0.05)


@pytest.mark.integration
async def test_group_is_created_once_and_tolerates_existing(redis: aioredis.Redis) -> None:
    queue = make_queue(redis, "a")
    await queue.ensure_group()
    await queue.ensure_group()  # BUSYGROUP: already there is fine
    groups = await redis.xinfo_groups(QUEUE)
    assert [g["name"] for g in groups] == [WORKER_GROUP]


@pytest.mark.integration
async def test_group_creation_failure_is_a_startup_error(redis: aioredis.Redis) -> None:
    await redis.set(QUEUE, "not a stream")
    with pytest.raises(StartupError, match=f"cannot create consumer group {WORKER_GROUP}"):
        await make_queue(redis, "a").ensure_group()


@pytest.mark.integration
async def test_read_ack_and_first_delivery_count(redis: aioredis.Redis) -> None:
    queue = make_queue(redis, "a")
    await queue.ensure_group()
    entry = await redis.xadd(QUEUE, {"run_id": str(uuid.uuid4()), "attempt": "1"})
    [job] = await queue.read(5)
    assert (job.entry_id, job.deliveries, job.reclaimed) == (entry, 1, False)
    assert await queue.read(5) == []  # blocks briefly, nothing new
    await queue.ack(job)
    assert (await redis.xpending(QUEUE, WORKER_GROUP))["pending"] == 0


@pytest.mark.integration
async def test_reclaim_takes_idle_jobs_of_a_dead_consumer(redis: aioredis.Redis) -> None:
    dead, live = make_queue(redis, "dead"), make_queue(redis, "live")
    await dead.ensure_group()
    entry = await redis.xadd(QUEUE, {"run_id": str(uuid.uuid4())})
    [first] = await dead.read(1)
    # Not idle long enough yet. Asked with a claim idle no pause of a loaded machine reaches:
    # with live's 0.2 s, a stall between the read and the ask would make the job reclaimable.
    assert await make_queue(redis, "live", idle=60).reclaim(10) == []

    async def reclaimed() -> list[Job]:
        return await live.reclaim(10)

    jobs = await wait_until(reclaimed, within=5, what="the job to be reclaimable")
    assert [(j.entry_id, j.deliveries, j.reclaimed) for j in jobs] == [(entry, 2, True)]
    assert first.deliveries == 1


@pytest.mark.integration
async def test_keep_fresh_prevents_reclaim_without_counting_deliveries(
    redis: aioredis.Redis,
) -> None:
    # An idle period long enough that a pause of a loaded machine between a refresh and the
    # other's reclaim (one round trip apart) does not make the job look abandoned.
    idle = 0.6
    owner, other = make_queue(redis, "owner", idle), make_queue(redis, "other", idle)
    await owner.ensure_group()
    await redis.xadd(QUEUE, {"run_id": str(uuid.uuid4())})
    [job] = await owner.read(1)
    for _ in range(9):  # three idle periods, refreshed every third of one
        await asyncio.sleep(idle / 3)  # the owner's refresh cadence, not a wait for a condition
        await owner.keep_fresh([job.entry_id])
        assert await other.reclaim(10) == []
    [info] = await redis.xpending_range(QUEUE, WORKER_GROUP, "-", "+", 10)
    assert (info["consumer"], info["times_delivered"]) == ("owner", 1)


@pytest.mark.integration
async def test_held_runs_are_those_whose_entries_are_kept_fresh(
    redis: aioredis.Redis,
) -> None:
    live, dead = make_queue(redis, "live", idle=0.3), make_queue(redis, "dead", idle=0.3)
    await live.ensure_group()
    running, abandoned = uuid.uuid4(), uuid.uuid4()
    await redis.xadd(QUEUE, {"run_id": str(running)})
    await redis.xadd(QUEUE, {"run_id": str(abandoned)})
    [job] = await live.read(1)
    await dead.read(1)
    # Both just delivered: held. Asked with an idle no pause of a loaded machine reaches
    # (with 0.3 s, a stall after the reads would already show the abandoned one stale).
    assert await make_queue(redis, "live", idle=60).held_runs() == {running, abandoned}

    async def only_running_is_held() -> bool:
        await live.keep_fresh([job.entry_id])
        return await live.held_runs() == {running}

    assert await wait_until(only_running_is_held, within=5, what="the abandoned job to go stale")


@pytest.mark.integration
async def test_prune_removes_only_silent_consumers_holding_nothing(
    redis: aioredis.Redis,
) -> None:
    queue = make_queue(redis, "live")
    await queue.ensure_group()
    await redis.xadd(QUEUE, {"run_id": str(uuid.uuid4())})
    await redis.xreadgroup(WORKER_GROUP, "dead-holding", {QUEUE: ">"}, count=1)
    # Created explicitly: Redis 7.0 creates a consumer only when a read delivers something.
    await redis.xgroup_createconsumer(QUEUE, WORKER_GROUP, "dead-empty")
    await redis.xgroup_createconsumer(QUEUE, WORKER_GROUP, "live")
    # Valkey and Redis 7.2+ count a read that found nothing as an interaction (and report
    # `inactive` beside `idle`); Redis 7.0 counts only deliveries, so there a live consumer
    # holding nothing looks silent, is pruned, and comes back with its next delivery.
    fields = (await redis.xinfo_consumers(QUEUE, WORKER_GROUP))[0]
    reads_count = "inactive" in fields

    async def pruned() -> bool:
        await queue.read(1)  # the live consumer keeps interacting
        await queue.prune_consumers(0.2)
        names = {c["name"] for c in await redis.xinfo_consumers(QUEUE, WORKER_GROUP)}
        return "dead-empty" not in names

    await wait_until(pruned, within=5, what="a prune")
    names = {c["name"] for c in await redis.xinfo_consumers(QUEUE, WORKER_GROUP)}
    assert "dead-holding" in names  # its pending entry is never dropped
    assert ("live" in names) == reads_count


@pytest.mark.integration
async def test_release_makes_a_job_claimable_at_once(redis: aioredis.Redis) -> None:
    leaving, other = make_queue(redis, "leaving", idle=60), make_queue(redis, "other", idle=60)
    await leaving.ensure_group()
    entry = await redis.xadd(QUEUE, {"run_id": str(uuid.uuid4())})
    await leaving.read(1)
    assert await other.reclaim(10) == []
    await leaving.release([entry])
    assert [j.entry_id for j in await other.reclaim(10)] == [entry]


@pytest.mark.integration
async def test_dead_letter_records_the_reason_and_acknowledges(redis: aioredis.Redis) -> None:
    queue = make_queue(redis, "a")
    await queue.ensure_group()
    await redis.xadd(QUEUE, {"garbage": "1"})
    [job] = await queue.read(1)
    with pytest.raises(MalformedJob, match="no valid run_id"):
        _ = job.run_id
    await queue.dead_letter(job, "malformed job")
    [(_, letter)] = await redis.xrange(DEAD)
    assert letter["reason"] == "malformed job"
    assert letter["entry_id"] == job.entry_id
    assert orjson.loads(letter["fields"]) == {"garbage": "1"}
    assert (await redis.xpending(QUEUE, WORKER_GROUP))["pending"] == 0


@pytest.mark.unit
@pytest.mark.parametrize(
    ("fields", "problem"),
    [({"run_id": "nope"}, "run_id"), ({"run_id": str(uuid.uuid4()), "attempt": "x"}, "attempt"),
     ({"run_id": str(uuid.uuid4()), "attempt": "0"}, "attempt")],
)
def test_malformed_fields_are_named(fields: dict[str, str], problem: str) -> None:
    job = Job("1-0", fields, 1)
    with pytest.raises(MalformedJob, match=problem):
        _ = job.run_id, job.attempt


@pytest.mark.integration
async def test_unreachable_redis_is_queue_unavailable() -> None:
    client = aioredis.from_url("redis://127.0.0.1:9/0", socket_connect_timeout=1)
    try:
        with pytest.raises(QueueUnavailable):
            await make_queue(client, "a").ping()
    finally:
        await client.aclose()


@pytest.mark.unit
@pytest.mark.parametrize("answer", [
    "NOGROUP No such key 'runs:queue' or consumer group 'run-workers'",  # Valkey, Redis 6
    "UNBLOCKED the stream key no longer exists",  # Redis 7, a blocked read on a flushed key
])
def test_a_vanished_queue_means_the_group_is_missing(answer: str) -> None:
    assert isinstance(translate(rex.ResponseError(answer)), GroupMissing)


@pytest.mark.unit
@pytest.mark.parametrize("answer", [
    rex.OutOfMemoryError("command not allowed when used memory > 'maxmemory'."),
    rex.ResponseError("MISCONF Redis is configured to save RDB snapshots, but it's currently "
                      "unable to persist to disk"),
    rex.BusyLoadingError("Redis is loading the dataset in memory"),
    rex.ResponseError("BUSY Redis is busy running a script."),
    rex.ReadOnlyError("You can't write against a read only replica."),
], ids=["OOM", "MISCONF", "LOADING", "BUSY", "READONLY"])
def test_redis_states_that_pass_are_waited_out(answer: Exception) -> None:
    assert type(translate(answer)) is QueueUnavailable


@pytest.mark.unit
def test_other_refusals_are_queue_errors() -> None:
    refused = translate(rex.ResponseError("WRONGTYPE Operation against a key holding the "
                                          "wrong kind of value"))
    assert type(refused) is QueueError


@pytest.mark.integration
async def test_no_lease_lapses_until_a_restarted_redis_was_up_for_claim_idle(
    tmp_path: Path,
) -> None:
    """A restart that this process never noticed (its connection came back quietly, as
    redis-py's retries make it) reloads the pending list with the old delivery times, so
    every lease shows overdue though live workers could not renew. None is judged lapsed
    until the server was up for CLAIM_IDLE_SECONDS; then the one nobody renewed is. (The
    proxy stands for the server's address across the restart.)"""
    # Snapshots on stop: the pending list, delivery times included, survives the restart.
    first = start_valkey(tmp_path / "valkey")
    second = None
    proxy = CuttableProxy(first.url)
    await proxy.start()
    client = aioredis.from_url(proxy.url, decode_responses=True)
    try:
        # 2 s: the restarted server answers well within that, however loaded the machine.
        judge, ghost = make_queue(client, "judge", idle=2), make_queue(client, "ghost", idle=2)
        await judge.ensure_group()
        await client.xadd(QUEUE, {"run_id": str(uuid.uuid4()), "attempt": "1"})
        [job] = await ghost.read(1)  # then never renewed: the ghost died

        async def judged_lapsed() -> bool:
            leases = await judge.leases()
            return leases.doubt is None and [lease.lapsed for lease in leases] == [True]

        await wait_until(judged_lapsed, within=10, what="the lease to lapse with Redis up")
        first.stop()
        second = start_valkey(tmp_path / "valkey")  # the same data (and password), a new port
        proxy.retarget(second.url)
        await client.connection_pool.disconnect()
        leases = await judge.leases()
        assert [(lease.entry_id, lease.overdue, lease.lapsed) for lease in leases] == [
            (job.entry_id, True, False)]
        assert leases.doubt is not None
        assert re.search(r"the Redis server has been up for [01]s only \(restarted\)",
                         leases.doubt), leases.doubt
        await wait_until(judged_lapsed, within=10, what="the lease to lapse once Redis was up")
    finally:
        await client.aclose()
        await proxy.close()
        for server in (first, second):
            if server is not None:
                server.stop()


@pytest.mark.integration
async def test_no_lease_lapses_until_this_process_had_answers_for_claim_idle(
    redis: aioredis.Redis,
) -> None:
    """A judge that just started, or just lost Redis, does not know whether workers could
    renew meanwhile: it judges nothing until Redis has answered it for CLAIM_IDLE_SECONDS."""
    ghost = make_queue(redis, "ghost", idle=0.3)
    await ghost.ensure_group()
    await redis.xadd(QUEUE, {"run_id": str(uuid.uuid4()), "attempt": "1"})
    await ghost.read(1)
    await wait_until(lambda: _overdue(redis, 300), within=5, what="the lease to be overdue")
    judge = RedisRunQueue(redis, "judge", claim_idle_seconds=1, block_seconds=0.05)
    leases = await judge.leases()
    assert leases.doubt is not None and "without a break" in leases.doubt
    assert [lease.lapsed for lease in leases] == [False]

    async def judged() -> bool:
        return (await judge.leases()).doubt is None

    await wait_until(judged, within=5, what="the judge to trust Redis")
    assert [lease.lapsed for lease in await judge.leases()] == [True]


async def _overdue(redis: aioredis.Redis, idle_ms: int) -> bool:
    pending = await redis.xpending_range(QUEUE, WORKER_GROUP, "-", "+", 10)
    return bool(pending) and all(int(p["time_since_delivered"]) >= idle_ms for p in pending)


@pytest.mark.integration
async def test_a_server_refusing_info_leaves_the_judge_its_own_contact(
    redis: aioredis.Redis, redis_url: str,
) -> None:
    """An ACL user without INFO: no uptime to check, leases are judged on this process's
    own contact with Redis rather than failing every recovery pass."""
    user = f"no-info-{uuid.uuid4().hex[:6]}"
    await redis.acl_setuser(user, enabled=True, passwords=["+secret-for-test"],
                            keys=["*"], channels=["*"], commands=["+@all", "-info"])
    url = redis_url.split("://", 1)[1].rsplit("@", 1)[-1]
    client = aioredis.from_url(f"redis://{user}:secret-for-test@{url}", decode_responses=True)
    try:
        with pytest.raises(rex.NoPermissionError):
            await client.info("server")
        judge = make_queue(client, "judge", idle=0.3)
        await judge.ensure_group()
        await client.xadd(QUEUE, {"run_id": str(uuid.uuid4()), "attempt": "1"})
        await make_queue(client, "ghost", idle=0.3).read(1)

        async def judged_lapsed() -> bool:
            leases = await judge.leases()
            return leases.doubt is None and [lease.lapsed for lease in leases] == [True]

        await wait_until(judged_lapsed, within=5, what="the lease to lapse")
    finally:
        await client.aclose()
        await redis.acl_deluser(user)
