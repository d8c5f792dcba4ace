"""Rebuild read models from the log while readers keep using the live tables.

1. Take the rebuild lock (one rebuild at a time) and create the schema
   ``runledger_rebuild`` with an empty structural copy of each target table (columns,
   defaults, checks, primary key — taken from the live table, so later migrations come
   along).
2. Replay the whole log into the copies with the models' own ``apply`` (the rebuild
   connection's ``search_path`` points at the copies), one transaction per batch, reading
   the next batch while the current one is written.
3. Build the secondary indexes (same names), re-grant the live table's privileges, ANALYZE.
4. Catch up: apply what was appended meanwhile (up to the head as of now) to the copies.
5. Swap, in one short transaction: lock the live tables, then each model's checkpoint row
   (the order a follower's batch takes them, so they cannot deadlock). A running follower
   may have applied events the rebuild has not read yet: apply those few to that model's
   copies first (on the rebuild's connection, up to the locked checkpoint), so that the
   swap never moves a checkpoint back — readers lose no rows, and a follower that then
   sits idle is not left behind without a batch to notice it by. Drop the tables, move the
   copies in, and set each checkpoint to where its copies are: unchanged, or ahead, when
   the follower was behind the rebuild (its next batch then finds its checkpoint moved and
   resumes from there). The swap waits at most ``lock_timeout`` for readers, and retries.

An event a model cannot apply does not abort the rebuild: as a follower would, the rebuild
applies the failing batch event by event and parks what still fails (once: a replay has no
transient causes to wait out) or does not decode, into a copy of ``parked_events``; the
swap replaces the rebuilt models' parked rows with the copy's, and the result counts them.

A failure before the swap leaves the live tables and checkpoints untouched; the leftover
schema is dropped (here, or by the next rebuild).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import asyncpg

from ledger.codec import LogEntry, RecordedEvent, UndecodableRow
from ledger.db import close_quietly, connect, create_pool, translated
from ledger.errors import StoreError, TransientStoreError
from ledger.sql import load_queries
from ledger.store import PgEventStore, read_log_entries
from projections import locator_memory, runs, steps, test_stats
from projections.errors import RebuildError
from projections.follower import ReadModel
from projections.parking import describe, now, park, split

log = logging.getLogger(__name__)

Q = load_queries("projections", "rebuild.sql")

#: what ``runledger rebuild`` can rebuild, by name (the follower whose checkpoint moves)
READ_MODELS: dict[str, ReadModel] = {
    runs.MODEL.name: runs.MODEL,
    steps.MODEL.name: steps.MODEL,
    locator_memory.MODEL.name: locator_memory.MODEL,
    test_stats.MODEL.name: test_stats.MODEL,
}

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class RebuildResult:
    """``position``: how far the replay read the log; ``events``: how many it applied (a
    model whose follower was further along at the swap was brought up to that checkpoint);
    ``parked``: events parked (per model) in the rebuilt models."""

    models: tuple[str, ...]
    position: int
    events: int
    seconds: float
    parked: int = 0

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0


async def rebuild(
    dsn: str,
    models: Sequence[ReadModel],
    *,
    batch_size: int = 5000,
    on_progress: Progress | None = None,
    lock_timeout_seconds: float = 2.0,
    swap_attempts: int = 5,
) -> RebuildResult:
    """Rebuild ``models`` from the whole log and swap them in; see the module docstring.

    ``on_progress(events_done, events_total)`` is called after each batch.
    """
    if not models:
        raise ValueError("nothing to rebuild")
    began = time.perf_counter()
    pool = await create_pool(dsn, min_size=2, max_size=2)
    try:
        writer = await connect(dsn, application_name="runledger rebuild")
        try:
            await _lock(writer)
            try:
                store = PgEventStore(pool)
                tables = await _prepare(writer, models)
                position, events = await _replay(pool, writer, models, batch_size,
                                                 on_progress)
                await _finish(writer, tables)
                head = await store.head_id()
                position, more = await _catch_up(store, writer, models, position, head,
                                                  batch_size)
                parked = await _swap(pool, store, writer, models, tables, position,
                                     batch_size, lock_timeout_seconds, swap_attempts)
            finally:
                with contextlib.suppress(Exception):
                    await asyncio.shield(writer.execute(Q["drop_schema"]))
                with contextlib.suppress(Exception):
                    await asyncio.shield(writer.fetchval(Q["unlock"]))
        finally:
            await close_quietly(writer, seconds=5)
    finally:
        await asyncio.shield(pool.close())
    result = RebuildResult(tuple(m.name for m in models), position, events + more,
                           time.perf_counter() - began, parked)
    log.info("rebuilt %s: %d events up to position %d in %.1fs (%.0f events/s), %d parked",
             ", ".join(result.models), result.events, position, result.seconds, result.rate,
             result.parked)
    return result


async def _lock(writer: asyncpg.Connection) -> None:
    with translated():
        locked = await writer.fetchval(Q["try_lock"])
    if not locked:
        raise RebuildError("another rebuild is running on this database")


async def _prepare(writer: asyncpg.Connection, models: Sequence[ReadModel]) -> dict[str, str]:
    """Create the empty copies; returns each table's live schema."""
    tables: dict[str, str] = {}
    with translated():
        await writer.execute(Q["reset_schema"])
        for table in (t for model in models for t in model.tables):
            schema = await writer.fetchval(Q["live_schema"], table)
            if schema is None:
                raise RebuildError(f"table {table!r} does not exist; run `runledger migrate`")
            tables[table] = schema
            await writer.execute(await writer.fetchval(Q["clone_table"], schema, table))
            for row in await writer.fetch(Q["constraint_ddl"], schema, table):
                await writer.execute(row[0])
        await writer.execute(Q["clone_parked"])
        await writer.fetchrow(Q["use_rebuild_schema"])
    return tables


async def _replay(
    pool: asyncpg.Pool, writer: asyncpg.Connection, models: Sequence[ReadModel],
    batch_size: int, on_progress: Progress | None,
) -> tuple[int, int]:
    """Apply the log to the copies up to its head; returns (position, events applied)."""
    with translated():
        total = await pool.fetchval(Q["count_events"])
    position = done = 0
    pending: asyncio.Task[list[LogEntry]] | None = asyncio.create_task(
        read_log_entries(pool, 0, batch_size), name="rebuild:read")
    try:
        while pending is not None:
            events = await pending
            pending = None
            if not events:
                break
            position = events[-1].notification_id
            if len(events) == batch_size:
                # Read the next batch while this one is written.
                pending = asyncio.create_task(read_log_entries(pool, position, batch_size),
                                              name="rebuild:read")
            await _apply_batch(writer, models, events)
            done += len(events)
            if on_progress is not None:
                on_progress(done, max(total, done))
    finally:
        if pending is not None:
            pending.cancel()
            with contextlib.suppress(BaseException):
                await pending
    return position, done


async def _apply_batch(
    writer: asyncpg.Connection, models: Sequence[ReadModel], entries: Sequence[LogEntry]
) -> None:
    """Apply a batch to every model's copies in one transaction, parking undecodable rows;
    when that fails, apply it model by model, event by event, parking what fails."""
    events, undecodable = split(entries)
    try:
        with translated():
            async with writer.transaction():
                for model in models:
                    await _apply_model(writer, model, events, undecodable)
        return
    except TransientStoreError:
        raise
    except Exception as exc:
        log.warning("rebuild: the batch after position %d failed (%s); applying it event by "
                    "event", entries[0].notification_id - 1, describe(exc))
    for model in models:
        await _isolate(writer, model, entries)


async def _apply_model(
    writer: asyncpg.Connection, model: ReadModel, events: Sequence[RecordedEvent],
    undecodable: Sequence[UndecodableRow],
) -> None:
    if events:
        await model.apply(writer, events)
    for row in undecodable:
        await park(writer, model.name, row, row.error, attempts=1, first_failure=now())


async def _isolate(
    writer: asyncpg.Connection, model: ReadModel, entries: Sequence[LogEntry]
) -> None:
    for entry in entries:
        try:
            with translated():
                async with writer.transaction():
                    if isinstance(entry, UndecodableRow):
                        await _apply_model(writer, model, [], [entry])
                    else:
                        await _apply_model(writer, model, [entry], [])
            continue
        except TransientStoreError:
            raise
        except Exception as exc:
            error = describe(exc)
        with translated():
            await park(writer, model.name, entry, error, attempts=1, first_failure=now())


async def _finish(writer: asyncpg.Connection, tables: dict[str, str]) -> None:
    with translated():
        for table, schema in tables.items():
            for row in await writer.fetch(Q["index_ddl"], schema, table):
                if "runledger_rebuild." not in row["ddl"]:
                    raise RebuildError(f"cannot re-target index definition: {row['ddl']}")
                await writer.execute(row["ddl"])
            for row in await writer.fetch(Q["grant_ddl"], schema, table):
                await writer.execute(row[0])
            await writer.execute(await writer.fetchval(Q["analyze_ddl"], table))


async def _catch_up(
    store: PgEventStore, writer: asyncpg.Connection, models: Sequence[ReadModel],
    after: int, upto: int, batch_size: int,
) -> tuple[int, int]:
    """Apply the events in (``after``, ``upto``] to the copies; returns (``upto``, events)."""
    position, done = after, 0
    while position < upto:
        events = await read_log_entries(store.pool, position, batch_size, upto=upto)
        if not events:
            break
        await _apply_batch(writer, models, events)
        position = events[-1].notification_id
        done += len(events)
    return max(after, upto), done


async def _swap(
    pool: asyncpg.Pool, store: PgEventStore, writer: asyncpg.Connection,
    models: Sequence[ReadModel], tables: dict[str, str], position: int, batch_size: int,
    lock_timeout: float, attempts: int,
) -> int:
    """Swap the copies in; returns how many events the rebuilt models have parked."""
    # How far each model's copies are; kept across attempts (a catch-up is committed).
    reached = {m.name: position for m in models}
    for attempt in range(1, attempts + 1):
        try:
            with translated():
                async with pool.acquire() as conn, conn.transaction():
                    await conn.fetchval(Q["set_lock_timeout"], f"{int(lock_timeout * 1000)}ms")
                    parked = await _swap_in(conn, store, writer, models, tables, reached,
                                            batch_size)
            log.info("swapped in rebuilt %s (checkpoints: %s)", ", ".join(tables),
                     ", ".join(f"{name} at {at}" for name, at in sorted(reached.items())))
            return parked
        except StoreError as exc:
            if not isinstance(exc.__cause__, asyncpg.LockNotAvailableError):
                raise RebuildError(f"could not swap the rebuilt tables in: {exc}") from exc
            log.warning("rebuild: readers held the live tables for over %.1fs "
                        "(attempt %d of %d)", lock_timeout, attempt, attempts)
            await asyncio.sleep(min(5.0, 0.2 * 2**attempt))
    raise RebuildError(f"could not lock the live tables in {attempts} attempts; "
                       "the rebuilt copies were discarded")


async def _swap_in(
    conn: asyncpg.Connection, store: PgEventStore, writer: asyncpg.Connection,
    models: Sequence[ReadModel], tables: dict[str, str], reached: dict[str, int],
    batch_size: int,
) -> int:
    """The swap transaction's work on ``conn``; updates ``reached``; returns how many
    parked events the rebuilt models now have."""
    ddl = [await conn.fetchrow(Q["swap_ddl"], schema, table) for table, schema in tables.items()]
    # Tables, then checkpoint rows: the order a follower's batch takes them.
    for row in ddl:
        await conn.execute(row["lock"])
    await conn.execute(Q["lock_parked"])
    live: dict[str, int] = {}
    for model in sorted(models, key=lambda m: m.name):
        await conn.execute(Q["ensure_checkpoint"], model.name)
        live[model.name] = await conn.fetchval(Q["lock_checkpoint"], model.name)
    # Now no follower batch can commit: a follower ahead of the copies has applied events
    # (appended since the catch-up) that they lack. Apply those to the copies (the
    # rebuild's connection writes them; this one holds the locks) rather than rewind the
    # checkpoint: a rewound follower would meet tables behind its batch and could fail on a
    # missing row before its compare-and-set, or, idle, never notice at all.
    for model in models:
        if live[model.name] > reached[model.name]:
            reached[model.name], _ = await _catch_up(
                store, writer, [model], reached[model.name], live[model.name], batch_size)
    for row in ddl:
        await conn.execute(row["drop"])
        await conn.execute(row["move"])
    for name in sorted(reached):
        await conn.execute(Q["set_checkpoint"], name, reached[name])
    await conn.execute(Q["unpark_models"], [m.name for m in models])
    await conn.execute(Q["move_parked"])
    return int(await conn.fetchval(Q["count_parked"]))
