"""What must hold after any fault, checked on the real log, read models, Redis and clients.

``settle`` waits until the system is quiet: every run created has a terminal event, every
follower has caught up with the log, and the workers' group has nothing pending or waiting.
``check`` then verifies, and returns a ``Tally`` of what it looked at and what was wrong:

1. every run created reaches a terminal state, with exactly one terminal event;
2. the log holds no run the test did not create (nothing invented);
3. the read models equal a rebuild from the log (``projections.rebuild``), every column;
4. each run's Redis stream, where it still exists, holds versions 1..n of the log, n its
   last version;
5. every SSE client saw each event of its run once, in order, up to the terminal event;
6. no pending list keeps growing: the group has nothing pending once settled.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import asyncpg
import redis.asyncio as aioredis

from ledger.domain import EVENT_CLASSES, TERMINAL_TYPES
from ledger.settings import load_settings
from ledger.streams import DEAD, QUEUE, WORKER_GROUP, stream_key
from projections.rebuild import READ_MODELS, rebuild
from projections.service import ProjectorSettings, build_followers
from runledger.testing import wait_until
from tests.faults.cluster import SseClient

TERMINAL_TOPICS = sorted(EVENT_CLASSES[t].TOPIC for t in TERMINAL_TYPES)


def _follower_names() -> tuple[str, ...]:
    """Every follower a projector runs (``build_followers`` constructs them without I/O)."""
    settings = load_settings(ProjectorSettings, database_url="postgresql://localhost/x",
                             redis_url="redis://localhost")
    return tuple(f.name for f in build_followers(settings, None, None))  # type: ignore[arg-type]


FOLLOWERS = _follower_names()

RUN_SUMMARY = """
SELECT originator_id AS run_id, max(originator_version) AS version,
       count(*) FILTER (WHERE topic = ANY($1::text[])) AS terminal
FROM stored_events GROUP BY originator_id
"""


@dataclass
class Tally:
    """What one check looked at, and every violation found (empty: all held)."""

    runs: int = 0
    events: int = 0
    sse_clients: int = 0
    sse_events: int = 0
    dead_letters: int = 0
    violations: list[str] = field(default_factory=list)

    def line(self, scenario: str) -> str:
        return (f"faults: {scenario}: runs={self.runs} events={self.events} "
                f"sse_clients={self.sse_clients} sse_events={self.sse_events} "
                f"dead_letters={self.dead_letters} violations={len(self.violations)}")


async def unfinished(pool: asyncpg.Pool, run_ids: Sequence[UUID]) -> list[UUID]:
    rows = await pool.fetch(RUN_SUMMARY, TERMINAL_TOPICS)
    done = {row["run_id"] for row in rows if row["terminal"] > 0}
    return [r for r in run_ids if r not in done]


async def _caught_up(pool: asyncpg.Pool) -> bool:
    head = await pool.fetchval("SELECT coalesce(max(notification_id), 0) FROM stored_events")
    rows = await pool.fetch("SELECT name, position FROM follower_checkpoints")
    positions = {row["name"]: row["position"] for row in rows}
    return all(positions.get(name) == head for name in FOLLOWERS)


async def queue_state(redis: aioredis.Redis) -> tuple[int, int]:
    """(pending, waiting) in the workers' group; (0, 0) without a queue or group."""
    try:
        groups = await redis.xinfo_groups(QUEUE)
    except aioredis.ResponseError:
        return 0, 0
    group = next((g for g in groups if g["name"] == WORKER_GROUP), None)
    if group is None:
        return 0, 0
    waiting = len(await redis.xrange(QUEUE, f"({group['last-delivered-id']}", "+", count=1000))
    return int(group["pending"]), waiting


async def settle(pool: asyncpg.Pool, redis: aioredis.Redis, run_ids: Sequence[UUID],
                 within: float = 60.0) -> None:
    async def finished() -> bool:
        return not await unfinished(pool, run_ids)

    await wait_until(finished, within=within, what=f"all {len(run_ids)} runs to finish")

    async def quiet() -> bool:
        return await _caught_up(pool) and await queue_state(redis) == (0, 0)

    await wait_until(quiet, within=within, what="followers caught up and the queue drained")


async def snapshot(pool: asyncpg.Pool) -> dict[str, list[str]]:
    """Every read model's rows, every column, as sorted JSON texts."""
    tables = sorted({t for model in READ_MODELS.values() for t in model.tables})
    return {table: [row["r"] for row in await pool.fetch(
        f"SELECT to_jsonb(t)::text AS r FROM {table} t ORDER BY r")] for table in tables}


async def check(pool: asyncpg.Pool, database_url: str, redis: aioredis.Redis,
                run_ids: Sequence[UUID], clients: Sequence[SseClient] = ()) -> Tally:
    tally = Tally(runs=len(run_ids), sse_clients=len(clients))
    bad = tally.violations
    rows = await pool.fetch(RUN_SUMMARY, TERMINAL_TOPICS)
    versions = {row["run_id"]: row["version"] for row in rows}
    tally.events = sum(versions.values())
    for row in rows:
        if row["terminal"] != 1:
            bad.append(f"run {row['run_id']}: {row['terminal']} terminal events")
    bad += [f"run {r}: not in the log" for r in run_ids if r not in versions]
    bad += [f"run {r}: in the log, never created" for r in set(versions) - set(run_ids)]

    before = await snapshot(pool)
    await rebuild(database_url, list(READ_MODELS.values()))
    after = await snapshot(pool)
    for table, rows_before in before.items():
        if rows_before != after[table]:
            live, rebuilt = set(rows_before), set(after[table])
            bad.append(f"read model {table} differs from a rebuild "
                       f"({len(rows_before)} rows live, {len(after[table])} rebuilt; "
                       f"live only: {sorted(live - rebuilt)[:2]}, "
                       f"rebuilt only: {sorted(rebuilt - live)[:2]})")

    await _check_streams(redis, versions, bad)
    for client in clients:
        expected = list(range(1, versions.get(client.run_id, 0) + 1))
        tally.sse_events += len(client.ids)
        if client.ids != expected:
            bad.append(f"SSE client of {client.run_id} saw {client.ids}, expected {expected}")
    pending, waiting = await queue_state(redis)
    if pending or waiting:
        bad.append(f"{QUEUE}: {pending} pending and {waiting} waiting once settled")
    tally.dead_letters = int(await redis.xlen(DEAD))
    return tally


async def _check_streams(redis: aioredis.Redis, versions: dict[Any, int],
                         bad: list[str]) -> None:
    """A run's stream may be gone (Redis lost data after the run finished: its history is in
    PostgreSQL); where it exists it is the log's versions 1..n, complete."""
    pipe = redis.pipeline(transaction=False)
    runs = list(versions)
    for run_id in runs:
        pipe.xrange(stream_key(run_id))
    for run_id, entries in zip(runs, await pipe.execute(), strict=True):
        if not entries:
            continue
        seen = [int(entry_id.split("-")[0]) for entry_id, _ in entries]
        if seen != list(range(1, versions[run_id] + 1)):
            bad.append(f"stream of {run_id}: versions {seen}, log at {versions[run_id]}")
