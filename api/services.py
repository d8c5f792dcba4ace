"""What one API process opens at start-up and closes at shutdown, in one place.

``open_services`` is entered by the app's lifespan: the pool, Redis, the shared
``LogListener`` and two background tasks — the stream hub (one XREAD for all live tails)
and the expiry of idempotency keys. Resources are closed in reverse order, in ``finally``;
the tasks are owned, named and supervised: if one dies of anything but the transient
errors it handles itself, ``on_fatal`` is called (the CLI stops the server) and ``/health``
reports degraded until then.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import asyncpg
from redis.asyncio import BlockingConnectionPool, Redis

from api.commands import RunCommands
from api.definitions import PgTestRepository
from api.hub import StreamHub
from api.metrics import Metrics
from api.reads import RunReads
from api.settings import ApiSettings
from api.tail import RunTail
from ledger.artifacts import FileArtifactStore
from ledger.db import create_pool
from ledger.errors import StoreError
from ledger.settings import redact
from ledger.store import LogListener, PgEventStore
from projections.follower import follower_lag
from projections.queries import RunQueries

log = logging.getLogger(__name__)

JANITOR_INTERVAL_SECONDS = 3600.0
STOP_DEADLINE_SECONDS = 5.0
REDIS_POOL_WAIT_SECONDS = 2.0
COMMAND_CONNECTIONS = 10
#: how the API's connections show in ``CLIENT LIST``
CLIENT_NAME = "runledger-api"
OnFatal = Callable[[BaseException], None]


@dataclass
class Services:
    settings: ApiSettings
    pool: asyncpg.Pool
    #: short commands (health, metrics, waking the hub); the hub's blocking read has a
    #: connection of its own, so open streams never starve a health check
    redis: Redis
    #: one XREAD BLOCK (one connection) for every open stream of the process
    hub: StreamHub
    listener: LogListener
    store: PgEventStore
    tests: PgTestRepository
    commands: RunCommands
    queries: RunQueries
    reads: RunReads
    tail: RunTail
    metrics: Metrics
    #: set when a background task died: the process is unhealthy
    failure: BaseException | None = field(default=None)
    #: set when shutdown begins: background tasks then end by design
    closing: bool = field(default=False)

    async def follower_lag(self) -> dict[str, int]:
        return await follower_lag(self.pool)


def redis_pool(settings: ApiSettings, max_connections: int) -> BlockingConnectionPool:
    """No I/O: connections are opened on first use. The socket timeout exceeds the
    hub's XREAD BLOCK, or the client would abort a healthy blocking read."""
    return BlockingConnectionPool.from_url(
        settings.redis_url, max_connections=max_connections, timeout=REDIS_POOL_WAIT_SECONDS,
        socket_timeout=settings.redis_socket_timeout, socket_connect_timeout=2,
        decode_responses=True, health_check_interval=30, client_name=CLIENT_NAME,
    )


@contextlib.asynccontextmanager
async def open_services(
    settings: ApiSettings, metrics: Metrics, on_fatal: OnFatal | None = None
) -> AsyncIterator[Services]:
    async with contextlib.AsyncExitStack() as stack:
        pool = await create_pool(
            settings.database_url, min_size=1, max_size=settings.database_pool_size
        )
        stack.push_async_callback(pool.close)
        redis = Redis.from_pool(redis_pool(settings, COMMAND_CONNECTIONS))
        stack.push_async_callback(redis.aclose)
        hub = StreamHub(redis_pool(settings, 1), redis, block_ms=settings.stream_block_ms)
        listener = LogListener(settings.database_url, poll_interval=settings.listen_poll_seconds)
        await listener.start()
        stack.push_async_callback(listener.close)

        store = PgEventStore(pool, lock_timeout_seconds=settings.lock_timeout_seconds)
        tests = PgTestRepository(pool)
        queries = RunQueries(pool)
        services = Services(
            settings=settings, pool=pool, redis=redis, hub=hub, listener=listener, store=store,
            tests=tests,
            commands=RunCommands(pool, store, tests,
                                 idempotency_ttl_seconds=settings.idempotency_ttl_seconds),
            queries=queries,
            reads=RunReads(store, queries, FileArtifactStore(settings.artifacts_dir)),
            tail=RunTail(store, hub, listener, block_ms=settings.stream_block_ms,
                         redis_retry_seconds=settings.redis_retry_seconds,
                         poll_seconds=settings.listen_poll_seconds),
            metrics=metrics,
        )
        tasks = [asyncio.create_task(work, name=name) for name, work in (
            ("api-stream-hub", hub.run()),
            ("api-idempotency-janitor", _expire_keys(services)),
        )]
        for task in tasks:
            task.add_done_callback(lambda done: _supervise(done, services, on_fatal))
        stack.push_async_callback(_stop_tasks, services, tasks)
        log.info("API services ready: database %s, redis %s", redact(settings.database_url),
                 redact(settings.redis_url))
        yield services


async def _expire_keys(services: Services) -> None:
    """Delete expired idempotency keys hourly. Expired keys are already ignored when
    looked up; this only keeps the table small. Several replicas may run it: deletes are
    idempotent."""
    while True:
        try:
            deleted = await services.commands.delete_expired_keys()
        except StoreError as exc:  # the database is down or restarting: try next time
            log.warning("expiring idempotency keys failed, will retry: %s", exc)
        else:
            if deleted:
                log.info("expired %d idempotency key(s)", deleted)
        await asyncio.sleep(JANITOR_INTERVAL_SECONDS)


def _supervise(task: asyncio.Task[None], services: Services, on_fatal: OnFatal | None) -> None:
    if task.cancelled() or (services.closing and task.exception() is None):
        return
    exc = task.exception()
    if exc is None:
        exc = RuntimeError(f"background task {task.get_name()} returned unexpectedly")
    log.critical("background task %s died; the API is unhealthy", task.get_name(),
                 exc_info=exc)
    services.failure = exc
    if on_fatal is not None:
        on_fatal(exc)


async def _stop_tasks(services: Services, tasks: list[asyncio.Task[None]]) -> None:
    """The hub is asked to stop (cancelling it is unsafe, see ``api.hub``); the janitor,
    which only sleeps or runs one short query, is cancelled. Each gets a deadline."""
    services.closing = True
    await services.hub.stop()
    for task in tasks:
        if task.get_name() != "api-stream-hub":
            task.cancel()
    _, late = await asyncio.wait(tasks, timeout=STOP_DEADLINE_SECONDS)
    for task in late:
        log.warning("%s did not stop within %.0fs; cancelling it", task.get_name(),
                    STOP_DEADLINE_SECONDS)
        task.cancel()
    # Errors were reported by _supervise when the tasks died; here they only end.
    await asyncio.gather(*tasks, return_exceptions=True)
