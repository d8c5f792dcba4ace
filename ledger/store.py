"""``PgEventStore``: the asyncpg adapter that appends and reads run events.

Writes follow the ordering protocol of the architecture in one transaction (the appenders'
advisory lock, bulk insert returning ids, NOTIFY), implemented server-side by
``runledger_append`` so an append is one round trip. Reads come in three shapes: one run's
events, the log after a notification id (for followers, in commit order), and the head id.
``LogListener`` wakes tailing readers on NOTIFY, with a polling fallback and a stop signal.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any
from uuid import UUID

import asyncpg

from ledger.aio import wait_any
from ledger.codec import (
    MAX_EVENT_BYTES,
    LogEntry,
    RecordedEvent,
    UndecodableRow,
    decode_row,
    make_mapper,
    to_domain_event,
)
from ledger.db import close_quietly, connect, translated
from ledger.domain import Run, event_type
from ledger.errors import (
    ConcurrencyConflict,
    EventTooLarge,
    RunNotFound,
    StoreError,
    UndecodableEvent,
)
from ledger.sql import load_queries

log = logging.getLogger(__name__)

Q = load_queries("ledger", "event_store.sql")
CHANNEL = "runledger_events"

class PgEventStore:
    """Appends and reads run events in PostgreSQL. It is handed a pool and never closes it."""

    def __init__(self, pool: asyncpg.Pool, *, lock_timeout_seconds: float = 5.0) -> None:
        self._pool = pool
        self._mapper = make_mapper()
        self._transcoder = self._mapper.transcoder
        self._lock_timeout = f"{int(lock_timeout_seconds * 1000)}ms"

    @property
    def pool(self) -> asyncpg.Pool:
        return self._pool

    # -- writes ---------------------------------------------------------------------------

    def encode(self, events: Sequence[Any]) -> tuple[list[UUID], list[int], list[str], list[bytes]]:
        """Serialize events into the four column arrays; refuses oversized events."""
        ids: list[UUID] = []
        versions: list[int] = []
        topics: list[str] = []
        states: list[bytes] = []
        for event in events:
            # Same output as the library mapper's to_stored_event (so the library reads it
            # back), without its generic per-event topic lookup: this is the hot path.
            state = dict(event.__dict__)
            run_id = state.pop("originator_id")
            version = state.pop("originator_version")
            class_version = getattr(type(event), "class_version", 1)
            if class_version > 1:
                state["class_version"] = class_version
            encoded = self._transcoder.encode(state)
            if len(encoded) > MAX_EVENT_BYTES:
                raise EventTooLarge(
                    run_id, version, event_type(event), len(encoded), MAX_EVENT_BYTES
                )
            ids.append(run_id)
            versions.append(version)
            topics.append(type(event).TOPIC)
            states.append(encoded)
        return ids, versions, topics, states

    async def append(
        self,
        events: Sequence[Any],
        *,
        expected_version: int | None = None,
        connection: asyncpg.Connection | None = None,
    ) -> list[int]:
        """Append ``events`` atomically and return their notification ids.

        ``expected_version`` is the version the caller's decision was based on; the first
        event must follow it. When another writer got there first the primary key refuses
        the insert and ``ConcurrencyConflict`` is raised: nothing of this append is stored.
        Pass ``connection`` to append inside a transaction the caller already opened.
        """
        if not events:
            return []
        first = events[0].originator_version
        if expected_version is not None and first != expected_version + 1:
            raise ValueError(
                f"first event has version {first}, expected {expected_version + 1}"
            )
        columns = self.encode(events)
        try:
            with translated():
                if connection is not None:
                    rows = await connection.fetch(Q["append"], *columns, self._lock_timeout)
                else:
                    rows = await self._pool.fetch(Q["append"], *columns, self._lock_timeout)
        except StoreError as exc:
            if isinstance(exc.__cause__, asyncpg.UniqueViolationError):
                raise ConcurrencyConflict(events[0].originator_id, columns[1]) from exc.__cause__
            raise
        return [row[0] for row in rows]

    async def save(self, run: Run, *, connection: asyncpg.Connection | None = None) -> list[int]:
        """Append the run's pending events at the version it was loaded at."""
        pending = run.collect_events()
        if not pending:
            return []
        return await self.append(
            pending, expected_version=pending[0].originator_version - 1, connection=connection
        )

    # -- reads ----------------------------------------------------------------------------

    async def load_run(self, run_id: UUID) -> Run:
        """Replay a run's events into a ``Run``; ``RunNotFound`` when it has none."""
        with translated():
            rows = await self._pool.fetch(Q["run_events"], run_id, 0, None)
        if not rows:
            raise RunNotFound(run_id)
        run: Run | None = None
        for row in rows:
            try:
                run = to_domain_event(*row[1:]).mutate(run)
            except Exception as exc:
                # An unknown topic, a payload this code cannot read, an out-of-sequence
                # version: deterministic, so retrying cannot help; the caller decides.
                raise UndecodableEvent(
                    f"run {run_id}: event v{row['originator_version']} ({row['topic']}) "
                    f"cannot be replayed: {exc}"
                ) from exc
        if not isinstance(run, Run):
            raise UndecodableEvent(f"run {run_id}: its events do not replay into a run")
        return run

    async def read_run(
        self, run_id: UUID, *, after: int = 0, limit: int | None = None
    ) -> list[RecordedEvent]:
        """A run's events with a version above ``after``, in version order."""
        with translated():
            rows = await self._pool.fetch(Q["run_events"], run_id, after, limit)
        return [RecordedEvent.from_row(*row) for row in rows]

    async def run_version(self, run_id: UUID) -> int:
        """The version of a run's last event; 0 when it has none."""
        with translated():
            return await self._pool.fetchval(Q["run_version"], run_id) or 0

    async def read_after(self, notification_id: int, limit: int = 1000) -> list[RecordedEvent]:
        """Up to ``limit`` events after ``notification_id``, in commit (= id) order."""
        return await read_log(self._pool, notification_id, limit)

    async def iter_after(
        self, notification_id: int, batch_size: int = 1000
    ) -> AsyncIterator[list[RecordedEvent]]:
        """Batches of events after ``notification_id`` up to the head at the time of reading."""
        position = notification_id
        while batch := await self.read_after(position, batch_size):
            yield batch
            position = batch[-1].notification_id
            if len(batch) < batch_size:
                return

    async def head_id(self) -> int:
        """The highest notification id in the log (0 when empty)."""
        with translated():
            return int(await self._pool.fetchval(Q["head_id"]))


async def read_log_entries(
    db: asyncpg.Pool | asyncpg.Connection, after: int, limit: int, *, upto: int | None = None
) -> list[LogEntry]:
    """Up to ``limit`` rows of the log after notification id ``after`` (and, with ``upto``,
    not past it), in commit (= id) order, each decoded — or, when it cannot be, an
    ``UndecodableRow`` in its place. The one way to read the log by position: followers,
    rebuild and ``read_log`` all go through it, on a pool or their own connection. Followers
    park an undecodable row and go on; the log is immutable, so stopping at it would be for
    ever."""
    with translated():
        rows = await db.fetch(Q["events_after"], after, limit, upto)
    try:
        # The happy path costs what a strict read costs (rebuild reads ~100k rows a second
        # through here); only a batch holding a bad row is decoded again, row by row.
        return [RecordedEvent.from_row(*row) for row in rows]
    except UndecodableEvent:
        return [decode_row(*row) for row in rows]


def strict(entries: Sequence[LogEntry]) -> list[RecordedEvent]:
    """``entries`` as events; ``UndecodableEvent`` for the first row that did not decode."""
    for entry in entries:
        if isinstance(entry, UndecodableRow):
            raise UndecodableEvent(
                f"event at position {entry.notification_id} (run {entry.run_id}): "
                f"{entry.error}")
    return entries  # type: ignore[return-value]  # checked just above: all RecordedEvent


async def read_log(
    db: asyncpg.Pool | asyncpg.Connection, after: int, limit: int, *, upto: int | None = None
) -> list[RecordedEvent]:
    """``read_log_entries`` for readers that cannot skip an event: raises
    ``UndecodableEvent`` at an undecodable row."""
    return strict(await read_log_entries(db, after, limit, upto=upto))


async def read_runs(
    db: asyncpg.Pool | asyncpg.Connection, run_ids: Sequence[UUID], upto: int
) -> list[LogEntry]:
    """Every event of ``run_ids`` up to notification id ``upto``, by run then version
    (an undecodable one as an ``UndecodableRow``)."""
    with translated():
        rows = await db.fetch(Q["events_of_runs"], list(run_ids), upto)
    return [decode_row(*row) for row in rows]


class LogListener:
    """Wakes readers when new events commit (LISTEN), with a polling fallback.

    One listener (one dedicated connection) serves any number of readers. Readers take
    ``generation`` *before* reading the log and pass it to ``wait``: a commit notified in
    between makes ``wait`` return at once, so no wake-up is lost. When the connection drops,
    waits fall back to the polling interval and a later ``wait`` reconnects: a reader is
    never stuck because a notification was lost, only slower.
    """

    def __init__(self, dsn: str, *, poll_interval: float = 1.0) -> None:
        self._dsn = dsn
        self._poll_interval = poll_interval
        self._conn: asyncpg.Connection | None = None
        self._changed = asyncio.Event()
        self._retry_at = 0.0
        self.generation = 0

    async def start(self) -> None:
        await self._connect()

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        await close_quietly(conn)

    @property
    def listening(self) -> bool:
        return self._conn is not None and not self._conn.is_closed()

    async def _connect(self) -> None:
        # While the database is unreachable, try again at most once per poll interval.
        now = asyncio.get_running_loop().time()
        if now < self._retry_at:
            return
        self._retry_at = now + self._poll_interval
        conn = None
        try:
            conn = await connect(self._dsn, application_name="runledger listener")
            with translated():
                await conn.add_listener(CHANNEL, self._bump)
            conn.add_termination_listener(self._on_terminated)
        except StoreError as exc:
            log.warning("LISTEN connection failed, polling instead: %s", exc)
            await close_quietly(conn)
            return
        self._conn = conn
        # Events may have committed while nobody was listening.
        self._bump()

    def _bump(self, *_: Any) -> None:
        self.generation += 1
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    def _on_terminated(self, *_: Any) -> None:
        self._conn = None
        self._bump()

    async def wait(
        self, since: int, stop: asyncio.Event | None = None, poll_after: float | None = None
    ) -> bool:
        """Wait for a commit after generation ``since``, ``poll_after`` seconds (default:
        the poll interval) or ``stop``. Returns False when ``stop`` is set: the caller then re-reads
        the log or stops."""
        if not self.listening:
            await self._connect()
        if stop is not None and stop.is_set():
            return False
        if self.generation != since:
            return True
        events = [self._changed] if stop is None else [self._changed, stop]
        await wait_any(*events, seconds=poll_after or self._poll_interval)
        return not (stop is not None and stop.is_set())
