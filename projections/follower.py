"""The tracked-follower runner: tails the log from a checkpoint and applies it in batches.

A ``Follower`` is a name and an ``apply(conn, events)`` function. ``FollowerRunner`` runs one:

1. **Lease.** It takes the follower's lease (``follower_leases``) on a dedicated
   connection, which it also uses for all its reads and batches (no pool round trips on the
   hot path), and renews it every ``lease_seconds / 3`` between batches: renewing is how it
   shows progress. Without the lease it stands by and tries again every
   ``standby_retry_seconds``. A standby takes the lease over when it expired (the holder
   hangs: SIGSTOP, a stalled host, a stuck loop) or when the holder's PostgreSQL session is
   gone (it died: no need to wait for the expiry). A holder that finds its lease taken steps
   down; a clean stop releases it.
2. **Resume** from the follower's row in ``follower_checkpoints``.
3. **Tail** the log in commit order (``ledger.store.read_log_entries``), ``batch_size`` rows at
   a time, sleeping on the shared ``LogListener`` (NOTIFY, with a polling fallback) when
   caught up, and stopping when ``stop`` is set (after the batch in hand).
4. **Apply.** A *transactional* follower's batch runs in one transaction that applies the
   rows and then moves the checkpoint with a compare-and-set from the position the batch
   was read from (no row moved → roll back): a crash anywhere leaves rows and checkpoint
   consistent, so every event is applied exactly once. Lock order is tables, then the
   checkpoint row — the order a rebuild's swap uses too. A non-transactional follower
   (effects outside PostgreSQL, e.g. Redis) applies first and then compare-and-sets the
   checkpoint: at least once, so its effects must be idempotent.

The check-and-move of the checkpoint is the fence that makes the lease safe: it also checks
that this runner still holds the lease, so a holder that wakes up after a standby took over
(SIGCONT, a healed partition) has its batch rolled back (or not recorded) and steps down; a
rebuild that swaps tables and moves the checkpoint makes the stale batch fail the same way,
and the runner resumes from the checkpoint it finds. A stale transactional batch may fail on
the new tables before its compare-and-set runs (a duplicate key: they already hold it); a
failed batch whose checkpoint has moved therefore counts as stale too, not as a permanent failure.
Connection-level failures (PostgreSQL or Redis) are retried with backoff from the
checkpoint.

5. **Park.** Any other failure of a batch is the batch's content, not the moment: the log is
   immutable, so stopping would be for ever. The runner re-applies that batch event by event
   (each in its own transaction with the checkpoint, so the good ones are applied exactly
   once), retries an event that still fails ``retry.retries`` times with back-off, and then
   parks it (``projections.parking``: a ``parked_events`` row, an ERROR log line) and moves
   past it — in the same transaction as the checkpoint. A row of the log that cannot even be
   decoded is parked at once (its bytes will not change). A failure outside ``apply`` (the
   parking itself, ``activate``, ``maintain``) still ends ``run()`` with ``FollowerError``;
   the projector restarts that follower alone.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import KW_ONLY, dataclass, field
from datetime import datetime

import asyncpg

from ledger.aio import Backoff, wait_any
from ledger.codec import LogEntry, RecordedEvent, UndecodableRow
from ledger.db import close_quietly, connect, translated
from ledger.errors import StoreError, TransientStoreError
from ledger.sql import load_queries
from ledger.store import LogListener, read_log_entries
from projections.errors import FollowerError, RelayUnavailable
from projections.parking import describe, now, park, run_has_parked, split

log = logging.getLogger(__name__)

Q = load_queries("projections", "follower.sql")

ApplyBatch = Callable[[asyncpg.Connection, Sequence[RecordedEvent]], Awaitable[None]]

#: errors after which the same batch may succeed later
TRANSIENT = (TransientStoreError, RelayUnavailable)
#: how long a follower waits before re-reading from its checkpoint after a transient error
BACKOFF = Backoff(base_seconds=0.1, max_seconds=5.0)
#: how often an event that fails on its own is tried again before it is parked
APPLY_RETRY = Backoff(retries=3, base_seconds=0.5, max_seconds=5.0)


@dataclass(frozen=True)
class Follower:
    """A named consumer of the log.

    ``apply(conn, events)`` applies one batch (commit order, non-empty). For a
    ``transactional`` follower ``conn`` is inside the batch transaction: write the rows there.
    ``activate(position)`` is called each time the runner (re)starts from the checkpoint,
    before the first batch; ``maintain()`` after every batch or idle wake-up (rate-limit it
    yourself). Both run only in the instance holding the lock.

    ``linger_seconds``: once caught up and woken by a commit, wait this long before reading,
    so the commits that follow are applied as one batch (cheaper; the model lags by that
    much). ``checkpoint_every_seconds`` (non-transactional followers only): save the
    checkpoint at most this often, and when stepping down; a crash then repeats at most
    that much work, which such a follower must make idempotent anyway.
    """

    name: str
    apply: ApplyBatch
    transactional: bool = True
    activate: Callable[[int], Awaitable[None]] | None = None
    maintain: Callable[[], Awaitable[None]] | None = None
    linger_seconds: float = 0.0
    checkpoint_every_seconds: float = 0.0
    #: the tables ``apply`` writes: a retry of a parked event locks them
    tables: tuple[str, ...] = ()
    #: how ``followers retry`` re-applies a parked event (default: ``apply``). A follower
    #: whose state depends on order brings the event's whole run up to date instead: by
    #: the time of a retry, later events of the run have usually been applied.
    reapply: ApplyBatch | None = None
    #: non-transactional followers: called with the position of an event just parked, so
    #: that whatever tracks its progress besides the checkpoint moves past it too
    passed: Callable[[int], Awaitable[None]] | None = None


@dataclass(frozen=True)
class ReadModel:
    """A transactional follower whose state is tables in PostgreSQL: ``rebuild`` can replay
    the log into fresh copies of ``tables`` with the same ``apply``, then swap them in and
    move the checkpoint named ``name``.
    """

    name: str
    tables: tuple[str, ...]
    apply: ApplyBatch
    reapply: ApplyBatch | None = None

    def follower(self, *, linger_seconds: float = 0.0) -> Follower:
        return Follower(self.name, self.apply, linger_seconds=linger_seconds,
                        tables=self.tables, reapply=self.reapply)


class _LeaseLost(Exception):
    """Another instance holds the lease now (this one hung), or the connection is gone."""


class _CheckpointMoved(Exception):
    """The checkpoint is not where this runner left it (rebuild swap, a late second instance)."""


class _Interrupted(Exception):
    """``stop`` was set while an event was being retried: leave it for the next run."""


@dataclass(eq=False)
class FollowerRunner:
    """Runs one follower until ``stop`` is set. It owns its one connection."""

    follower: Follower
    _: KW_ONLY
    dsn: str
    listener: LogListener
    stop: asyncio.Event
    batch_size: int = 500
    standby_retry_seconds: float = 1.0
    #: how long the lease lasts without renewal: a hung holder is replaced after this long
    lease_seconds: float = 10.0
    retry: Backoff = APPLY_RETRY
    #: holds the follower's lease and applies batches (else it stands by)
    active: bool = field(default=False, init=False)
    #: who this runner is in ``follower_leases`` (unique per runner and start)
    holder: str = field(default_factory=lambda: uuid.uuid4().hex, init=False)
    _next_renewal: float = field(default=0.0, init=False)
    # Non-transactional followers: the checkpoint saved in PostgreSQL, and how far the
    # follower's effects really are (ahead of it between saves).
    _saved: int = field(default=0, init=False)
    _applied: int = field(default=0, init=False)
    _next_save: float = field(default=0.0, init=False)

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.lease_seconds <= 0:
            raise ValueError(f"lease_seconds must be > 0, got {self.lease_seconds}")

    @property
    def name(self) -> str:
        return self.follower.name

    async def run(self) -> None:
        """Stand by or follow until ``stop``; raises ``FollowerError`` when something other
        than an event fails for good (see the module docstring)."""
        while not self.stop.is_set():
            conn = await self._acquire_lease()
            if conn is None:
                return
            try:
                await self._follow(conn)
                await self._save_on_the_way_out(conn)
                await self._release(conn)
            except _LeaseLost as exc:
                log.warning("follower %s: lost its lease (%s); standing by", self.name, exc)
            finally:
                self.active = False
                await close_quietly(conn)

    # -- the lease --------------------------------------------------------------------------

    @property
    def renew_every(self) -> float:
        return self.lease_seconds / 3

    async def _acquire_lease(self) -> asyncpg.Connection | None:
        """The connection that took this follower's lease, or None once ``stop`` is set."""
        conn: asyncpg.Connection | None = None
        announced = False
        try:
            while not self.stop.is_set():
                try:
                    if conn is None or conn.is_closed():
                        conn = await connect(self.dsn, application_name=f"runledger {self.name}")
                    with translated():
                        epoch = await conn.fetchval(Q["take_lease"], self.name, self.holder,
                                                    self.lease_seconds)
                    if epoch is not None:
                        log.info("follower %s: active (lease acquired, epoch %d)",
                                 self.name, epoch)
                        self.active = True
                        self._next_renewal = self._clock() + self.renew_every
                        found, conn = conn, None
                        return found
                    if not announced:
                        log.info("follower %s: standing by (another instance is active)",
                                 self.name)
                        announced = True
                except StoreError as exc:
                    log.warning("follower %s: cannot reach the database for its lock: %s",
                                self.name, exc)
                    await close_quietly(conn)
                    conn = None
                await wait_any(self.stop, seconds=self.standby_retry_seconds)
            return None
        finally:
            await close_quietly(conn)

    async def _renew(self, conn: asyncpg.Connection, *, now: bool = False) -> None:
        """Renew the lease when due (or ``now``); ``_LeaseLost`` when it was taken over."""
        clock = self._clock()
        if not now and clock < self._next_renewal:
            return
        try:
            with translated():
                epoch = await conn.fetchval(Q["renew_lease"], self.name, self.holder,
                                            self.lease_seconds)
        except StoreError as exc:
            raise _LeaseLost(f"cannot renew it: {exc}") from exc
        if epoch is None:
            raise _LeaseLost("another instance took it over")
        self._next_renewal = clock + self.renew_every

    async def _release(self, conn: asyncpg.Connection) -> None:
        if conn.is_closed():
            return
        try:
            with translated():
                await conn.execute(Q["release_lease"], self.name, self.holder)
        except StoreError as exc:  # it expires on its own
            log.warning("follower %s: lease not released on stopping: %s", self.name, exc)

    @staticmethod
    def _clock() -> float:
        return asyncio.get_running_loop().time()

    # -- following ------------------------------------------------------------------------

    async def _follow(self, conn: asyncpg.Connection) -> None:
        position: int | None = None
        failures = 0
        while not self.stop.is_set():
            if conn.is_closed():
                raise _LeaseLost("its connection is closed")
            try:
                # Renewing between batches, not from a side task: a holder that stops
                # making progress stops renewing too, and is replaced.
                await self._renew(conn)
                if position is None:
                    position = await self._resume(conn)
                position = await self._step(conn, position)
                failures = 0
            except _CheckpointMoved:
                # Moved by a rebuild, or fenced off because the lease was taken over: the
                # renewal tells which.
                await self._renew(conn, now=True)
                log.info("follower %s: checkpoint moved by someone else; resuming from it",
                         self.name)
                position = None
            except TRANSIENT as exc:
                failures += 1
                delay = BACKOFF.delay(failures)
                log.warning("follower %s: %s; retrying from the checkpoint in %.2fs",
                            self.name, exc, delay)
                # The failed batch may or may not have committed: the checkpoint knows.
                position = None
                await wait_any(self.stop, seconds=delay)

    async def _resume(self, conn: asyncpg.Connection) -> int:
        with translated():
            await conn.execute(Q["ensure_checkpoint"], self.name)
            position: int = await conn.fetchval(Q["read_checkpoint"], self.name)
        self._saved = self._applied = position
        if self.follower.activate is not None:
            await self.follower.activate(position)
        log.info("follower %s: following from position %d", self.name, position)
        return position

    async def _step(self, conn: asyncpg.Connection, position: int) -> int:
        # Take the generation before reading: a commit notified after the read then makes
        # the wait below return at once instead of sleeping through it.
        generation = self.listener.generation
        entries = await read_log_entries(conn, position, self.batch_size)
        if entries:
            position = await self._apply(conn, entries, position)
        if self.follower.maintain is not None:
            await self.follower.maintain()
        if not self.follower.transactional:
            clock = asyncio.get_running_loop().time()
            if clock >= self._next_save:
                self._next_save = clock + self.follower.checkpoint_every_seconds
                await self._save(conn)
        if len(entries) < self.batch_size:
            await self.listener.wait(generation, self.stop)
            if self.follower.linger_seconds and self.listener.generation != generation:
                await wait_any(self.stop, seconds=self.follower.linger_seconds)
        return position

    async def _apply(
        self, conn: asyncpg.Connection, entries: Sequence[LogEntry], position: int
    ) -> int:
        """Apply a batch, parking its undecodable rows; returns the new position."""
        events, undecodable = split(entries)
        new_position = entries[-1].notification_id
        try:
            await self._apply_events(conn, events, undecodable, position, new_position)
        except (_CheckpointMoved, *TRANSIENT):
            raise
        except Exception as exc:
            log.warning("follower %s: the batch after position %d failed (%s); applying it "
                        "event by event", self.name, position, describe(exc))
            try:
                return await self._isolate(conn, entries, position)
            except (_CheckpointMoved, *TRANSIENT):
                raise
            except Exception as exc:
                raise FollowerError(self.name, position, describe(exc)) from exc
        return new_position

    async def _apply_events(
        self, conn: asyncpg.Connection, events: Sequence[RecordedEvent],
        undecodable: Sequence[UndecodableRow], position: int, new_position: int,
    ) -> None:
        """Apply ``events`` and park ``undecodable`` up to ``new_position``: in one
        transaction with the checkpoint, or (non-transactional) apply, then record."""
        with translated():
            if self.follower.transactional:
                await self._apply_in_transaction(conn, events, undecodable, position,
                                                  new_position)
                return
            if events:
                await self.follower.apply(conn, events)
            for row in undecodable:
                await park(conn, self.name, row, row.error, attempts=1, first_failure=now())
            if undecodable and self.follower.passed is not None:
                await self.follower.passed(new_position)
            self._applied = new_position

    async def _isolate(
        self, conn: asyncpg.Connection, entries: Sequence[LogEntry], position: int
    ) -> int:
        """Apply a failed batch one event at a time, parking the events that keep failing;
        returns how far it got (short of the batch's end only when ``stop`` was set)."""
        for entry in entries:
            at = entry.notification_id
            try:
                if isinstance(entry, UndecodableRow):
                    await self._apply_events(conn, [], [entry], position, at)
                else:
                    await self._apply_or_park(conn, entry, position)
            except _Interrupted:
                return position
            position = at
        return position

    async def _apply_or_park(
        self, conn: asyncpg.Connection, event: RecordedEvent, position: int
    ) -> None:
        failures = 0
        first = now()
        while True:
            try:
                await self._apply_events(conn, [event], [], position, event.notification_id)
                return
            except (_CheckpointMoved, *TRANSIENT):
                raise
            except Exception as exc:
                failures += 1
                error = describe(exc)
            if failures > self.retry.retries or (
                    failures == 1 and await run_has_parked(conn, self.name, event.run_id)):
                break
            if self.stop.is_set():
                raise _Interrupted
            delay = self.retry.delay(failures)
            log.warning("follower %s: the %s event at position %d of run_id %s failed (%s); "
                        "retry %d/%d in %.2fs", self.name, event.type, event.notification_id,
                        event.run_id, error, failures, self.retry.retries, delay)
            await wait_any(self.stop, seconds=delay)
        await self._park(conn, event, error, failures, first, position)

    async def _park(
        self, conn: asyncpg.Connection, entry: LogEntry, error: str, attempts: int,
        first: datetime, position: int,
    ) -> None:
        with translated():
            if not self.follower.transactional:
                await park(conn, self.name, entry, error, attempts=attempts, first_failure=first)
                if self.follower.passed is not None:
                    await self.follower.passed(entry.notification_id)
                self._applied = entry.notification_id
                return
            async with conn.transaction():
                await park(conn, self.name, entry, error, attempts=attempts, first_failure=first)
                if await conn.fetchval(Q["advance_checkpoint"], self.name, position,
                                       entry.notification_id, self.holder) is None:
                    raise _CheckpointMoved

    async def _apply_in_transaction(
        self, conn: asyncpg.Connection, events: Sequence[RecordedEvent],
        undecodable: Sequence[UndecodableRow], position: int, new_position: int,
    ) -> None:
        try:
            async with conn.transaction():
                if events:
                    await self.follower.apply(conn, events)
                for row in undecodable:
                    await park(conn, self.name, row, row.error, attempts=1,
                               first_failure=now())
                # Last, so the row lock is held only for the commit. When it does not match,
                # raising rolls the rows back with it.
                if await conn.fetchval(
                    Q["advance_checkpoint"], self.name, position, new_position, self.holder
                ) is None:
                    raise _CheckpointMoved
        except (_CheckpointMoved, *TRANSIENT):
            raise
        except Exception as exc:
            # A batch read before a rebuild's swap moved the checkpoint meets tables that do
            # not match its position, and may fail on them (a duplicate key, a missing row)
            # before the compare-and-set can tell. Rolled back by now: if the checkpoint has
            # moved, the batch was stale, not broken.
            if not conn.is_closed() and await conn.fetchval(
                Q["read_checkpoint"], self.name
            ) != position:
                raise _CheckpointMoved from exc
            raise

    async def _save_on_the_way_out(self, conn: asyncpg.Connection) -> None:
        try:
            await self._save(conn)
        except (_CheckpointMoved, *TRANSIENT) as exc:
            # Not fatal: whoever follows next repeats the unsaved (idempotent) work.
            log.warning("follower %s: checkpoint not saved on stopping: %r", self.name, exc)

    async def _save(self, conn: asyncpg.Connection) -> None:
        """Record how far a non-transactional follower's effects are (compare-and-set)."""
        if self.follower.transactional or self._applied == self._saved or conn.is_closed():
            return
        with translated():
            moved = await conn.fetchval(
                Q["advance_checkpoint"], self.name, self._saved, self._applied, self.holder)
        if moved is None:
            raise _CheckpointMoved
        self._saved = self._applied


async def follower_lag(pool: asyncpg.Pool) -> dict[str, int]:
    """Per follower, how many notification ids its checkpoint is behind the log's head.

    Followers that never ran have no checkpoint row and are absent.
    """
    with translated():
        rows = await pool.fetch(Q["lag"])
    return {row["name"]: row["lag"] for row in rows}
