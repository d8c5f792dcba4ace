"""``RunConsumer``: turns one delivered job into a run's lifecycle events, then acknowledges.

For each job:

1. parse it (malformed → ``runs:dead``) and load the run (no such run → ``runs:dead``);
2. a finished run's job is acknowledged and skipped;
3. a queued run gets ``started``, appended at the version read — of two workers holding the
   same job exactly one wins, the other acknowledges and skips. A running run whose
   ``started`` is this worker's own (same consumer and attempt, nothing recorded after it)
   is carried on. A running run of another worker is skipped when the job is a duplicate;
   when the job was reclaimed, its worker's lease lapsed (``worker.recovery``): the run
   gets ``timed-out`` naming the lost worker;
4. only deliveries that reached the run's start count toward ``MAX_DELIVERIES``
   (``RedisRunQueue.count_start``): past it the run gets ``errored`` and the job goes to
   ``runs:dead``. Redeliveries after an outage (a worker that died before the start, Redis
   or PostgreSQL unavailable) never dead-letter a healthy run;
5. the executor runs the steps through a ``LedgerStepSink`` (one ``step`` event each), within
   ``RUN_TIMEOUT_SECONDS``;
6. ``completed`` / ``errored`` / ``timed-out`` is appended, and only then the job is
   acknowledged. A run finished by someone else meanwhile (``cancelled`` by the API,
   ``timed-out`` by recovery) just stops the executor.

Transient PostgreSQL/Redis errors (``worker.errors.TRANSIENT``) are retried with
``ledger.aio.Backoff``; an append whose reply was lost is settled by reading it back
(``RunWriter``). When errors persist the run gets ``errored`` with the reason, and when even
that cannot be written the job stays pending, to be reclaimed once idle — never silently
dropped, and never acknowledged without a terminal event.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import asyncpg
import orjson
from pydantic import ValidationError

from ledger.aio import Backoff
from ledger.db import translated
from ledger.definition import parse_steps
from ledger.domain import QUEUED, RUNNING, STEP_BUDGETS, Run
from ledger.errors import (
    ConcurrencyConflict,
    InvalidDefinition,
    LedgerError,
    RunNotFound,
)
from ledger.store import PgEventStore
from worker import bounds
from worker.errors import (
    TRANSIENT,
    ExecutorError,
    MalformedJob,
    QueueError,
    QueueUnavailable,
    RunCancelled,
    StepNotRecorded,
)
from worker.ports import Executor, Outcome, RunJob, StepResult
from worker.queue import Job, RedisRunQueue
from worker.recovery import end_lost

log = logging.getLogger(__name__)

Decision = Callable[[Run], None]
CONFLICT_RELOADS = 3


@dataclass(frozen=True)
class ConsumerConfig:
    consumer: str
    max_deliveries: int
    run_timeout_seconds: float
    claim_idle_seconds: float = 60.0


class RunWriter:
    """Appends a job's decisions to its run, safely under retries and races.

    ``accept(run)`` says whether a decision still applies to the run as stored (e.g. "still
    queued"); when it does not, nothing is appended. A ``ConcurrencyConflict`` means the run
    moved on: reload and ask ``accept`` again. A transient failure is retried from a fresh
    load — but an append whose reply was lost may have committed. So the writer keeps what it
    sent until a read settles the question: the next try first compares the stored event at
    that version with the one sent (same type, timestamp and data) and, if it is ours, counts
    it as written instead of deciding again. When that read fails too, the question stays
    open for the try after: forgetting it would make the writer see its own ``started`` as a
    rival's (and acknowledge a run nobody runs) or its own step as already past (and error a
    healthy run).

    The appends of one job share one pooled connection, returned when the job is done: a
    pool resets a connection (one more round trip) each time it gets it back. After a
    connection failure the connection is returned and a retry takes a fresh one.
    """

    def __init__(self, store: PgEventStore, pool: asyncpg.Pool, backoff: Backoff) -> None:
        self._store = store
        self._pool = pool
        self._backoff = backoff
        self._conn: asyncpg.pool.PoolConnectionProxy | None = None

    async def __aenter__(self) -> RunWriter:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._release()

    async def _connection(self) -> asyncpg.pool.PoolConnectionProxy:
        if self._conn is None:
            with translated():
                self._conn = await self._pool.acquire()
        return self._conn

    async def _release(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            await self._pool.release(conn)
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError) as exc:
            # A broken connection: the pool has terminated it and opens a new one on demand.
            log.debug("Returned a broken connection to the pool: %s", exc)

    async def write(
        self, run_id: UUID, decide: Decision, *, accept: Callable[[Run], bool],
        run: Run | None = None, what: str,
    ) -> tuple[Run, bool]:
        """``(run as stored, appended)``; raises the last ``ConcurrencyConflict`` after
        ``CONFLICT_RELOADS`` lost races in a row."""
        known = [run]
        # The first event of an append whose outcome is unknown, until a read settles it;
        # then ``ours`` says whether it was stored.
        uncertain: list[Any] = []
        ours: list[bool] = []

        async def attempt() -> tuple[Run, bool]:
            current = known.pop() if known else None
            if uncertain and not ours:
                ours.append(await self._committed(uncertain[0]))  # a failure keeps it open
            if ours:
                if ours[0]:
                    return await self._store.load_run(run_id), True
                uncertain.clear()
                ours.clear()
            for tries in range(1, CONFLICT_RELOADS + 1):
                if current is None:
                    current = await self._store.load_run(run_id)
                if not accept(current):
                    return current, False
                decide(current)
                events = current.collect_events()
                try:
                    await self._store.append(
                        events, expected_version=events[0].originator_version - 1,
                        connection=await self._connection(),
                    )
                except ConcurrencyConflict:
                    if tries == CONFLICT_RELOADS:
                        raise
                    current = None
                    continue
                except TRANSIENT:
                    uncertain[:] = events[:1]
                    await self._release()
                    raise
                return current, True
            raise AssertionError("unreachable")

        return await self._backoff.run(attempt, what, transient=TRANSIENT)

    async def _committed(self, event: Any) -> bool:
        """Whether the stored event at ``event``'s version is ``event`` itself."""
        stored = await self._store.read_run(
            event.originator_id, after=event.originator_version - 1, limit=1
        )
        if not stored or stored[0].version != event.originator_version:
            return False
        # Decoded the way RecordedEvent decodes rows, so the comparison is like for like.
        sent = orjson.loads(self._store.encode([event])[3][0])
        sent.pop("originator_topic", None)
        return stored[0].timestamp == sent.pop("timestamp") and stored[0].data == sent


class LedgerStepSink:
    """The ``StepSink`` of one run: each ``record`` appends one ``step`` event at the next
    version. A conflict means another writer finished the run: ``RunCancelled``."""

    def __init__(self, writer: RunWriter, run: Run) -> None:
        self.writer = writer
        self._run: Run | None = run
        self.run_id: UUID = run.id
        self.recorded = 0

    @property
    def run(self) -> Run | None:
        """The run as last written, or None when its state must be reloaded."""
        return self._run

    async def record(self, result: StepResult) -> None:
        run, self._run = self._run, None

        try:
            current, _ = await self.writer.write(
                self.run_id, lambda r: r.record_step(result),
                accept=lambda r: not r.is_finished, run=run,
                what=f"recording step {result.index} of run {self.run_id}",
            )
        except (LedgerError, ValueError) as exc:
            raise StepNotRecorded(
                f"step {result.index} could not be recorded: {exc}", step=result.index
            ) from exc
        if current.is_finished:
            raise RunCancelled(
                f"run {self.run_id} was finished by a '{current.terminal_event}' event "
                "while executing", terminal_event=current.terminal_event or "cancelled",
            )
        self._run = current
        self.recorded += 1


class RunConsumer:
    """Handles the jobs of one consumer; handed its resources, closes none of them."""

    def __init__(
        self, store: PgEventStore, pool: asyncpg.Pool, queue: RedisRunQueue,
        executor: Executor, config: ConsumerConfig, *, backoff: Backoff | None = None,
    ) -> None:
        self._store = store
        self._pool = pool
        self._queue = queue
        self._executor = executor
        self._config = config
        self._backoff = backoff or Backoff()
        #: runs this process is handling a job of: a second job of one is a duplicate
        self._active: set[UUID] = set()

    def writer(self) -> RunWriter:
        """A writer for one job's appends (use as ``async with``)."""
        return RunWriter(self._store, self._pool, self._backoff)

    async def handle(self, job: Job) -> str:
        """Process one job; returns what happened (``passed``, ``failed``, ``errored``,
        ``timed-out``, ``cancelled``, ``skipped``, ``dead`` or ``pending``)."""
        try:
            return await self._handle(job)
        except TRANSIENT as exc:
            # Even the fallback write failed: keeping the entry pending is the only safe
            # move; once idle past CLAIM_IDLE_SECONDS a worker reclaims it.
            run_id = None
            with contextlib.suppress(MalformedJob):
                run_id = job.run_id
            log.error(
                "Job left pending after persistent errors: entry=%s run_id=%s: %s",
                job.entry_id, run_id, exc,
            )
            return "pending"

    async def _handle(self, job: Job) -> str:
        try:
            run_id, attempt = job.run_id, job.attempt
        except MalformedJob as exc:
            return await self._dead_letter(job, f"malformed job: {exc}", None)
        try:
            run = await self._backoff.run(
                lambda: self._store.load_run(run_id), f"loading run {run_id}",
                transient=TRANSIENT,
            )
        except RunNotFound:
            return await self._dead_letter(job, f"run {run_id} does not exist", run_id)
        except TRANSIENT:
            raise
        except LedgerError as exc:
            # Deterministic (e.g. an event this version cannot read): retrying cannot help.
            return await self._dead_letter(job, f"run {run_id} cannot be loaded: {exc}", run_id)
        if run.is_finished:
            log.info(
                "Skipping job: run is %s run_id=%s entry=%s deliveries=%d",
                run.state_name, run_id, job.entry_id, job.deliveries,
            )
            await self._ack(job)
            return "skipped"
        if run_id in self._active:
            # A second job of a run this process is handling (the relay published twice):
            # the first job is acknowledged when the run ends.
            log.info("Skipping job: run is already handled here (a duplicate job) "
                     "run_id=%s entry=%s", run_id, job.entry_id)
            await self._ack(job)
            return "skipped"
        self._active.add(run_id)
        try:
            return await self._take(job, run, attempt)
        finally:
            self._active.discard(run_id)

    async def _take(self, job: Job, run: Run, attempt: int | None) -> str:
        async with self.writer() as writer:
            if run.status == QUEUED:
                started = await self._start(writer, run, attempt)
            else:
                started = await self._own_start(run, attempt)
                if started is None:
                    return await self._not_ours(writer, job, run)
            if started is None:
                result = "skipped"
            elif (starts := await self._count_start(job)) > self._config.max_deliveries:
                return await self._poison(writer, job, started, starts)
            else:
                result = await self._execute(writer, started, job)
        await self._ack(job)
        return result

    # -- lifecycle ------------------------------------------------------------------------

    async def _start(self, writer: RunWriter, run: Run, attempt: int | None) -> Run | None:
        """Append ``started`` at the version read; None when another worker won."""
        me = self._config.consumer
        browser = self._executor.browser
        try:
            current, appended = await writer.write(
                run.id, lambda r: r.start(worker=me, browser=browser, attempt=attempt),
                accept=lambda r: r.status == QUEUED, run=run, what=f"starting run {run.id}",
            )
        except ConcurrencyConflict:
            log.info("Lost the race for run run_id=%s; skipping", run.id)
            return None
        if appended:
            log.info("Started run run_id=%s worker=%s attempt=%s", run.id, me, current.attempt)
            return current
        if (ours := await self._own_start(current, attempt)) is not None:
            return ours
        log.info(
            "Lost the race for run run_id=%s (now %s by %s); skipping",
            run.id, current.state_name, current.worker,
        )
        return None

    async def _own_start(self, run: Run, attempt: int | None) -> Run | None:
        """``run`` when its ``started`` is this worker's own (same consumer and attempt) and
        nothing was recorded after it: the worker carries on. That is the case after an
        append whose outcome stayed unknown through the retries (the job was left pending
        and came back to this worker), or a restarted worker of the same name."""
        if run.status != RUNNING or run.worker != self._config.consumer or run.steps_recorded:
            return None
        events = await self._backoff.run(
            lambda: self._store.read_run(run.id, limit=2), f"reading run {run.id}",
            transient=TRANSIENT,
        )
        started = events[-1]
        if started.type != "started" or started.data.get("attempt") != (attempt or run.attempt):
            return None
        log.info("Recognised our own start of run run_id=%s; carrying on", run.id)
        return run

    async def _not_ours(self, writer: RunWriter, job: Job, run: Run) -> str:
        """A job whose run is running under another worker (or under this one with steps
        recorded that it cannot redo)."""
        if not job.reclaimed:
            # A duplicate job (the relay published twice): the run's own job is held by
            # the worker running it, which acknowledges that one.
            log.info(
                "Skipping job: run is running under %s run_id=%s entry=%s",
                run.worker, run.id, job.entry_id,
            )
            await self._ack(job)
            return "skipped"
        # Reclaimed: the job sat idle past CLAIM_IDLE_SECONDS, so its holder's lease lapsed —
        # unless Redis was down or restarted meanwhile (``RedisRunQueue.leases``, the same
        # judgement as recovery's).
        held = await self._backoff.run(
            self._queue.leases, "reading job leases", transient=TRANSIENT
        )
        if held.doubt is not None:
            # Its worker may be alive and about to renew (taking the job back): leave the
            # job pending. If the worker is gone, the job goes idle again and is judged then.
            log.info(
                "Not judging yet whether worker %s was lost (%s) run_id=%s entry=%s; "
                "leaving its job", run.worker, held.doubt, run.id, job.entry_id,
            )
            return "skipped"
        if any(lease.run_id == run.id and not lease.lapsed and lease.entry_id != job.entry_id
               for lease in held):
            log.info("Skipping job: another live job holds run run_id=%s", run.id)
            await self._ack(job)
            return "skipped"
        idle = self._config.claim_idle_seconds
        current, appended = await writer.write(
            run.id, lambda r: end_lost(r, idle),
            # Only as we saw it: a run that moved on has a live worker after all.
            accept=lambda r: r.version == run.version and r.status == RUNNING,
            run=run, what=f"ending run {run.id} of a lost worker",
        )
        if appended:
            log.warning(
                "Worker lost: ended its run run_id=%s worker=%s entry=%s",
                run.id, run.worker, job.entry_id,
            )
        if current.is_finished:
            await self._ack(job)
            return str(current.terminal_event)
        # Its worker is alive and renews the job again (taking it back): never acknowledge
        # a job whose run has no terminal event.
        log.info("Run moved on under its worker run_id=%s; leaving its job", run.id)
        return "skipped"

    async def _count_start(self, job: Job) -> int:
        """How many deliveries of ``job`` reached its run's start, this one included."""
        try:
            return await self._backoff.run(
                lambda: self._queue.count_start(job), f"counting the start of {job.entry_id}",
                transient=TRANSIENT,
            )
        except QueueError as exc:
            # The run is started: running it beats holding it for a count.
            log.warning("Could not count the start of entry=%s: %s", job.entry_id, exc)
            return 1

    async def _execute(self, writer: RunWriter, run: Run, job: Job) -> str:
        sink = LedgerStepSink(writer, run)
        try:
            spec = RunJob(
                run_id=run.id, test_id=run.test_id, test_name=run.test_name, url=run.url,
                steps=parse_steps(run.steps), auto_handle_popups=run.auto_handle_popups,
                attempt=job.attempt or run.attempt,
            )
        except (ValidationError, InvalidDefinition) as exc:
            return await self._finish(sink, _errored(f"invalid step snapshot: {exc}", "definition"))
        timeout = self._config.run_timeout_seconds
        try:
            async with asyncio.timeout(timeout) as deadline:
                outcome = await self._executor.execute(spec, sink)
        except RunCancelled as exc:
            log.info("Run stopped: %s run_id=%s", exc, run.id)
            return exc.terminal_event
        except StepNotRecorded as exc:
            return await self._finish(sink, _errored(str(exc), "ledger", exc.step))
        except ExecutorError as exc:
            return await self._finish(sink, _errored(str(exc), exc.kind, exc.step))
        except TimeoutError as exc:
            if not deadline.expired():
                return await self._finish(sink, _crashed(exc))
            log.warning("Run exceeded RUN_TIMEOUT_SECONDS=%g run_id=%s", timeout, run.id)
            return await self._finish(
                sink, lambda r: r.time_out(timeout_seconds=timeout, detected_by="worker")
            )
        except Exception as exc:
            # The executor is a plug-in: whatever escapes it is a bug there, and the run
            # must still end with a recorded reason rather than vanish.
            log.exception("Executor crashed run_id=%s", run.id)
            return await self._finish(sink, _crashed(exc))
        return await self._finish(sink, _completed(outcome))

    async def _finish(self, sink: LedgerStepSink, decide: Decision) -> str:
        current, appended = await sink.writer.write(
            sink.run_id, decide, accept=lambda r: not r.is_finished, run=sink.run,
            what=f"finishing run {sink.run_id}",
        )
        if not appended:
            log.info(
                "Run was already finished (%s) run_id=%s", current.terminal_event, sink.run_id
            )
            return current.terminal_event or "skipped"
        completed = current.terminal_event == "completed"
        outcome = current.status if completed else str(current.terminal_event)
        log.info(
            "Finished run run_id=%s outcome=%s steps=%d error=%s",
            sink.run_id, outcome, current.steps_recorded, current.error,
        )
        return outcome

    async def _poison(self, writer: RunWriter, job: Job, run: Run, starts: int) -> str:
        reason = (
            f"started {starts} times (deliveries that reached the run's start), over "
            f"MAX_DELIVERIES={self._config.max_deliveries}"
        )
        await writer.write(
            run.id, _errored(reason, "poison"), accept=lambda r: not r.is_finished, run=run,
            what=f"failing poison run {run.id}",
        )
        return await self._dead_letter(job, reason, run.id)

    # -- the queue ------------------------------------------------------------------------

    async def _ack(self, job: Job) -> None:
        try:
            await self._backoff.run(
                lambda: self._queue.ack(job), f"acknowledging entry {job.entry_id}",
                transient=TRANSIENT,
            )
        except QueueUnavailable:
            # The run is finished: whoever reclaims the entry will acknowledge it.
            log.error("Could not acknowledge entry=%s; it will be reclaimed", job.entry_id)

    async def _dead_letter(self, job: Job, reason: str, run_id: UUID | None) -> str:
        await self._backoff.run(
            lambda: self._queue.dead_letter(job, reason, run_id),
            f"dead-lettering entry {job.entry_id}", transient=TRANSIENT,
        )
        log.warning(
            "Dead-lettered job entry=%s run_id=%s deliveries=%d: %s",
            job.entry_id, run_id, job.deliveries, reason,
        )
        return "dead"


def _completed(outcome: Outcome) -> Decision:
    return lambda run: run.complete(
        status=outcome.status, duration_ms=outcome.duration_ms, error=outcome.error,
        error_step=outcome.error_step,
    )


def _errored(message: str, kind: str, step: int | None = None) -> Decision:
    # The message can quote the page (a URL, a browser error): cleaned and bounded too.
    text = bounds.clip(message, STEP_BUDGETS["error"])
    return lambda run: run.fail(message=text, kind=kind, step=step)


def _crashed(exc: BaseException) -> Decision:
    return _errored(f"executor crashed: {exc!r}", "crash")


__all__ = ["ConsumerConfig", "LedgerStepSink", "RunConsumer", "RunWriter"]
