"""``runledger followers`` (list, retry) and ``runledger rebuild`` with parked events, as an
operator runs them: real processes on a real PostgreSQL and Valkey."""

from __future__ import annotations

import asyncio
import os
import re
import sys
import uuid

import asyncpg
import pytest
import redis.asyncio as aioredis

from ledger.store import PgEventStore
from ledger.streams import stream_key
from projections.parking import parked_counts
from projections.service import run_projector
from runledger.testing import log_head, wait_for_position
from tests.projections.conftest import append_raw, new_run, projector_settings, write_runs

pytestmark = pytest.mark.integration

FOLLOWERS = ("locator_memory", "relay", "retries", "run_steps", "runs", "test_stats", "webhooks")


async def cli(*args: str, database_url: str, redis_url: str, cwd: object) -> tuple[int, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "runledger.cli", *args,
        env={**env, "DATABASE_URL": database_url, "REDIS_URL": redis_url,
             "LOG_LEVEL": "WARNING"},
        cwd=str(cwd), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode() + err.decode()


def listed(output: str, follower: str) -> tuple[int, int, int]:
    """(position, lag, parked) of ``follower`` in the rich table."""
    match = re.search(rf"│\s*{follower}\s*│\s*(\d+)\s*│\s*(\d+)\s*│\s*(\d+)\s*│", output)
    assert match, output
    position, lag, parked = (int(g) for g in match.groups())
    return position, lag, parked


async def test_list_retry_and_rebuild_with_parked_events(
    pool: asyncpg.Pool, database_url: str, redis_url: str, redis: aioredis.Redis,
    tmp_path: object,
) -> None:
    store = PgEventStore(pool)
    blocked = new_run("blocked")
    await redis.set(stream_key(blocked.id), "in the way")  # the relay's XADD gets WRONGTYPE
    settings = projector_settings(database_url, redis_url, follower_apply_retries=0)
    stop = asyncio.Event()
    task = asyncio.create_task(run_projector(settings, stop), name="test-projector")
    try:
        await write_runs(store, 3, seed=1)
        await append_raw(pool, uuid.uuid4(), 1, "queued", b"\xff not json")
        await store.save(blocked)
        await write_runs(store, 3, seed=2)
        head = await log_head(pool)
        for name in FOLLOWERS:
            await wait_for_position(pool, name, head)
    finally:
        stop.set()
        await asyncio.wait_for(task, 15)
    assert await parked_counts(pool) == {"locator_memory": 1, "relay": 2, "retries": 1,
                                         "run_steps": 1, "runs": 1, "test_stats": 1,
                                         "webhooks": 1}

    code, output = await cli("followers", database_url=database_url, redis_url=redis_url,
                             cwd=tmp_path)
    assert code == 0, output
    assert listed(output, "runs") == (head, 0, 1)
    assert listed(output, "relay") == (head, 0, 2)
    assert "WRONGTYPE" in output and "cannot be decoded" in output

    # The fix: whatever held the stream's key is gone. The undecodable row stays parked.
    await redis.delete(stream_key(blocked.id))
    code, output = await cli("followers", "retry", "--follower", "relay",
                             database_url=database_url, redis_url=redis_url, cwd=tmp_path)
    assert code == 1, output
    assert "unparked 1 event(s)" in output and "still parked: 1 event(s)" in output
    assert await redis.xlen(stream_key(blocked.id)) == 1
    assert (await parked_counts(pool))["relay"] == 1

    code, output = await cli("rebuild", "all", database_url=database_url, redis_url=redis_url,
                             cwd=tmp_path)
    assert code == 0, output
    assert "; 4 parked event(s)" in output
    assert await parked_counts(pool) == dict.fromkeys(FOLLOWERS, 1)
