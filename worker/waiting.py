"""A worker that starts without a browser: it waits for one instead of dying.

``run_worker_when_browser`` is what ``runledger dev`` and ``runledger worker`` run. It finds
a Chromium (or installs one when ``BROWSER_AUTO_INSTALL`` allows it); when there is none it
logs **one** line saying how to install one, reports "no browser" in Redis (the
``NO_BROWSER_PREFIX`` key that ``/health`` reads, kept alive while it waits), and looks again
every few seconds. Runs queued meanwhile wait in ``runs:queue``: nobody consumes them, so
nothing fails. Once a browser appears the worker starts with it, as if it had been there.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import redis.asyncio as aioredis
from redis import exceptions as rex

from ledger.streams import NO_BROWSER_PREFIX
from worker.service import ExecutorFactory, run_worker
from worker.settings import WorkerSettings

log = logging.getLogger(__name__)


class NoBrowserReport:
    """The "no browser" key of one waiting worker; Redis errors are logged, never raised
    (the report is a courtesy to ``/health``, not a reason to stop)."""

    def __init__(self, redis: aioredis.Redis, consumer: str, ttl_seconds: float) -> None:
        self._redis = redis
        self._key = f"{NO_BROWSER_PREFIX}{consumer}"
        # At least 15 s: looking for Playwright's browser starts its driver, which can take
        # seconds on a busy machine, and the report must not lapse meanwhile.
        self._ttl = max(15, int(ttl_seconds))

    async def set(self, hint: str) -> None:
        try:
            await self._redis.set(self._key, hint, ex=self._ttl)
        except (rex.RedisError, OSError) as exc:
            log.debug("could not report 'no browser' to Redis: %s", exc)

    async def clear(self) -> None:
        try:
            await self._redis.delete(self._key)
        except (rex.RedisError, OSError) as exc:
            log.debug("could not clear the 'no browser' report: %s", exc)


async def browser_for(
    settings: WorkerSettings, stop: asyncio.Event, *, recheck_seconds: float | None = None
) -> Path | None:
    """A browser to launch: found, installed, or waited for (None: stopped while waiting)."""
    from worker.agent.install import (
        NO_BROWSER,
        find_or_install,
        wait_for_browser,
    )

    configured = settings.chromium_path
    browser = await find_or_install(configured, auto_install=settings.browser_auto_install)
    if browser is not None:
        return browser
    every = recheck_seconds or settings.browser_recheck_seconds
    redis = aioredis.Redis.from_url(settings.redis_url, socket_connect_timeout=5,
                                    socket_timeout=5)
    report = NoBrowserReport(redis, settings.redis_consumer_name, every * 3)
    try:
        await report.set(NO_BROWSER)  # before the line: whoever reads it finds /health agree
        log.warning("%s", NO_BROWSER if not configured else
                    f"no browser: CHROMIUM_PATH={configured} is not an executable file; "
                    "runs wait in the queue until it is")
        browser = await wait_for_browser(configured, stop, recheck_seconds=every,
                                         waiting=lambda: report.set(NO_BROWSER))
        await report.clear()
    finally:
        await asyncio.shield(redis.aclose())
    if browser is not None:
        log.info("found a browser: %s; the worker starts", browser)
    return browser


async def run_worker_when_browser(
    settings: WorkerSettings, executor: ExecutorFactory, stop: asyncio.Event, *,
    force_stop: asyncio.Event | None = None, recheck_seconds: float | None = None,
) -> None:
    """``run_worker`` once a browser is there (its path becomes ``CHROMIUM_PATH``)."""
    browser = await browser_for(settings, stop, recheck_seconds=recheck_seconds)
    if browser is None:
        return
    settings = settings.model_copy(update={"chromium_path": str(browser)})
    await run_worker(settings, executor, stop, force_stop=force_stop)
