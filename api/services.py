"""What one API process opens at start-up and closes at shutdown, in one place.

``open_services`` is entered by the app's lifespan: the pool, Redis, the shared
``LogListener`` and two background tasks — the stream hub (one XREAD for all live tails)
and the expiry of idempotency keys. Resources are closed in reverse order, in ``finally``;
the tasks are owned, named and supervised (``ledger.aio.supervise``): if one dies of
anything but the transient errors it handles itself, the other is stopped, ``on_fatal`` is
called (the CLI stops the server) and ``/health`` reports degraded until then.
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
from api.feed import RunFeed
from api.hub import StreamHub
from api.metrics import Metrics
from api.reads import RunReads
from api.settings import ApiSettings
from api.signing import UrlSigner, signing_secret
from api.tail import RunTail
from ledger.aio import supervise, wait_any
from ledger.artifacts import FileArtifactStore
from ledger.db import create_pool
from ledger.errors import StoreError
from ledger.settings import redact
from ledger.store import LogListener, PgEventStore
from projections.queries import RunQueries
from projections.test_stats import TestStatsQueries

log = logging.getLogger(__name__)

JANITOR_INTERVAL_SECONDS = 3600.0
STOP_DEADLINE_SECONDS = 5.0  # for the background tasks, once asked to stop
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
    #: screenshots and traces (read through ``reads``), and the files upload steps send
    artifacts: FileArtifactStore
    #: the runs feed of the web pages, test statistics, signed artifact links
    feed: RunFeed
    stats: TestStatsQueries
    signer: UrlSigner
    #: set when the server begins to shut down: every open stream ends at once, cleanly
    closing: asyncio.Event = field(default_factory=asyncio.Event)
    #: set when a background task died: the process is unhealthy
    failure: BaseException | None = field(default=None)


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
    settings: ApiSettings, metrics: Metrics, on_fatal: OnFatal | None = None, *,
    closing: asyncio.Event | None = None,
) -> AsyncIterator[Services]:
    async with contextlib.AsyncExitStack() as stack:
        pool = await create_pool(
            settings.database_url, min_size=1, max_size=settings.database_pool_size,
            application_name=CLIENT_NAME,
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
        artifacts = FileArtifactStore(settings.artifacts_dir)
        services = Services(
            settings=settings, pool=pool, redis=redis, hub=hub, listener=listener, store=store,
            tests=tests,
            commands=RunCommands(pool, store, tests,
                                 idempotency_ttl_seconds=settings.idempotency_ttl_seconds),
            queries=queries,
            reads=RunReads(store, queries, artifacts), artifacts=artifacts,
            tail=RunTail(store, hub, listener, block_ms=settings.stream_block_ms,
                         redis_retry_seconds=settings.redis_retry_seconds,
                         poll_seconds=settings.listen_poll_seconds),
            metrics=metrics, closing=closing or asyncio.Event(),
            feed=RunFeed(pool, store, listener), stats=TestStatsQueries(pool),
            signer=UrlSigner(signing_secret(settings.url_signing_key, settings.api_keys),
                             ttl_seconds=settings.signed_url_seconds),
        )
        stop = asyncio.Event()
        background = asyncio.create_task(_run_background(services, stop, on_fatal),
                                         name="api-background")
        stack.push_async_callback(_stop_background, stop, background)
        log.info("API services ready: database %s, redis %s", redact(settings.database_url),
                 redact(settings.redis_url))
        yield services


async def _run_background(services: Services, stop: asyncio.Event,
                          on_fatal: OnFatal | None) -> None:
    """The background tasks until ``stop``. The hub is asked to stop through its event
    (cancelling it is unsafe, see ``api.hub``); when one task dies, the other is stopped
    and the death is reported: ``/health`` then says degraded and ``on_fatal`` is called."""
    halt = asyncio.Event()  # what the tasks watch: set on stop or when one of them died
    try:
        await supervise([
            ("api-stream-hub", services.hub.run(halt)),
            ("api-idempotency-janitor", _expire_keys(services.commands, halt)),
        ], stop=stop, halt=halt, grace_seconds=STOP_DEADLINE_SECONDS)
    except Exception as exc:
        log.critical("a background task died; the API is unhealthy", exc_info=exc)
        services.failure = exc
        if on_fatal is not None:
            on_fatal(exc)


async def _stop_background(stop: asyncio.Event, background: asyncio.Task[None]) -> None:
    stop.set()
    # Bounded by supervise's grace; a death was reported when it happened.
    await background


async def _expire_keys(commands: RunCommands, stop: asyncio.Event) -> None:
    """Delete expired idempotency keys hourly until ``stop``. Expired keys are already
    ignored when looked up; this only keeps the table small. Several replicas may run it:
    deletes are idempotent."""
    while not stop.is_set():
        try:
            deleted = await commands.delete_expired_keys()
        except StoreError as exc:  # the database is down or restarting: try next time
            log.warning("expiring idempotency keys failed, will retry: %s", exc)
        else:
            if deleted:
                log.info("expired %d idempotency key(s)", deleted)
        await wait_any(stop, seconds=JANITOR_INTERVAL_SECONDS)
