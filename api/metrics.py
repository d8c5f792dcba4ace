"""Prometheus metrics, one registry per app (tests build many apps in one process).

Request counters and latencies are recorded by the request-context middleware; the gauges
that describe the system (runs by status, queue, follower lag and parked events) are
refreshed at scrape time.
"""

from __future__ import annotations

import logging

import asyncpg
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError

from ledger.errors import StoreError
from ledger.streams import QUEUE, WORKER_GROUP
from projections.follower import follower_lag
from projections.parking import parked_counts
from projections.queries import RunQueries
from projections.webhooks import webhook_counts

log = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
RUN_STATUSES = ("queued", "running", "passed", "failed", "cancelled")


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "runledger_http_requests", "HTTP requests served",
            ["method", "route", "status"], registry=r,
        )
        self.latency = Histogram(
            "runledger_http_request_duration_seconds",
            "Time to serve a request (for streams: how long the stream was open)",
            ["method", "route"], registry=r,
            buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10, 60, 600),
        )
        self.streams = Gauge("runledger_sse_streams", "Open SSE streams", registry=r)
        self.runs = Gauge("runledger_runs", "Runs by status (runs read model)", ["status"],
                          registry=r)
        self.queue_length = Gauge("runledger_queue_length", f"Entries in {QUEUE}",
                                  registry=r)
        self.queue_pending = Gauge(
            "runledger_queue_pending",
            f"Jobs of {QUEUE} delivered to a worker and not yet acknowledged", registry=r,
        )
        self.follower_lag = Gauge(
            "runledger_follower_lag_events", "Events committed but not yet applied, per follower",
            ["follower"], registry=r,
        )
        self.webhook_deliveries = Gauge(
            "runledger_webhook_deliveries",
            "Webhook deliveries since the database was created, by outcome: delivered, "
            "failed_attempt (a try that failed), gave_up (no try of the delivery succeeded)",
            ["outcome"], registry=r,
        )
        self.follower_parked = Gauge(
            "runledger_follower_parked_events",
            "Events a follower could not apply and parked (runledger followers retry)",
            ["follower"], registry=r,
        )
        self.database_up = Gauge("runledger_database_up", "PostgreSQL answered the scrape",
                                 registry=r)
        self.redis_up = Gauge("runledger_redis_up", "Redis answered the scrape", registry=r)

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)

    async def refresh(self, *, queries: RunQueries, pool: asyncpg.Pool, redis: Redis) -> None:
        """Read the system gauges; a dependency that is down zeroes its ``*_up`` gauge."""
        try:
            counts = await queries.count_by_status()
            lag = await follower_lag(pool)
            parked = await parked_counts(pool)
            webhooks = await webhook_counts(pool)
        except StoreError as exc:
            log.warning("metrics: database unavailable: %s", exc)
            self.database_up.set(0)
        else:
            self.database_up.set(1)
            for status in {*RUN_STATUSES, *counts}:
                self.runs.labels(status).set(counts.get(status, 0))
            for follower, behind in lag.items():
                self.follower_lag.labels(follower).set(behind)
            for follower, count in parked.items():
                self.follower_parked.labels(follower).set(count)
            for outcome, count in webhooks.items():
                self.webhook_deliveries.labels(outcome).set(count)
        try:
            length, pending = await queue_depth(redis)
        except (RedisError, OSError) as exc:
            log.warning("metrics: Redis unavailable: %s", exc)
            self.redis_up.set(0)
        else:
            self.redis_up.set(1)
            self.queue_length.set(length)
            self.queue_pending.set(pending)

    def render(self) -> bytes:
        return generate_latest(self.registry)


async def queue_depth(redis: Redis) -> tuple[int, int]:
    """(entries, pending) of the job stream; pending is 0 before any worker created the
    group."""
    length = await redis.xlen(QUEUE)
    try:
        summary = await redis.xpending(QUEUE, WORKER_GROUP)
    except ResponseError as exc:
        if "NOGROUP" not in str(exc):
            raise
        return length, 0
    return length, int(summary["pending"])
