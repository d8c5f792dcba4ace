"""``runledger bench append``: the event store's write path against its floor and a peer.

Two workloads over N runs: single-event transactions (each run: queued, started, 3 steps,
completed, one transaction each) and 20-event transactions (one per run). Contenders, on
the same database in the same process, alternating, medians over rounds:

* runledger — ``PgEventStore.append`` with domain events (encoding included);
* floor — raw asyncpg calling the same ``runledger_append`` with pre-encoded rows;
* client-side protocol — raw asyncpg issuing the protocol as separate statements
  (BEGIN, SET LOCAL lock_timeout, advisory lock, INSERT … RETURNING, NOTIFY, COMMIT);
* no lock — raw asyncpg, same rows, without the appenders' lock: what ordering costs;
* table lock — raw asyncpg, same rows, serialised by the table's EXCLUSIVE lock as before
  ``ledger/0002`` (which conflicts with VACUUM): what the advisory lock costs or saves;
* eventsourcing — the library's own PostgreSQL recorder (psycopg) saving the same events.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import asyncpg

from ledger.db import create_pool
from ledger.domain import Run, StepResult
from ledger.store import PgEventStore
from runledger.bench.harness import Figure, fresh_database, median, percentile, report, servers

CONCURRENCY = 4
BROWSER = {"name": "chromium", "version": "bench"}

NO_LOCK_FUNCTION = """
CREATE OR REPLACE FUNCTION bench_append_nolock(
    p_ids uuid[], p_versions bigint[], p_topics text[], p_states bytea[], p_lock_timeout text
) RETURNS SETOF bigint LANGUAGE plpgsql AS $$
BEGIN
    NOTIFY runledger_events;
    RETURN QUERY INSERT INTO stored_events (originator_id, originator_version, topic, state)
        SELECT * FROM unnest(p_ids, p_versions, p_topics, p_states) RETURNING notification_id;
END; $$;
"""
TABLE_LOCK_FUNCTION = """
CREATE OR REPLACE FUNCTION bench_append_tablelock(
    p_ids uuid[], p_versions bigint[], p_topics text[], p_states bytea[], p_lock_timeout text
) RETURNS SETOF bigint LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('lock_timeout', p_lock_timeout, true);
    LOCK TABLE stored_events IN EXCLUSIVE MODE;
    NOTIFY runledger_events;
    RETURN QUERY INSERT INTO stored_events (originator_id, originator_version, topic, state)
        SELECT * FROM unnest(p_ids, p_versions, p_topics, p_states) RETURNING notification_id;
END; $$;
"""
TABLE_LOCKED = "raw asyncpg with the table lock (before ledger/0002)"
INSERT = (
    "INSERT INTO stored_events (originator_id, originator_version, topic, state) "
    "SELECT * FROM unnest($1::uuid[], $2::bigint[], $3::text[], $4::bytea[]) "
    "RETURNING notification_id"
)

Batch = Sequence[Any]  # the domain events of one transaction


def make_workload(runs: int, per_transaction: int) -> list[list[Batch]]:
    """Per run, its events split into transactions of ``per_transaction`` events."""
    workload = []
    for _ in range(runs):
        run = Run.queue(test_id="bench", test_name="bench", url="http://127.0.0.1/",
                        steps=[{"action": "click", "instruction": "Click 'Go'"}])
        run.start(worker="bench", browser=BROWSER)
        steps = 3 if per_transaction == 1 else 17
        for index in range(steps):
            run.record_step(StepResult(
                index=index, action="click", instruction="Click 'Go'", status="passed",
                strategy="dom", duration_ms=12, url="http://x/"))
        run.complete(status="passed", duration_ms=40)
        events = run.collect_events()
        workload.append([events[i:i + per_transaction]
                         for i in range(0, len(events), per_transaction)])
    return workload


async def drive(
    workload: list[list[Batch]], write: Callable[[Batch], Awaitable[Any]]
) -> tuple[float, list[float]]:
    """Write every run's transactions in order, CONCURRENCY runs at a time."""
    latencies: list[float] = []
    queue: asyncio.Queue[list[Batch]] = asyncio.Queue()
    for run in workload:
        queue.put_nowait(run)

    async def lane() -> None:
        while not queue.empty():
            for batch in queue.get_nowait():
                began = time.perf_counter()
                await write(batch)
                latencies.append(time.perf_counter() - began)

    began = time.perf_counter()
    async with asyncio.TaskGroup() as group:
        for _ in range(CONCURRENCY):
            group.create_task(lane())
    elapsed = time.perf_counter() - began
    events = sum(len(b) for run in workload for b in run)
    return events / elapsed, latencies


def library_recorder(url: str) -> tuple[Any, Any, Any]:
    from urllib.parse import urlsplit

    from eventsourcing.persistence import (
        DatetimeAsISO,
        DecimalAsStr,
        JSONTranscoder,
        Mapper,
        UUIDAsHex,
    )
    from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore

    parts = urlsplit(url)
    datastore = PostgresDatastore(
        dbname=parts.path.lstrip("/"), host=parts.hostname or "127.0.0.1",
        port=str(parts.port or 5432), user=parts.username or "postgres",
        password=parts.password or "", pool_size=CONCURRENCY, max_overflow=0,
    )
    recorder = PostgresApplicationRecorder(datastore, events_table_name="es_bench_events")
    recorder.create_table()
    transcoder = JSONTranscoder()
    for transcoding in (UUIDAsHex(), DecimalAsStr(), DatetimeAsISO()):
        transcoder.register(transcoding)
    return datastore, recorder, Mapper(transcoder=transcoder)


async def measure(url: str, runs: int, rounds: int) -> list[Figure]:
    pool = await create_pool(url, min_size=CONCURRENCY, max_size=CONCURRENCY)
    datastore, recorder, peer_mapper = await asyncio.to_thread(library_recorder, url)
    store = PgEventStore(pool)
    await pool.execute(NO_LOCK_FUNCTION)
    await pool.execute(TABLE_LOCK_FUNCTION)
    figures: list[Figure] = []
    try:
        for label, per_txn in (("1-event transactions", 1), ("20-event transactions", 20)):
            figures += await measure_workload(
                label, per_txn, runs, rounds, pool, store, recorder, peer_mapper
            )
    finally:
        await pool.close()
        datastore.close()
    return figures


async def measure_workload(
    label: str, per_txn: int, runs: int, rounds: int, pool: asyncpg.Pool,
    store: PgEventStore, recorder: Any, peer_mapper: Any,
) -> list[Figure]:
    lock = store._lock_timeout  # same lock timeout as the store, for the same protocol

    async def ours(batch: Batch) -> Any:
        return await store.append(batch)

    async def floor(batch: Batch) -> Any:
        return await pool.fetch("SELECT runledger_append($1, $2, $3, $4, $5)",
                                *encoded[id(batch)], lock)

    async def no_lock(batch: Batch) -> Any:
        return await pool.fetch("SELECT bench_append_nolock($1, $2, $3, $4, $5)",
                                *encoded[id(batch)], lock)

    async def table_lock(batch: Batch) -> Any:
        return await pool.fetch("SELECT bench_append_tablelock($1, $2, $3, $4, $5)",
                                *encoded[id(batch)], lock)

    async def client_protocol(batch: Batch) -> Any:
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute(f"SET LOCAL lock_timeout = '{lock}'")
            await conn.execute("SELECT pg_advisory_xact_lock(7312002)")
            rows = await conn.fetch(INSERT, *encoded[id(batch)])
            await conn.execute("NOTIFY runledger_events")
            return rows

    async def peer(batch: Batch) -> Any:
        stored = [peer_mapper.to_stored_event(e) for e in batch]
        return await asyncio.to_thread(recorder.insert_events, stored)

    contenders: dict[str, Callable[[Batch], Awaitable[Any]]] = {
        "runledger": ours, "raw asyncpg (floor)": floor,
        "raw asyncpg, client-side protocol": client_protocol,
        "raw asyncpg without the lock": no_lock, TABLE_LOCKED: table_lock,
        "eventsourcing recorder": peer,
    }
    rates: dict[str, list[float]] = {name: [] for name in contenders}
    lat: dict[str, list[float]] = {name: [] for name in contenders}
    names = list(contenders)
    for round_ in range(rounds):
        for name in names[round_ % len(names):] + names[: round_ % len(names)]:
            workload = make_workload(runs, per_txn)
            encoded = {id(b): store.encode(b) for run in workload for b in run}
            await pool.execute("TRUNCATE stored_events")
            await asyncio.to_thread(_truncate_peer, recorder)
            rate, latencies = await drive(workload, contenders[name])
            rates[name].append(rate)
            lat[name].extend(latencies)
    return _figures(label, rates, lat)


def _truncate_peer(recorder: Any) -> None:
    with recorder.datastore.get_connection() as conn, conn.cursor() as curs:
        curs.execute("TRUNCATE es_bench_events")


def _figures(label: str, rates: dict[str, list[float]], lat: dict[str, list[float]]
             ) -> list[Figure]:
    ours = median(rates["runledger"])
    figures = []
    for name in rates:
        if name == "runledger":
            continue
        figures.append(Figure(f"append {label}: throughput", ours, "events/s",
                              name, median(rates[name])))
    for q in (50, 99):
        mine = percentile(lat["runledger"], q) * 1000
        for name in ("raw asyncpg (floor)", "eventsourcing recorder"):
            figures.append(Figure(f"append {label}: p{q} latency", mine, "ms",
                                  name, percentile(lat[name], q) * 1000))
    unlocked = "raw asyncpg without the lock"
    lock_cost = Figure(f"append {label}: lock cost (floor with lock)",
                       median(rates["raw asyncpg (floor)"]), "events/s",
                       unlocked, median(rates[unlocked]))
    advisory = Figure(f"append {label}: advisory lock vs table lock (floor)",
                      median(rates["raw asyncpg (floor)"]), "events/s",
                      TABLE_LOCKED, median(rates[TABLE_LOCKED]))
    return [*figures, lock_cost, advisory]


async def main(runs: int, rounds: int, json_out: Path | None) -> None:
    with servers(os.environ.get("DATABASE_URL"), os.environ.get("REDIS_URL")) as (pg, _redis):
        async with fresh_database(pg) as url:
            figures = await measure(url, runs, rounds)
    report(f"bench append — {runs} runs, {rounds} rounds, {CONCURRENCY} concurrent writers",
           figures, json_out)


__all__: Sequence[str] = ["main"]
