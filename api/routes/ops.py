"""``/health`` (open, for load balancers) and ``/metrics`` (Prometheus)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from fastapi import APIRouter, Depends, Response
from fastapi.responses import JSONResponse
from pydantic import Field
from redis.exceptions import RedisError

from api.auth import authenticate
from api.deps import ServicesDep
from api.metrics import CONTENT_TYPE
from api.problems import responses
from api.schemas import Health
from api.services import Services
from ledger.db import translated
from ledger.errors import StoreError
from ledger.sql import load_queries
from ledger.streams import NO_BROWSER_PREFIX
from projections.parking import parked_counts

log = logging.getLogger(__name__)

Q = load_queries("api", "ops.sql")
CHECK_TIMEOUT_SECONDS = 2.0

health_router = APIRouter(tags=["operations"])
metrics_router = APIRouter(tags=["operations"], dependencies=[Depends(authenticate)])


async def _database_ok(services: Services) -> bool:
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_SECONDS):
            with translated():
                await services.pool.fetchval(Q["ping"])
    except (StoreError, TimeoutError) as exc:
        log.warning("health: database unavailable: %s", exc)
        return False
    return True


class HealthWithParked(Health):
    browser: str = Field(
        "ok",
        description="`no browser` while a worker process waits for a Chromium (it found "
        "none and could not install one; its runs wait in the queue), else `ok`.",
    )
    browser_hint: str | None = Field(
        None, description="How to install a browser, when `browser` is `no browser`.")
    parked_events: dict[str, int] = Field(
        default_factory=dict,
        description="Events each follower could not apply and parked (see `runledger "
        "followers`); empty when the database is unavailable. Parked events are not an "
        "outage: they leave the status alone.",
    )


async def _parked(services: Services) -> dict[str, int]:
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_SECONDS):
            return await parked_counts(services.pool)
    except (StoreError, TimeoutError) as exc:
        log.warning("health: parked events unavailable: %s", exc)
        return {}


async def _redis_ok(services: Services) -> bool:
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_SECONDS):
            await services.redis.ping()
    except (RedisError, OSError, TimeoutError) as exc:
        log.warning("health: Redis unavailable: %s", exc)
        return False
    return True


async def _no_browser(services: Services) -> str | None:
    """How to install a browser, when some worker reported it has none (else None)."""
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_SECONDS):
            async for key in services.redis.scan_iter(match=f"{NO_BROWSER_PREFIX}*", count=100):
                hint = await services.redis.get(key)
                if hint is not None:
                    return hint if isinstance(hint, str) else hint.decode()
    except (RedisError, OSError, TimeoutError) as exc:
        log.warning("health: browser reports unavailable: %s", exc)
    return None


@health_router.get("/health", response_model=HealthWithParked,
                   responses={503: {"model": HealthWithParked, "description": "Degraded"}})
async def health(services: ServicesDep) -> Any:
    """`healthy` when PostgreSQL and Redis answer; otherwise `degraded` with 503. The body
    also counts each follower's parked events, and says `no browser` while a worker waits
    for one (the API itself is fine: the status stays `healthy`)."""
    database, redis = await asyncio.gather(_database_ok(services), _redis_ok(services))
    healthy = database and redis and services.failure is None
    body = HealthWithParked(
        status="healthy" if healthy else "degraded",
        database="ok" if database else "unavailable",
        redis="ok" if redis else "unavailable",
        parked_events=await _parked(services) if database else {},
    )
    hint = await _no_browser(services) if redis else None
    if hint is not None:
        body.browser, body.browser_hint = "no browser", hint
    return JSONResponse(body.model_dump(), status_code=200 if healthy else 503)


@metrics_router.get(
    "/metrics", response_class=Response,
    responses={200: {"content": {CONTENT_TYPE: {"schema": {"type": "string"}}},
                     "description": "Prometheus text exposition"}, **responses(401)},
)
async def metrics(services: ServicesDep) -> Response:
    """Requests, runs by status, queue length and pending jobs, follower lag and parked
    events, open streams."""
    await services.metrics.refresh(queries=services.queries, pool=services.pool,
                                   redis=services.redis)
    return Response(services.metrics.render(), media_type=CONTENT_TYPE)
