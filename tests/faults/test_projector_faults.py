"""Projector faults with a standby: SIGSTOP (hung, not dead) and kill -9 of the active
process, and the relay killed between publishing a batch and saving its checkpoint.

Two real ``runledger projector`` processes: the first holds every follower's lease, the
second stands by. A stopped holder stops renewing; once its lease expires the standby takes
over and the read models keep up. Woken with SIGCONT, the old holder finds its lease taken,
its stale batch fenced off by the checkpoint's compare-and-set, and stands by.
"""

from __future__ import annotations

import signal

import asyncpg
import pytest
import redis.asyncio as aioredis

from ledger.store import PgEventStore
from ledger.streams import RELAY_MARKER
from runledger.testing import follower_position, wait_until
from tests.faults.cluster import Cluster, submit
from tests.faults.invariants import FOLLOWERS, check, settle

pytestmark = pytest.mark.integration

ACTIVE = "active (lease acquired"
LOST = "lost its lease"


async def holders(pool: asyncpg.Pool) -> dict[str, str]:
    return {row["name"]: row["holder"] for row in
            await pool.fetch("SELECT name, holder FROM follower_leases")}


async def test_a_stopped_projector_is_replaced_and_steps_down_when_woken(
    cluster: Cluster, pool: asyncpg.Pool, database_url: str, redis: aioredis.Redis,
    store: PgEventStore, fault_trials: int,
) -> None:
    first = await cluster.projector()
    await first.logged(ACTIVE, count=len(FOLLOWERS))
    second = await cluster.projector()
    await second.logged("standing by", count=len(FOLLOWERS))
    await cluster.worker()
    run_ids = await submit(store, 5, "pass", "pass")
    await settle(pool, redis, run_ids)
    active, standby = first, second
    for _ in range(fault_trials):
        before = await holders(pool)
        taken, lost = standby.count(ACTIVE), active.count(LOST)
        active.signal(signal.SIGSTOP)
        run_ids += await submit(store, 5, "pass", "work 0.05", "pass")
        await standby.logged(ACTIVE, count=taken + len(FOLLOWERS))
        await settle(pool, redis, run_ids)  # the read models keep up without the old holder
        after = await holders(pool)
        assert all(after[name] != before[name] for name in FOLLOWERS)

        active.signal(signal.SIGCONT)
        await active.logged(LOST, count=lost + len(FOLLOWERS))
        run_ids += await submit(store, 5, "pass", "pass")
        await settle(pool, redis, run_ids)
        assert await holders(pool) == after  # it stood by: nothing taken back
        active, standby = standby, active
    assert first.alive and second.alive
    tally = await check(pool, database_url, redis, run_ids)
    print(tally.line(f"projector SIGSTOP with a standby x{fault_trials}"))
    assert tally.violations == []


async def test_projector_kill_9_with_a_standby(
    cluster: Cluster, pool: asyncpg.Pool, database_url: str, redis: aioredis.Redis,
    store: PgEventStore, fault_trials: int,
) -> None:
    active = await cluster.projector()
    await active.logged(ACTIVE, count=len(FOLLOWERS))
    await cluster.worker()
    run_ids: list = []
    for _ in range(fault_trials):
        standby = await cluster.projector()
        await standby.logged("standing by", count=len(FOLLOWERS))
        run_ids += await submit(store, 6, "pass", "work 0.05", "pass")
        await active.kill()
        # A dead holder's session is gone: its leases are free at once, not after expiry.
        await standby.logged(ACTIVE, count=len(FOLLOWERS))
        run_ids += await submit(store, 4, "pass")
        await settle(pool, redis, run_ids)
        active = standby
    tally = await check(pool, database_url, redis, run_ids)
    print(tally.line(f"projector kill -9 with a standby x{fault_trials}"))
    assert tally.violations == []


async def published_unsaved(pool: asyncpg.Pool, redis: aioredis.Redis, saved: int) -> bool:
    """Redis holds events past ``saved`` (the marker) while the relay's checkpoint is still
    there."""
    marker = await redis.get(RELAY_MARKER)
    return marker is not None and int(marker) > saved and (
        await follower_position(pool, "relay") == saved)


async def test_relay_killed_between_publishing_and_checkpointing(
    cluster: Cluster, pool: asyncpg.Pool, database_url: str, redis: aioredis.Redis,
    store: PgEventStore, fault_trials: int,
) -> None:
    await cluster.worker()
    run_ids: list = []
    for _ in range(fault_trials):
        # The relay saves its checkpoint when it starts and then not for an hour: whatever
        # it publishes next is in Redis (the marker says so) but not in its checkpoint.
        projector = await cluster.projector(relay_checkpoint_interval_seconds=3600)
        await projector.logged("follower relay: following from position")
        saved = await follower_position(pool, "relay")
        run_ids += await submit(store, 6, "pass", "pass")

        await wait_until(lambda saved=saved: published_unsaved(pool, redis, saved),
                         what="the relay to publish past its checkpoint")
        await projector.kill()
        run_ids += await submit(store, 2, "pass")
        replacement = await cluster.projector()
        await replacement.logged("follower relay: following from position")
        await settle(pool, redis, run_ids)
        await replacement.stop()
    tally = await check(pool, database_url, redis, run_ids)
    print(tally.line(f"relay kill -9 between publishing and checkpointing x{fault_trials}"))
    assert tally.violations == []
