"""``Supervisor``: the running worker's tasks, and the graceful-shutdown protocol.

Tasks, all named and owned by one task group (one that dies stops the worker loudly):

* ``worker-consumer`` reads ``runs:queue`` (reclaiming dead consumers' jobs first) and runs up
  to ``WORKER_CONCURRENCY`` jobs, each a ``run-job:<entry>`` task in a nested group; a job
  that fails ends alone (logged, its entry left pending for a reclaim), never its siblings;
* ``worker-keep-fresh`` keeps the held jobs fresh, so they are neither reclaimed nor their
  runs recovered while they execute;
* ``worker-recovery`` times out stuck runs;
* ``worker-heartbeat`` logs health (Redis, PostgreSQL, load) and idleness, and removes
  consumers of dead workers that hold nothing;
* ``worker-force-stop`` turns ``force_stop`` into an immediate stop.

Shutdown protocol (``stop`` set, e.g. by the first SIGTERM/SIGINT):

1. stop reading: no new job is taken (a read already in flight returns its jobs to the
   group with an idle time that lets any worker take them at once);
2. drain: wait for the in-flight runs, each bounded by ``RUN_TIMEOUT_SECONDS`` (plus a grace
   for the final writes); runs still going past that are cancelled, their jobs left pending;
3. stop recovery, keep-fresh and heartbeat; leave the consumer group if nothing is pending.

``run_worker`` (``worker.service``) then closes the executor, the pool and Redis.
``force_stop`` (a second signal) cancels everything at once; un-acknowledged jobs stay
pending and other workers reclaim them once idle past ``CLAIM_IDLE_SECONDS``.

No answer of Redis stops the worker: a vanished queue or group (NOGROUP, Redis 7's
``UNBLOCKED``) is re-created, and any other error (down, out of memory, read-only, a refused
command) is logged and the loop that met it backs off (``ledger.aio.Backoff``) and tries
again.

While the database is unreachable for longer than the retries of one job, no new job is
read: reading on would only make every queued job pending, to be reclaimed later.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from typing import Any

import asyncpg

from ledger.aio import Backoff, wait_any
from ledger.store import PgEventStore
from ledger.streams import QUEUE, WORKER_GROUP
from worker.consumer import ConsumerConfig, RunConsumer
from worker.errors import TRANSIENT, GroupMissing, QueueError, StartupError
from worker.ports import Executor
from worker.queue import Job, RedisRunQueue
from worker.recovery import StuckRunQueries, StuckRunRecovery
from worker.settings import WorkerSettings

log = logging.getLogger(__name__)

# What a background loop logs and outlives: a transient database error, or any answer of
# Redis — down, out of memory, read-only, or refusing a command (the loop tries again on its
# next turn). Anything else is a bug, and stops the worker loudly.
PASSING = (*TRANSIENT, QueueError)
# Consumers silent this long (or 10 idle periods, if longer) and holding nothing are removed.
PRUNE_AFTER_SECONDS = 3600.0


class _ForcedStop(Exception):
    """Raised inside the task group when ``force_stop`` is set, to cancel every task."""


class Supervisor:
    """The running worker. Handed its resources; closes none of them."""

    def __init__(
        self, settings: WorkerSettings, queue: RedisRunQueue, store: PgEventStore,
        pool: asyncpg.Pool, executor: Executor, queries: StuckRunQueries, *,
        backoff: Backoff | None = None,
    ) -> None:
        self._settings = settings
        self._queue = queue
        self._store = store
        # One policy for the job's retries and for the pauses after a failed read (or
        # database probe): ``delay`` doubles from the base up to the cap.
        self._backoff = backoff or Backoff()
        self.consumer = RunConsumer(
            store, pool, queue, executor,
            ConsumerConfig(
                consumer=settings.redis_consumer_name,
                max_deliveries=settings.max_deliveries,
                run_timeout_seconds=settings.run_timeout_seconds,
                claim_idle_seconds=settings.claim_idle_seconds,
            ),
            backoff=self._backoff,
        )
        self.recovery = StuckRunRecovery(
            queries, store, queue, timeout_seconds=settings.stuck_run_timeout_seconds,
            interval_seconds=settings.recovery_check_interval_seconds,
            claim_idle_seconds=settings.claim_idle_seconds,
        )
        self.outcomes: collections.Counter[str] = collections.Counter()
        self._inflight: dict[str, asyncio.Task[None]] = {}
        self._slot_freed = asyncio.Event()
        self._last_job_at = time.monotonic()
        self._next_reclaim = 0.0
        self._degraded = False
        idle = settings.claim_idle_seconds
        self._reclaim_every = max(0.05, min(idle / 4, 5.0))
        self._refresh_every = idle / 3

    async def serve(self, stop: asyncio.Event, force_stop: asyncio.Event) -> None:
        background_stop = asyncio.Event()
        forced = False
        try:
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(
                    self._watch_force(force_stop, background_stop), name="worker-force-stop"
                )
                tasks.create_task(self._keep_fresh(background_stop), name="worker-keep-fresh")
                tasks.create_task(self.recovery.run(background_stop), name="worker-recovery")
                tasks.create_task(self._heartbeat(background_stop), name="worker-heartbeat")
                consumer = tasks.create_task(self._consume(stop), name="worker-consumer")
                await consumer
                log.info("Stopping recovery and heartbeat")
                background_stop.set()
        except* _ForcedStop:
            forced = True
        if forced:
            return
        await self._leave_group()
        log.info("Worker stopped consumer=%s outcomes=%s", self._queue.consumer,
                 dict(self.outcomes))

    async def _watch_force(self, force_stop: asyncio.Event, done: asyncio.Event) -> None:
        await wait_any(force_stop, done)
        if force_stop.is_set():
            log.warning(
                "Forced stop: %d run(s) abandoned; their jobs stay pending and will be "
                "reclaimed by other workers", len(self._inflight),
            )
            raise _ForcedStop

    # -- consuming ------------------------------------------------------------------------

    async def _consume(self, stop: asyncio.Event) -> None:
        drain_seconds = (
            self._settings.run_timeout_seconds + self._settings.run_finish_grace_seconds)
        try:
            async with asyncio.timeout(None) as deadline, asyncio.TaskGroup() as runs:
                await self._read_until(stop, runs)
                if self._inflight:
                    log.info(
                        "Shutting down: draining %d in-flight run(s), at most %gs",
                        len(self._inflight), drain_seconds,
                    )
                deadline.reschedule(asyncio.get_running_loop().time() + drain_seconds)
        except TimeoutError:
            log.error("Drain deadline passed; abandoned runs' jobs stay pending")
        log.info("Consumer stopped; no run in flight")

    async def _read_until(self, stop: asyncio.Event, runs: asyncio.TaskGroup) -> None:
        failures = 0
        while not stop.is_set():
            if self._degraded:
                await self._wait_for_database(stop)
                continue
            free = self._settings.worker_concurrency - len(self._inflight)
            if free <= 0:
                self._slot_freed.clear()
                await wait_any(self._slot_freed, stop)
                continue
            try:
                jobs = await self._next_jobs(free)
            except GroupMissing as exc:
                log.warning("%s; re-creating it", exc)
                if await self._recreate_group():
                    continue
                failures += 1
                await wait_any(stop, seconds=self._backoff.delay(failures))
                continue
            except QueueError as exc:
                # Whatever Redis answers (down, out of memory, read-only, a refusal), the
                # worker waits and reads again: runs in flight go on, nothing is lost.
                failures += 1
                delay = self._backoff.delay(failures)
                log.log(logging.WARNING if isinstance(exc, TRANSIENT) else logging.ERROR,
                        "Reading %s failed (%s); again in %.2fs", QUEUE, exc, delay)
                await wait_any(stop, seconds=delay)
                continue
            failures = 0
            if stop.is_set() and jobs:
                await self._give_back(jobs)
                break
            for job in jobs:
                self._spawn(job, runs)

    async def _next_jobs(self, free: int) -> list[Job]:
        now = time.monotonic()
        if now >= self._next_reclaim:
            self._next_reclaim = now + self._reclaim_every
            jobs = [j for j in await self._queue.reclaim(free) if j.entry_id not in self._inflight]
            if jobs:
                log.info(
                    "Reclaimed %d job(s) idle over %gs: %s", len(jobs),
                    self._settings.claim_idle_seconds, [j.entry_id for j in jobs],
                )
                return jobs
        return await self._queue.read(free)

    def _spawn(self, job: Job, runs: asyncio.TaskGroup) -> None:
        self._last_job_at = time.monotonic()
        self._inflight[job.entry_id] = runs.create_task(
            self._run_job(job), name=f"run-job:{job.entry_id}"
        )

    async def _run_job(self, job: Job) -> None:
        """One job, on its own: whatever it raises ends it alone, never its siblings or
        the worker (the job stays pending, and is reclaimed once idle)."""
        try:
            try:
                outcome = await self.consumer.handle(job)
            except Exception:
                log.exception("Job %s failed unexpectedly; it stays pending and will be "
                              "reclaimed once idle", job.entry_id)
                outcome = "crashed"
            self.outcomes[outcome] += 1
            if outcome == "pending":
                # Reading on would only turn every queued job into a pending one: pause
                # until the database answers again.
                self._degraded = True
        finally:
            del self._inflight[job.entry_id]
            self._last_job_at = time.monotonic()
            self._slot_freed.set()

    async def _recreate_group(self) -> bool:
        try:
            await self._queue.ensure_group()
        except StartupError as exc:
            # Redis went away again meanwhile, or cannot take the write (out of memory):
            # the read loop backs off and retries.
            log.warning("Could not re-create the consumer group: %s", exc)
            return False
        return True

    async def _wait_for_database(self, stop: asyncio.Event) -> None:
        failures = 0
        while not stop.is_set():
            try:
                await self._store.head_id()
            except TRANSIENT as exc:
                failures += 1
                if failures == 1:
                    log.warning("Database unavailable (%s); no new jobs until it answers", exc)
                await wait_any(stop, seconds=self._backoff.delay(failures))
                continue
            log.info("Database reachable; taking jobs again")
            self._degraded = False
            return

    async def _give_back(self, jobs: list[Job]) -> None:
        try:
            await self._queue.release([job.entry_id for job in jobs])
        except PASSING as exc:
            log.warning("Could not return %d job(s) at shutdown (%s); they will be "
                        "reclaimed once idle", len(jobs), exc)
            return
        log.info("Shutting down: returned %d job(s) to the group", len(jobs))

    # -- background -----------------------------------------------------------------------

    async def _keep_fresh(self, stop: asyncio.Event) -> None:
        while not await wait_any(stop, seconds=self._refresh_every):
            try:
                await self._queue.keep_fresh(list(self._inflight))
            except PASSING as exc:
                log.warning("Could not refresh held jobs: %s", exc)

    async def _heartbeat(self, stop: asyncio.Event) -> None:
        while not await wait_any(stop, seconds=self._settings.worker_heartbeat_seconds):
            await self._prune_consumers()
            redis_ok, db_ok, head = await self._health()
            busy = len(self._inflight)
            if busy:
                log.info(
                    "Worker heartbeat: busy consumer=%s in_flight=%d/%d redis=%s database=%s "
                    "log_head=%s outcomes=%s", self._queue.consumer, busy,
                    self._settings.worker_concurrency, redis_ok, db_ok, head, dict(self.outcomes),
                )
            else:
                log.info(
                    "Worker heartbeat: idle for %.0fs consumer=%s redis=%s database=%s "
                    "log_head=%s outcomes=%s", time.monotonic() - self._last_job_at,
                    self._queue.consumer, redis_ok, db_ok, head, dict(self.outcomes),
                )

    async def _prune_consumers(self) -> None:
        # A live consumer interacts at least every CLAIM_IDLE_SECONDS / 3: one silent for
        # far longer is gone for good.
        idle = max(PRUNE_AFTER_SECONDS, 10 * self._settings.claim_idle_seconds)
        try:
            if removed := await self._queue.prune_consumers(idle):
                log.info("Removed %d consumer(s) idle over %gs holding no job", removed, idle)
        except PASSING as exc:
            log.warning("Could not prune stale consumers: %s", exc)

    async def _health(self) -> tuple[str, str, Any]:
        redis_ok = db_ok = "ok"
        head: Any = None
        try:
            await self._queue.ping()
        except PASSING as exc:
            redis_ok = f"down ({exc})"
        try:
            head = await self._store.head_id()
        except TRANSIENT as exc:
            db_ok = f"down ({exc})"
        return redis_ok, db_ok, head

    async def _leave_group(self) -> None:
        try:
            if await self._queue.leave_group():
                log.info("Left consumer group %s as %s", WORKER_GROUP, self._queue.consumer)
        except PASSING as exc:
            log.warning("Could not leave consumer group: %s", exc)

