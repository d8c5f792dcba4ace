"""The projector service: every follower of the log in one process, until told to stop.

``run_projector(settings, stop)`` opens what it needs (a pool, a Redis client, one shared
``LogListener``), builds the followers in ``build_followers`` — the one place that lists
them — and runs one supervised task per follower. Shutdown protocol, on ``stop``: followers
finish the batch in hand (each batch is one transaction or one idempotent pipeline, so
cutting one short would also be safe) → wait up to ``SHUTDOWN_GRACE_SECONDS`` → cancel
what is left → close listener, Redis and pool.

Followers are isolated from one another, the relay above all: an event a follower cannot
apply is parked by its runner (``projections.parking``) and the follower goes on. A runner
that still dies (its parking, upkeep or activation failing for good) is logged at ERROR and
restarted alone, with back-off (``FOLLOWER_RESTART``); its siblings never notice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import asyncpg
import redis.asyncio as aioredis
from pydantic import Field, model_validator

from ledger.aio import Backoff, supervise, wait_any
from ledger.db import create_pool
from ledger.settings import DatabaseSettings, RedisSettings, redact
from ledger.store import LogListener
from projections import locator_memory, runs, steps, test_stats
from projections.follower import Follower, FollowerRunner
from projections.relay import RedisRelay
from projections.retries import RetryManager
from projections.retry import RetryResult, retry_parked
from projections.webhooks import WebhookSender, WebhookSettings

log = logging.getLogger(__name__)

SHUTDOWN_GRACE_SECONDS = 10.0
#: how long a follower that died waits before it is started again (doubling, capped)
FOLLOWER_RESTART = Backoff(base_seconds=1.0, max_seconds=60.0)


class ProjectorSettings(DatabaseSettings, RedisSettings, WebhookSettings):
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
        1.0, gt=0, description="Seconds between a standby's attempts to take a follower's lease."
    )
    follower_lease_seconds: float = Field(
        10.0, gt=0,
        description="Seconds a follower's lease lasts without renewal: a standby takes over a "
        "follower whose active process hangs (SIGSTOP, a stalled host) after this long, and at "
        "once when the process dies. The holder renews it every third of it.",
    )
    queued_run_repair_seconds: float = Field(
        60.0, gt=0,
        description="Seconds a run may stay `queued` with no job waiting or delivered in "
        "`runs:queue` before the relay enqueues it again (its job was lost: the queue deleted "
        "or evicted). A duplicate job is harmless.",
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
    follower_apply_retries: int = Field(
        3, ge=0, le=100,
        description="Times a follower retries an event it cannot apply before it parks it "
        "(`runledger followers` lists parked events; `followers retry` re-applies them).",
    )
    follower_retry_base_seconds: float = Field(
        0.5, ge=0,
        description="Seconds before a follower's first retry of an event it cannot apply; "
        "doubled at each further retry, at most 5 s.",
    )
    relay_checkpoint_interval_seconds: float = Field(
        0.5, ge=0,
        description="The relay saves its position at most this often, in seconds; a crash "
        "re-publishes at most that much, idempotently.",
    )

    @model_validator(mode="after")
    def _lease_outlasts_a_wait(self) -> ProjectorSettings:
        # An idle follower renews between waits of up to one poll interval: a lease shorter
        # than a few of them would expire under a healthy holder.
        if self.follower_lease_seconds < 3 * self.projector_poll_interval_seconds:
            raise ValueError(
                f"FOLLOWER_LEASE_SECONDS ({self.follower_lease_seconds:g}) must be at least 3 x "
                f"PROJECTOR_POLL_INTERVAL_SECONDS ({self.projector_poll_interval_seconds:g})")
        return self


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
        queued_repair_seconds=settings.queued_run_repair_seconds,
    )
    linger = settings.projector_read_model_linger_seconds
    # ── followers ───────────────────────────────────────────────────────────────────
    return [
        runs.MODEL.follower(linger_seconds=linger),
        steps.MODEL.follower(linger_seconds=linger),
        locator_memory.MODEL.follower(linger_seconds=linger),
        test_stats.MODEL.follower(linger_seconds=linger),
        relay.follower(),
        RetryManager(pool).follower(),
        WebhookSender(settings).follower(),
    ]
    # ────────────────────────────────────────────────────────────────────────────────


async def keep_running(
    runner: FollowerRunner, stop: asyncio.Event, restart: Backoff = FOLLOWER_RESTART
) -> None:
    """Run ``runner`` until ``stop``, starting it again (after a back-off) whenever it dies:
    one follower failing must not stop the others."""
    failures = 0
    while not stop.is_set():
        began = asyncio.get_running_loop().time()
        try:
            await runner.run()
            return
        # Supervision, not business logic: whatever killed the runner is logged in full and
        # the runner restarted; only cancellation (not an Exception) ends this loop early.
        except Exception as exc:
            if asyncio.get_running_loop().time() - began > restart.max_seconds:
                failures = 0  # it had been running fine: start the back-off over
            failures += 1
            delay = restart.delay(failures)
            log.error("follower %s died (%s); restarting it in %.1fs", runner.name, exc, delay,
                      exc_info=exc)
            await wait_any(stop, seconds=delay)


async def run_projector(settings: ProjectorSettings, stop: asyncio.Event) -> None:
    """Run all followers until ``stop`` is set (a follower that dies is restarted alone)."""
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
        retry = Backoff(retries=settings.follower_apply_retries,
                        base_seconds=settings.follower_retry_base_seconds, max_seconds=5.0)
        runners = [
            FollowerRunner(
                follower, dsn=settings.database_url, listener=listener,
                stop=halt, batch_size=settings.projector_batch_size,
                standby_retry_seconds=settings.follower_standby_retry_seconds,
                lease_seconds=settings.follower_lease_seconds, retry=retry,
            )
            for follower in followers
        ]
        await supervise(((f"follower:{r.name}", keep_running(r, halt)) for r in runners),
                        stop=stop, halt=halt, grace_seconds=SHUTDOWN_GRACE_SECONDS)
    finally:
        await listener.close()
        if redis is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(redis.aclose())
        if pool is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(pool.close())
        log.info("projector: stopped")


async def retry_parked_events(
    settings: ProjectorSettings, *, follower: str | None = None,
    ids: list[int] | None = None,
) -> RetryResult:
    """``runledger followers retry``: re-apply parked events through this release's
    followers (``build_followers``), with their own pool and Redis client."""
    pool = await create_pool(settings.database_url, min_size=1, max_size=2)
    redis = aioredis.Redis.from_url(settings.redis_url, decode_responses=True)
    try:
        return await retry_parked(pool, build_followers(settings, pool, redis),
                                  follower=follower, ids=ids)
    finally:
        with contextlib.suppress(Exception):
            await asyncio.shield(redis.aclose())
        await asyncio.shield(pool.close())
