"""The read models equal a rebuild column for column — the invariant the fault suite checks
after every fault. Two runs of two tests finish in separate batches of the live follower; a
rebuild replays them in one."""

from __future__ import annotations

import asyncpg
import pytest
import redis.asyncio as aioredis

from ledger.store import PgEventStore
from projections.rebuild import READ_MODELS, rebuild
from tests.faults.cluster import Cluster, submit
from tests.faults.invariants import settle, snapshot

pytestmark = pytest.mark.integration


async def test_every_column_of_every_read_model_equals_a_rebuild(
    cluster: Cluster, pool: asyncpg.Pool, database_url: str, redis: aioredis.Redis,
    store: PgEventStore,
) -> None:
    await cluster.projector()
    await cluster.worker()
    first = await submit(store, 1, "pass")
    await settle(pool, redis, first)
    second = await submit(store, 1, "pass")
    await settle(pool, redis, first + second)
    live = await snapshot(pool)
    await rebuild(database_url, list(READ_MODELS.values()))
    assert await snapshot(pool) == live
