"""Worker test helpers: settings for a test's database and Redis, queued runs, waiting."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import asyncpg
import pytest
import redis.asyncio as aioredis

from ledger.codec import RecordedEvent
from ledger.domain import Run
from ledger.settings import load_settings
from ledger.store import PgEventStore
from ledger.streams import QUEUE, RELAY_MARKER, WORKER_GROUP, encode_job
from runledger.testing import log_head, wait_until
from tests.worker.scripted import ScriptedExecutor, steps
from worker.service import run_worker
from worker.settings import WorkerSettings


@pytest.fixture
def store(pool: asyncpg.Pool) -> PgEventStore:
    return PgEventStore(pool)


def worker_settings(database_url: str, redis_url: str, **overrides: Any) -> WorkerSettings:
    """Fast settings for tests: short idle/recovery periods, explicit consumer name."""
    values: dict[str, Any] = {
        "database_url": database_url,
        "redis_url": redis_url,
        "redis_consumer_name": f"test-worker-{uuid.uuid4().hex[:8]}",
        "claim_idle_seconds": 1.0,
        "recovery_check_interval_seconds": 0.2,
        "stuck_run_timeout_minutes": 10.0,
        "worker_block_seconds": 0.2,
        "worker_heartbeat_seconds": 60.0,
        "database_pool_size": 4,
    }
    values.update(overrides)
    return load_settings(WorkerSettings, **values)


async def queue_run(store: PgEventStore, *cues: str, attempt: int = 1) -> UUID:
    """Append a ``queued`` run whose steps are the executor cues (as the API would)."""
    run = Run.queue(
        test_id=str(uuid.uuid4()), test_name="scripted", url="http://127.0.0.1:9/",
        steps=steps(*cues), attempt=attempt,
    )
    await store.save(run)
    return run.id


async def enqueue(redis: aioredis.Redis, run_id: UUID | str, attempt: int = 1) -> str:
    """Put a job on the queue exactly as the relay does for a ``queued`` event."""
    queued = RecordedEvent(0, UUID(str(run_id)), 1, "queued", "", {"test_id": "t",
                                                                  "attempt": attempt})
    return await redis.xadd(QUEUE, encode_job(queued))


async def event_types(store: PgEventStore, run_id: UUID) -> list[str]:
    return [event.type for event in await store.read_run(run_id)]


async def wait_terminal(store: PgEventStore, run_id: UUID, within: float = 15.0) -> list[str]:
    """The run's event types once its last event is terminal."""
    terminal = {"completed", "errored", "timed-out", "cancelled"}

    async def done() -> list[str] | None:
        types = await event_types(store, run_id)
        return types if types and types[-1] in terminal else None

    return await wait_until(done, within=within, what=f"run {run_id} to finish")


async def reached(redis: aioredis.Redis, gate: str, within: float = 15.0) -> None:
    """Block until a scripted executor is waiting at ``gate`` (it RPUSHes ``reached:``)."""
    got = await redis.blpop([f"reached:{gate}"], timeout=within)
    assert got is not None, f"no executor reached gate {gate!r} within {within}s"


async def release(redis: aioredis.Redis, gate: str) -> None:
    await redis.rpush(f"gate:{gate}", 1)


async def wait_relayed(pool: asyncpg.Pool, redis: aioredis.Redis, within: float = 20.0) -> None:
    """Wait until the relay has published the log up to its head now: every run's stream
    and ``runs:queue`` hold what the log holds. The relay is a follower of its own: a
    ``runs`` row showing an event says nothing of its stream entry. Its marker advances in
    the pipeline that adds the entries (its checkpoint is saved only every so often)."""
    head = await log_head(pool)

    async def published() -> bool:
        marker = await redis.get(RELAY_MARKER)
        return marker is not None and int(marker) >= head

    await wait_until(published, within=within, what=f"the relay to publish up to {head}")


async def queue_drained(redis: aioredis.Redis) -> bool:
    """Every job of ``runs:queue`` read by the workers' group and acknowledged."""
    [group] = [g for g in await redis.xinfo_groups(QUEUE) if g["name"] == WORKER_GROUP]
    unread = await redis.xrange(QUEUE, f"({group['last-delivered-id']}", "+", count=1)
    return int(group["pending"]) == 0 and not unread


async def pending_entries(redis: aioredis.Redis) -> int:
    info = await redis.xpending(QUEUE, WORKER_GROUP)
    return int(info["pending"])


@pytest.fixture
async def projector(database_url: str, redis_url: str) -> AsyncIterator[None]:
    """The real followers (runs / run_steps read models and the relay) for this test."""
    from projections.service import ProjectorSettings, run_projector

    settings = load_settings(
        ProjectorSettings, database_url=database_url, redis_url=redis_url,
        projector_poll_interval_seconds=0.2, follower_standby_retry_seconds=0.2,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(run_projector(settings, stop), name="test-projector")
    try:
        yield
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


@dataclass
class RunningWorker:
    task: asyncio.Task[None]
    stop: asyncio.Event
    force_stop: asyncio.Event
    executor: ScriptedExecutor
    settings: WorkerSettings


@contextlib.asynccontextmanager
async def running_worker(
    database_url: str, redis_url: str, **overrides: Any
) -> AsyncIterator[RunningWorker]:
    """``run_worker`` in this process with a scripted executor; stopped gracefully after."""
    settings = worker_settings(database_url, redis_url, **overrides)
    executor = ScriptedExecutor(redis_url)
    stop, force = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(
        run_worker(settings, executor, stop, force_stop=force), name="test-worker"
    )
    try:
        yield RunningWorker(task, stop, force, executor, settings)
    finally:
        stop.set()
        await asyncio.wait_for(task, 60)


async def wait_row(
    pool: asyncpg.Pool, run_id: UUID, status: str, within: float = 15.0
) -> dict[str, Any]:
    """The run's ``runs`` row once the projection shows ``status``."""
    from projections.queries import RunQueries

    async def projected() -> dict[str, Any] | None:
        row = await RunQueries(pool).get_run(run_id)
        return row if row is not None and row["status"] == status else None

    return await wait_until(projected, within=within, what=f"run {run_id} row to be {status}")
