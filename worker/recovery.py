"""Recovery: runs whose worker is gone get ``timed-out``, naming why.

**Leases.** While a worker runs a job it renews the job's pending entry every third of
``CLAIM_IDLE_SECONDS`` (``RedisRunQueue.keep_fresh``: ``XCLAIM … JUSTID`` resets its idle
time without counting a delivery). That entry is the worker's lease on the run: chosen over a
separate key with a TTL because it already exists, names its holder, is exactly what
``XAUTOCLAIM`` hands over once idle, and cannot disagree with the job it stands for. A lease
idle past ``CLAIM_IDLE_SECONDS`` while Redis was observably up has lapsed: its worker died
(or lost Redis alone that long). ``RedisRunQueue.leases`` makes that judgement, the same for
this pass and for a worker that reclaims the job: a Redis outage or restart stops every
worker's renewals at once, so no lease is judged lapsed until Redis has answered this process
without a break, and been up itself, for ``CLAIM_IDLE_SECONDS`` — long enough for every live
worker to renew (``Leases.doubt`` says why not yet).

Every ``RECOVERY_CHECK_INTERVAL_SECONDS`` a pass

1. ends each run whose lease lapsed and that is ``running`` — unless another job of the same
   run is held by a live worker, or the lapsed job is this worker's own (it takes it back
   itself) — with ``timed-out`` saying the worker was lost (``end_lost``);
   a worker that reclaims the lapsed job does the same (``worker.consumer``), so a dead
   worker's run ends within ``CLAIM_IDLE_SECONDS`` plus one interval (when Redis was down
   meanwhile, within ``CLAIM_IDLE_SECONDS`` plus one interval of its return). A queued run's lapsed
   job is left to be reclaimed and started;
2. as the outer bound, asks the ``runs`` read model for runs ``running`` longer than
   ``STUCK_RUN_TIMEOUT_MINUTES`` that no live worker holds (their job is gone altogether,
   e.g. Redis lost its data) and ends them with ``timed-out`` ("Execution timeout"). A run
   whose worker is alive is bounded by that worker's ``RUN_TIMEOUT_SECONDS`` instead.

Each ``timed-out`` is appended **at the version the pass saw**: if the run moved on meanwhile
(a step — so its worker is alive after all —, a terminal event, another worker's recovery) the
append conflicts and the run is left alone, so any number of workers recovering at once
produce one event. The projection turns it into a ``failed`` row; the relay streams it.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import KW_ONLY, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol
from uuid import UUID

from ledger.aio import wait_any
from ledger.domain import RUNNING, Run
from ledger.errors import ConcurrencyConflict, RunNotFound, UndecodableEvent
from ledger.store import PgEventStore
from worker.errors import TRANSIENT, QueueError
from worker.queue import Lease, RedisRunQueue

log = logging.getLogger(__name__)

BATCH = 500


class StuckRunQueries(Protocol):
    """The read query recovery needs (``projections.queries.RunQueries`` implements it)."""

    async def stuck_runs(
        self, started_before: datetime, limit: int = 100
    ) -> list[tuple[UUID, int]]: ...


def lost_message(worker: str | None, claim_idle_seconds: float) -> str:
    """The error of a run whose worker's lease lapsed: a crash, not a slow test."""
    return (
        f"worker {worker} was lost: its lease on the run lapsed (not renewed for "
        f"CLAIM_IDLE_SECONDS={claim_idle_seconds:g}): it died, or gave up on the run after "
        "losing Redis or PostgreSQL"
    )


def end_lost(run: Run, claim_idle_seconds: float) -> None:
    """Decide ``timed-out`` for a running run whose worker's lease lapsed."""
    run.time_out(
        timeout_seconds=claim_idle_seconds, detected_by="lease",
        message=lost_message(run.worker, claim_idle_seconds),
    )


@dataclass(eq=False)
class StuckRunRecovery:
    """Finds and times out stuck runs; ``run`` loops until ``stop``, ``check`` does one pass."""

    queries: StuckRunQueries
    store: PgEventStore
    queue: RedisRunQueue
    _: KW_ONLY
    timeout_seconds: float
    interval_seconds: float
    claim_idle_seconds: float
    #: runs this instance has timed out so far
    recovered: int = field(default=0, init=False)

    async def run(self, stop: asyncio.Event) -> None:
        log.info(
            "Stuck-run recovery every %gs for runs running longer than %gs",
            self.interval_seconds, self.timeout_seconds,
        )
        while not stop.is_set():
            try:
                await self.check()
            except (*TRANSIENT, QueueError) as exc:
                # The next pass retries; a stuck run only waits one interval longer.
                log.warning("Stuck-run check failed, retrying in %gs: %s",
                            self.interval_seconds, exc)
            await wait_any(stop, seconds=self.interval_seconds)

    async def check(self) -> list[UUID]:
        """One pass; returns the runs this pass timed out."""
        leases = await self.queue.leases()
        if leases.doubt is not None and (overdue := sum(lease.overdue for lease in leases)):
            # Right after a Redis outage or restart (or this worker's start) a live worker
            # may not have renewed its lease yet: judged once Redis was up long enough.
            log.info("Not judging %d overdue lease(s) yet: %s", overdue, leases.doubt)
        held = {lease.run_id for lease in leases if not lease.lapsed}
        recovered = []
        for lease in leases:
            # A lapsed job of this very worker: it is alive and takes the job back itself,
            # carrying the run on when it can (``worker.consumer``).
            mine = lease.consumer == self.queue.consumer
            if lease.lapsed and not mine and lease.run_id not in held and (
                    await self._end_lost(lease)):
                recovered.append(lease.run_id)
        cutoff = datetime.now(UTC) - timedelta(seconds=self.timeout_seconds)
        for run_id, version in await self.queries.stuck_runs(cutoff, limit=BATCH):
            if run_id in held:
                log.debug("Run is slow but a live worker holds it run_id=%s", run_id)
                continue
            if run_id not in recovered and await self._time_out(run_id, version):
                recovered.append(run_id)
        self.recovered += len(recovered)
        return recovered

    async def _end_lost(self, lease: Lease) -> bool:
        try:
            run = await self.store.load_run(lease.run_id)
        except (RunNotFound, UndecodableEvent):
            return False  # whoever reclaims the job dead-letters it
        if run.status != RUNNING:
            return False  # queued: reclaimed and started; finished: reclaimed and acked
        end_lost(run, self.claim_idle_seconds)
        try:
            await self.store.save(run)
        except ConcurrencyConflict:
            log.info("Run moved on before its lost worker was named run_id=%s", run.id)
            return False
        log.warning(
            "Worker lost: ended its run run_id=%s worker=%s job=%s held_by=%s",
            run.id, run.worker, lease.entry_id, lease.consumer,
        )
        return True

    async def _time_out(self, run_id: UUID, version: int) -> bool:
        try:
            run = await self.store.load_run(run_id)
        except RunNotFound:
            log.error("Read model lists a run the ledger does not have run_id=%s", run_id)
            return False
        if run.version != version or run.status != RUNNING:
            # The read model lags the log, or the run moved on: not this pass's decision.
            return False
        run.time_out(timeout_seconds=self.timeout_seconds, detected_by="recovery")
        try:
            await self.store.save(run)
        except ConcurrencyConflict:
            log.info("Stuck run moved on before it could be timed out run_id=%s", run_id)
            return False
        log.warning(
            "Recovered stuck run run_id=%s version=%d started_at=%s worker=%s",
            run_id, version, run.started_at, run.worker,
        )
        return True
