"""``run_worker``: one worker process's lifespan.

Opens Redis (checked at once: ``StartupError`` naming ``REDIS_URL``), creates the consumer
group, opens the PostgreSQL pool and the executor, logs the configuration, and hands all of
it to the ``Supervisor`` (``worker.supervisor``: consuming, recovery, heartbeat, shutdown
protocol). When the supervisor returns — drained after ``stop``, or at once after
``force_stop`` — it closes, in this order: the executor (browser), the pool, Redis.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import cast

import asyncpg
import redis.asyncio as aioredis
from redis import exceptions as rex

from ledger.db import create_pool
from ledger.errors import StoreError
from ledger.settings import redact
from ledger.store import PgEventStore
from ledger.streams import QUEUE, WORKER_GROUP
from projections.queries import RunQueries
from worker.errors import ExecutorError, StartupError
from worker.ports import Executor
from worker.queue import RedisRunQueue
from worker.settings import WorkerSettings
from worker.supervisor import Supervisor

log = logging.getLogger(__name__)

ExecutorFactory = Callable[[WorkerSettings, asyncpg.Pool], Executor]


async def run_worker(
    settings: WorkerSettings,
    executor: Executor | ExecutorFactory,
    stop: asyncio.Event,
    *,
    force_stop: asyncio.Event | None = None,
) -> None:
    """Run until ``stop`` (graceful) or ``force_stop`` (immediate).

    ``executor`` is an executor, or a factory ``(settings, pool) -> Executor`` called once
    the pool is open (the Playwright executor shares the worker's pool). Opens Redis, the
    pool and the executor, in that order, and closes them in reverse: executor (browser),
    pool, Redis. Raises ``StartupError`` when Redis or PostgreSQL is unreachable, the
    consumer group cannot be created or the executor cannot open (e.g. no browser).
    """
    async with contextlib.AsyncExitStack() as stack:
        redis = await connect_redis(settings)
        stack.push_async_callback(_close_redis, redis)
        queue = RedisRunQueue(
            redis, settings.redis_consumer_name, claim_idle_seconds=settings.claim_idle_seconds,
            block_seconds=settings.worker_block_seconds,
        )
        await queue.ensure_group()
        pool = await open_pool(settings)
        stack.push_async_callback(close_pool, pool)
        executor = _built(executor, settings, pool)
        store = PgEventStore(pool, lock_timeout_seconds=settings.lock_timeout_seconds)
        log_startup(settings)
        try:
            await executor.open()
        except ExecutorError as exc:
            raise StartupError(f"the executor cannot start: {exc}") from exc
        stack.push_async_callback(_close_executor, executor)
        supervisor = Supervisor(settings, queue, store, pool, executor, RunQueries(pool))
        await supervisor.serve(stop, force_stop or asyncio.Event())


def _built(
    executor: Executor | ExecutorFactory, settings: WorkerSettings, pool: asyncpg.Pool
) -> Executor:
    """``executor`` itself, or what it builds when it is a factory (it has no ``execute``)."""
    if not hasattr(executor, "execute"):
        return executor(settings, pool)
    # What the check established: mypy does not rule out a function with an ``execute``.
    return cast(Executor, executor)


async def connect_redis(settings: WorkerSettings) -> aioredis.Redis:
    """A client whose socket timeout exceeds the block time; ``StartupError`` naming
    ``REDIS_URL`` when the server does not answer."""
    redis = aioredis.Redis.from_url(
        settings.redis_url, decode_responses=True,
        socket_timeout=settings.redis_socket_timeout, socket_connect_timeout=5,
        health_check_interval=30,
    )
    try:
        await redis.ping()
    except (rex.RedisError, OSError) as exc:
        await redis.aclose()
        raise StartupError(
            f"cannot reach Redis at REDIS_URL={redact(settings.redis_url)}: {exc}"
        ) from exc
    return redis


async def open_pool(settings: WorkerSettings) -> asyncpg.Pool:
    try:
        return await create_pool(
            settings.database_url, min_size=1, application_name="runledger worker",
            # Each run in flight holds a connection for its appends (see RunWriter); the
            # executor, recovery and heartbeat need some more.
            max_size=max(settings.database_pool_size, settings.worker_concurrency + 4),
        )
    except StoreError as exc:
        raise StartupError(
            f"cannot reach PostgreSQL at DATABASE_URL={redact(settings.database_url)}: {exc}"
        ) from exc


def log_startup(settings: WorkerSettings) -> None:
    log.info(
        "Worker starting consumer=%s group=%s stream=%s concurrency=%d",
        settings.redis_consumer_name, WORKER_GROUP, QUEUE, settings.worker_concurrency,
    )
    log.info(
        "Configured: REDIS_URL=%s DATABASE_URL=%s",
        redact(settings.redis_url), redact(settings.database_url),
    )
    log.info(
        "Recovery: check every %gs, stuck after %g min; claim idle jobs after %gs, "
        "dead-letter after %d deliveries",
        settings.recovery_check_interval_seconds, settings.stuck_run_timeout_minutes,
        settings.claim_idle_seconds, settings.max_deliveries,
    )
    log.info(
        "Timeouts: step %gs, run %gs; read block %gs",
        settings.step_timeout_seconds, settings.run_timeout_seconds,
        settings.worker_block_seconds,
    )


async def _close_redis(redis: aioredis.Redis) -> None:
    await asyncio.shield(redis.aclose())
    log.info("Redis connection closed")


async def close_pool(pool: asyncpg.Pool) -> None:
    try:
        await asyncio.wait_for(asyncio.shield(pool.close()), timeout=10)
    except TimeoutError:
        pool.terminate()
    log.info("PostgreSQL pool closed")


async def _close_executor(executor: Executor) -> None:
    await asyncio.shield(executor.close())
    log.info("Executor closed")
