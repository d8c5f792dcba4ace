"""The follower's lease: a holder whose lease was taken over (it hung, a standby took it)
cannot write — its next batch is fenced off by the checkpoint's compare-and-set — and steps
down; it takes the lease back once it is free again."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from ledger.store import LogListener, PgEventStore
from projections import runs
from projections.follower import FollowerRunner
from runledger.testing import log_head, wait_for_position, wait_until

from .conftest import FAST_RETRY, checkpoint, write_runs

pytestmark = pytest.mark.integration


async def test_a_holder_whose_lease_was_taken_cannot_write_and_steps_down(
    pool: asyncpg.Pool, database_url: str, store: PgEventStore,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await write_runs(store, 3, seed=1)
    listener = LogListener(database_url, poll_interval=0.1)
    await listener.start()
    stop = asyncio.Event()
    # A long lease: the holder will not renew (and notice) before its next batch.
    runner = FollowerRunner(runs.MODEL.follower(), dsn=database_url, listener=listener,
                            stop=stop, standby_retry_seconds=0.05, lease_seconds=60,
                            retry=FAST_RETRY)
    task = asyncio.create_task(runner.run(), name="test-follower:runs")
    try:
        await wait_for_position(pool, "runs")
        held = await checkpoint(pool, "runs")
        count = await pool.fetchval("SELECT count(*) FROM runs")
        async with pool.acquire() as thief:
            # What a standby does once the lease expired: take it, from a live session.
            await thief.execute(
                "UPDATE follower_leases SET holder = 'standby', backend_pid = "
                "pg_backend_pid(), expires_at = now() + interval '1 hour' WHERE name = 'runs'")
            await write_runs(store, 2, seed=2)
            await wait_until(lambda: _stood_by(runner), what="the old holder to step down")
            assert await checkpoint(pool, "runs") == held
            assert await pool.fetchval("SELECT count(*) FROM runs") == count
            assert "follower runs: lost its lease (another instance took it over)" in (
                caplog.text)
            await thief.execute("DELETE FROM follower_leases WHERE name = 'runs'")
        await wait_for_position(pool, "runs", await log_head(pool))
        assert await pool.fetchval("SELECT count(*) FROM runs") == count + 2
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
        await listener.close()
    assert await pool.fetchval("SELECT count(*) FROM follower_leases") == 0


async def _stood_by(runner: FollowerRunner) -> bool:
    return not runner.active
