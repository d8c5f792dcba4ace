"""The projector service: every follower of the log in one process, until told to stop.

``run_projector(settings, stop)`` opens what it needs (a pool, a Redis client, one shared
``LogListener``), builds the followers in ``build_followers`` — the one place that lists
them — and runs one supervised task per follower. Shutdown protocol, on ``stop``: followers
finish the batch in hand (each batch is one transaction or one idempotent pipeline, so
cutting one short would also be safe) → wait up to ``SHUTDOWN_GRACE_SECONDS`` → cancel
what is left → close listener, Redis and pool. A follower that fails permanently stops the
others the same way and its error is re-raised: the process exits loudly, and a standby
process (if any) takes over its locks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import asyncpg
import redis.asyncio as aioredis
from pydantic import Field

from ledger.aio import supervise
from ledger.db import create_pool
from ledger.settings import DatabaseSettings, RedisSettings, redact
from ledger.store import LogListener
from projections import locator_memory, runs, steps
from projections.follower import Follower, FollowerRunner
from projections.relay import RedisRelay

log = logging.getLogger(__name__)

SHUTDOWN_GRACE_SECONDS = 10.0


class ProjectorSettings(DatabaseSettings, RedisSettings):
    """Settings of ``runledger projector`` (environment variables in upper case)."""

    projector_batch_size: int = Field(
        500, ge=1, le=100_000, description="Most events a follower applies in one batch."
    )
    projector_poll_interval_seconds: float = Field(
        1.0, gt=0,
        description="Seconds between polls of the log when a NOTIFY is lost; also how often "
        "the relay checks that Redis still holds its marker.",
    )
    follower_standby_retry_seconds: float = Field(
        1.0, gt=0, description="Seconds between a standby's attempts to take a follower's lock."
    )
    projector_read_model_linger_seconds: float = Field(
        0.02, ge=0,
        description="Seconds a read model waits after a wake-up to batch the commits that follow.",
    )
    run_stream_retention_seconds: int = Field(
        86_400, ge=1,
        description="Seconds a finished run's `run_events:{id}` stream is kept after it finished "
        "(its history stays in PostgreSQL).",
    )
    relay_trim_interval_seconds: float = Field(
        10.0, gt=0, description="Seconds between trims of acknowledged jobs from `runs:queue`."
    )
    relay_checkpoint_interval_seconds: float = Field(
        0.5, ge=0,
        description="The relay saves its position at most this often, in seconds; a crash "
        "re-publishes at most that much, idempotently.",
    )


def build_followers(
    settings: ProjectorSettings, pool: asyncpg.Pool, redis: aioredis.Redis
) -> list[Follower]:
    """Every follower this process runs. To add one, add one line here."""
    relay = RedisRelay(
        pool, redis,
        retention_seconds=settings.run_stream_retention_seconds,
        trim_interval_seconds=settings.relay_trim_interval_seconds,
        check_interval_seconds=settings.projector_poll_interval_seconds,
        checkpoint_interval_seconds=settings.relay_checkpoint_interval_seconds,
    )
    linger = settings.projector_read_model_linger_seconds
    # ── followers ───────────────────────────────────────────────────────────────────
    return [
        runs.MODEL.follower(linger_seconds=linger),
        steps.MODEL.follower(linger_seconds=linger),
        locator_memory.MODEL.follower(linger_seconds=linger),
        relay.follower(),
    ]
    # ────────────────────────────────────────────────────────────────────────────────


async def run_projector(settings: ProjectorSettings, stop: asyncio.Event) -> None:
    """Run all followers until ``stop`` is set; raises the error of a follower that failed."""
    pool: asyncpg.Pool | None = None
    redis: aioredis.Redis | None = None
    listener = LogListener(settings.database_url,
                           poll_interval=settings.projector_poll_interval_seconds)
    try:
        # Followers use their own connections; the pool serves the relay's upkeep.
        pool = await create_pool(settings.database_url, min_size=1,
                                 max_size=min(2, settings.database_pool_size))
        redis = aioredis.Redis.from_url(settings.redis_url, decode_responses=True)
        await listener.start()
        followers = build_followers(settings, pool, redis)
        log.info("projector: %d follower(s) on %s and %s", len(followers),
                 redact(settings.database_url), redact(settings.redis_url))
        # The runners watch ``halt``, not ``stop``: a failing sibling can then stop them
        # without touching the caller's event.
        halt = asyncio.Event()
        runners = [
            FollowerRunner(
                follower, dsn=settings.database_url, listener=listener,
                stop=halt, batch_size=settings.projector_batch_size,
                standby_retry_seconds=settings.follower_standby_retry_seconds,
            )
            for follower in followers
        ]
        await supervise(((f"follower:{r.name}", r.run()) for r in runners), stop=stop,
                        halt=halt, grace_seconds=SHUTDOWN_GRACE_SECONDS)
    finally:
        await listener.close()
        if redis is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(redis.aclose())
        if pool is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(pool.close())
        log.info("projector: stopped")
