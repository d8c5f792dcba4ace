"""Stuck-run recovery: a run ``running`` for too long whose worker is gone gets ``timed-out``.

Every ``RECOVERY_CHECK_INTERVAL_SECONDS`` the ``runs`` read model is asked for runs with
``status = 'running'`` and ``started_at`` older than ``STUCK_RUN_TIMEOUT_MINUTES``. For each:

* a run whose job a live worker keeps fresh in the group is left alone: it is executing,
  however slowly, and that worker enforces ``RUN_TIMEOUT_SECONDS`` itself (see
  ``worker.queue`` for liveness). A run whose worker died, or gave up on it after persistent
  database errors, has no fresh job;
* otherwise ``timed-out`` ("Execution timeout") is appended **at the version the read model
  showed**. If the run moved on meanwhile (a step, a terminal event, or another worker's
  recovery) the append conflicts and the run is left alone, so any number of workers
  recovering at once produce one event.

The projection turns the event into a ``failed`` row; the relay puts it on the run's stream.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import KW_ONLY, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol
from uuid import UUID

from ledger.aio import wait_any
from ledger.domain import RUNNING
from ledger.errors import ConcurrencyConflict, RunNotFound
from ledger.store import PgEventStore
from worker.errors import TRANSIENT, QueueError
from worker.queue import RedisRunQueue

log = logging.getLogger(__name__)

BATCH = 500


class StuckRunQueries(Protocol):
    """The read query recovery needs (``projections.queries.RunQueries`` implements it)."""

    async def stuck_runs(
        self, started_before: datetime, limit: int = 100
    ) -> list[tuple[UUID, int]]: ...


@dataclass(eq=False)
class StuckRunRecovery:
    """Finds and times out stuck runs; ``run`` loops until ``stop``, ``check`` does one pass."""

    queries: StuckRunQueries
    store: PgEventStore
    queue: RedisRunQueue
    _: KW_ONLY
    timeout_seconds: float
    interval_seconds: float
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
        cutoff = datetime.now(UTC) - timedelta(seconds=self.timeout_seconds)
        candidates = await self.queries.stuck_runs(cutoff, limit=BATCH)
        if not candidates:
            return []
        held = await self.queue.held_runs()
        recovered = []
        for run_id, version in candidates:
            if run_id in held:
                log.debug("Run is slow but a live worker holds it run_id=%s", run_id)
                continue
            if await self._time_out(run_id, version):
                recovered.append(run_id)
        self.recovered += len(recovered)
        return recovered

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
