"""Faults under load: runs keep arriving (``tests.faults.load``), SSE clients tail them
through a real API, and the fault strikes at random moments of the load's progress.

* a worker killed with kill -9, at least 10 times, a replacement started each time;
* Redis restarted without its data (kill -9, started again empty on the same port);
* every PostgreSQL connection of the deployment terminated (``pg_terminate_backend``);
* PostgreSQL itself restarted (a server of the test's own, behind a proxy that keeps its
  address while the server comes back on another port).

After each: the invariants of ``tests.faults.invariants``.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
import redis.asyncio as aioredis

from ledger.db import create_pool
from ledger.store import PgEventStore
from runledger.bench.load import RedisServer
from runledger.embedded import start_postgres
from runledger.testing import create_migrated, with_database
from tests.faults.cluster import Cluster, Proc
from tests.faults.invariants import check, settle
from tests.faults.load import load, moment, progress
from tests.worker.proxy import CuttableProxy

pytestmark = pytest.mark.integration

KILLS = 10
TEST_APP = "runledger fault test"


@pytest.fixture
async def own_pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    """The test's pool, named so that terminating the deployment's connections spares it."""
    pool = await create_pool(database_url, min_size=1, max_size=10, application_name=TEST_APP)
    try:
        yield pool
    finally:
        await pool.close()


async def start(cluster: Cluster) -> list[Proc]:
    """A projector, the API and two workers, started side by side; returns the workers."""
    await cluster.projector()
    _, *workers = await asyncio.gather(cluster.api(), cluster.worker(), cluster.worker())
    return workers


async def test_worker_kill_9_at_random_moments(
    cluster: Cluster, pool: asyncpg.Pool, database_url: str, redis: aioredis.Redis,
    store: PgEventStore, fault_trials: int,
) -> None:
    rng = random.Random(11)
    await start(cluster)
    # A third worker: while a replacement starts, two keep the load moving.
    await cluster.worker()
    kills = 0
    async with load(store, pool, cluster) as runs:
        for _ in range(KILLS * fault_trials):
            await progress(pool, moment(rng))
            victim = rng.choice(cluster.alive("worker"))
            await victim.kill()
            kills += 1
            await cluster.worker(ready=False)  # may itself be killed before it is ready
        # Someone must be left to finish the work.
        await cluster.worker()
    await settle(pool, redis, runs.run_ids, within=90)
    tally = await check(pool, database_url, redis, runs.run_ids, runs.clients)
    print(tally.line(f"worker kill -9 x{kills}"))
    assert tally.violations == []


async def test_redis_restarted_without_data_mid_load(
    own_cluster: Cluster, own_redis: RedisServer, own_redis_client: aioredis.Redis,
    pool: asyncpg.Pool, database_url: str, store: PgEventStore, fault_trials: int,
) -> None:
    rng = random.Random(12)
    cluster = own_cluster
    workers = await start(cluster)
    async with load(store, pool, cluster) as runs:
        for _ in range(fault_trials):
            await progress(pool, moment(rng) + 10)
            await own_redis.restart()
            await progress(pool, 10)
    await settle(pool, own_redis_client, runs.run_ids, within=90)
    assert all(w.alive for w in workers), [w.text()[-3000:] for w in workers if not w.alive]
    tally = await check(pool, database_url, own_redis_client, runs.run_ids, runs.clients)
    print(tally.line(f"Redis restarted without data x{own_redis.restarts}"))
    assert tally.violations == []


async def test_every_postgres_connection_terminated_mid_load(
    cluster: Cluster, own_pool: asyncpg.Pool, database_url: str, redis: aioredis.Redis,
    fault_trials: int,
) -> None:
    rng = random.Random(13)
    store = PgEventStore(own_pool)
    workers = await start(cluster)
    terminated = 0
    async with load(store, own_pool, cluster) as runs:
        for _ in range(2 * fault_trials):
            await progress(own_pool, moment(rng) + 10)
            terminated += await own_pool.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                "AND application_name <> $1", TEST_APP)
    await settle(own_pool, redis, runs.run_ids, within=90)
    assert all(w.alive for w in workers), [w.text()[-3000:] for w in workers if not w.alive]
    assert terminated > 0
    tally = await check(own_pool, database_url, redis, runs.run_ids, runs.clients)
    print(tally.line(f"PostgreSQL connections terminated ({terminated})"))
    assert tally.violations == []


async def test_postgres_restarted_mid_load(
    redis_url: str, redis: aioredis.Redis, tmp_path: Path, fault_trials: int,
) -> None:
    rng = random.Random(14)
    folder = tmp_path / "postgres"
    server = await asyncio.to_thread(start_postgres, folder, ephemeral=True)
    try:
        proxy = CuttableProxy(await create_migrated(server.url, "faults"))
        await proxy.start()
        pool = await create_pool(proxy.url, min_size=1, max_size=10)
        cluster = Cluster(proxy.url, redis_url, tmp_path / "procs")
        try:
            workers = await start(cluster)
            restarts = 0
            async with load(PgEventStore(pool), pool, cluster) as runs:
                for _ in range(fault_trials):
                    await progress(pool, moment(rng) + 10)
                    async with runs.paused():
                        await proxy.cut()  # refused while down, as a stopped server is
                        await asyncio.to_thread(server.stop)
                        server = await asyncio.to_thread(start_postgres, folder, ephemeral=True)
                        proxy.retarget(with_database(server.url, "faults"))
                        await proxy.restore()
                    restarts += 1
                    await progress(pool, 10)
            await settle(pool, redis, runs.run_ids, within=90)
            assert all(w.alive for w in workers), [
                w.text()[-3000:] for w in workers if not w.alive]
            tally = await check(pool, proxy.url, redis, runs.run_ids, runs.clients)
            print(tally.line(f"PostgreSQL restarted x{restarts}"))
            assert tally.violations == []
        finally:
            await cluster.close()
            await pool.close()
            await proxy.close()
    finally:
        await asyncio.to_thread(server.stop)
