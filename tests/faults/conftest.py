"""Fixtures of the fault suite: a ``Cluster`` of real processes per test, a Redis server of
the test's own where the test restarts it, and the number of trials.

The short version (one trial per scenario) always runs. ``RUNLEDGER_FAULT_TRIALS=N`` runs
each scenario's fault N times in a row (more kills, more restarts, more runs in flight).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
import redis.asyncio as aioredis

from ledger.store import PgEventStore
from runledger.bench.load import RedisServer
from tests.faults.cluster import Cluster


def trials() -> int:
    raw = os.environ.get("RUNLEDGER_FAULT_TRIALS", "1")
    try:
        value = int(raw)
    except ValueError:
        raise pytest.UsageError(f"RUNLEDGER_FAULT_TRIALS must be a whole number, got {raw!r}"
                                ) from None
    if value < 1:
        raise pytest.UsageError(f"RUNLEDGER_FAULT_TRIALS must be >= 1, got {value}")
    return value


@pytest.fixture
def fault_trials() -> int:
    return trials()


@pytest.fixture
def store(pool: asyncpg.Pool) -> PgEventStore:
    return PgEventStore(pool)


@pytest.fixture
async def cluster(database_url: str, redis_url: str, tmp_path: Path) -> AsyncIterator[Cluster]:
    """Processes against the test's database and the shared (flushed) Redis."""
    deployment = Cluster(database_url, redis_url, tmp_path / "procs")
    try:
        yield deployment
    finally:
        await deployment.close()


@pytest.fixture
async def own_redis(tmp_path: Path) -> AsyncIterator[RedisServer]:
    """A Redis server of this test's own, which the test may restart without its data."""
    server = RedisServer(tmp_path / "redis")
    await server.start()
    try:
        yield server
    finally:
        await server.kill()


@pytest.fixture
async def own_cluster(database_url: str, own_redis: RedisServer, tmp_path: Path
                      ) -> AsyncIterator[Cluster]:
    deployment = Cluster(database_url, own_redis.url, tmp_path / "procs")
    try:
        yield deployment
    finally:
        await deployment.close()


@pytest.fixture
async def own_redis_client(own_redis: RedisServer) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.from_url(own_redis.url, decode_responses=True)
    try:
        yield client
    finally:
        await client.aclose()
