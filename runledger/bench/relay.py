"""``runledger bench relay``: commit → entry visible in ``run_events:{id}``.

A ``runledger projector`` runs as its own process (as deployed: API and workers append,
the projector relays). This process appends single-event transactions at a steady rate
(default 1,000 events/s) — runs of ``queued, started, step x 17, completed``, 50 in flight,
interleaved — and an observer blocks on ``XREAD`` over the streams of the runs in flight.

Latency of an event = the moment the observer receives its entry minus the moment its append
returned (the writer's commit acknowledgement; an entry seen before that counts as 0).
Also reported from the moment the append was called, which adds the append's own time.
Both clocks are this process's, so no clock skew; the observer's own wake-up is included
(the figures are upper bounds). The first ``WARMUP_SECONDS`` of load (fresh connections,
first prepared statements, the first 50 runs starting at once) are not counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import redis.asyncio as aioredis
from redis.typing import KeyT, StreamIdT

from ledger.db import create_pool
from ledger.domain import Run, StepResult
from ledger.store import PgEventStore
from ledger.streams import stream_key
from runledger.bench.harness import Figure, fresh_database, percentile, report, servers

IN_FLIGHT = 50
STEPS = 17
POKE = "bench:relay:poke"
BROWSER = {"name": "chromium", "version": "bench"}
TARGET_P99_MS = 10.0
WARMUP_SECONDS = 1.0


def schedule(total: int) -> list[Any]:
    """At least ``total`` events: waves of IN_FLIGHT runs, their events interleaved."""
    events: list[Any] = []
    while len(events) < total:
        wave = []
        for _ in range(IN_FLIGHT):
            run = Run.queue(test_id="bench", test_name="bench", url="http://127.0.0.1/",
                            steps=[{"action": "click", "instruction": "Click 'Go'"}])
            run.start(worker="bench", browser=BROWSER)
            for index in range(STEPS):
                run.record_step(StepResult(
                    index=index, action="click", instruction="Click 'Go'", status="passed",
                    strategy="dom", duration_ms=5))
            run.complete(status="passed", duration_ms=100)
            wave.append(run.collect_events())
        events += [run[i] for i in range(STEPS + 3) for run in wave]
    return events[:total]


class Observer:
    """Blocks on XREAD over the streams of runs in flight; records when entries arrive."""

    def __init__(self, redis: aioredis.Redis) -> None:
        self._redis = redis
        self._streams: dict[KeyT, StreamIdT] = {POKE: "$"}
        self.seen: dict[tuple[str, int], float] = {}
        self.expected: int | None = None
        self.complete = asyncio.Event()

    async def watch(self, run_id: Any) -> None:
        """Add a run's stream before its first event, and wake the pending XREAD."""
        self._streams[stream_key(run_id)] = "0"
        await self._redis.xadd(POKE, {"new": str(run_id)}, maxlen=100)

    def expect(self, count: int) -> None:
        self.expected = count
        self._check()

    def _check(self) -> None:
        if self.expected is not None and len(self.seen) >= self.expected:
            self.complete.set()

    async def run(self) -> None:
        while not self.complete.is_set():
            reply = await self._redis.xread(dict(self._streams), block=500)
            now = time.perf_counter()
            for key, entries in reply:
                for entry_id, fields in entries:
                    self._streams[key] = entry_id
                    if key == POKE:
                        continue
                    self.seen[(key, int(fields["version"]))] = now
                    if fields["type"] == "completed":
                        self._streams.pop(key, None)
            self._check()


@contextlib.asynccontextmanager
async def projector_process(database_url: str, redis_url: str) -> AsyncIterator[None]:
    env = {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": redis_url,
           "LOG_LEVEL": "WARNING"}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "runledger.cli", "projector", env=env)
    try:
        yield
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), 20)
        except TimeoutError:
            process.kill()
            await process.wait()


async def relay_ready(pool: asyncpg.Pool, within: float = 60) -> None:
    deadline = time.monotonic() + within
    while not await pool.fetchval(
            "SELECT count(*) FROM follower_checkpoints WHERE name = 'relay'"):
        if time.monotonic() > deadline:
            raise RuntimeError("the projector did not start its relay")
        await asyncio.sleep(0.05)


async def produce(store: PgEventStore, observer: Observer, events: list[Any], rate: int
                  ) -> tuple[dict[tuple[str, int], tuple[int, float, float]], float]:
    """Append ``events`` one per transaction, event i at i/rate seconds; returns each
    event's (index, call time, ack time) and the rate achieved. One task per run keeps a
    run's events in order while different runs append concurrently, as independent writers
    would."""
    sent: dict[tuple[str, int], tuple[int, float, float]] = {}
    by_run: dict[Any, list[tuple[int, Any]]] = {}
    for i, event in enumerate(events):
        by_run.setdefault(event.originator_id, []).append((i, event))
    began = time.perf_counter()

    async def write(run: list[tuple[int, Any]]) -> None:
        for i, event in run:
            delay = began + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)  # pacing the load, not waiting for a result
            if event.originator_version == 1:
                await observer.watch(event.originator_id)
            called = time.perf_counter()
            await store.append([event], expected_version=event.originator_version - 1)
            sent[(stream_key(event.originator_id), event.originator_version)] = (
                i, called, time.perf_counter())

    async with asyncio.TaskGroup() as group:
        for run in by_run.values():
            group.create_task(write(run))
    return sent, len(events) / (time.perf_counter() - began)


async def measure(database_url: str, redis_url: str, rate: int, seconds: float
                  ) -> list[Figure]:
    events = schedule(int(rate * seconds))
    pool = await create_pool(database_url, min_size=IN_FLIGHT // 5, max_size=IN_FLIGHT)
    redis = aioredis.Redis.from_url(redis_url, decode_responses=True)
    observer = Observer(redis)
    watching: asyncio.Task[None] | None = None
    try:
        async with projector_process(database_url, redis_url):
            await relay_ready(pool)
            watching = asyncio.create_task(observer.run(), name="bench:observer")
            sent, achieved = await produce(PgEventStore(pool), observer, events, rate)
            observer.expect(len(sent))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(observer.complete.wait(), 30)
            observer.complete.set()
            await watching
    finally:
        if watching is not None and not watching.done():
            watching.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watching
        await redis.aclose()
        await pool.close()
    missing = len(sent) - len(observer.seen)
    if missing:
        raise RuntimeError(f"{missing} of {len(sent)} entries never became visible")
    counted = {k: v for k, v in sent.items() if v[0] >= WARMUP_SECONDS * rate}
    from_ack = [max(0.0, observer.seen[k] - ack) * 1000 for k, (_, _, ack) in counted.items()]
    from_call = [(observer.seen[k] - call) * 1000 for k, (_, call, _) in counted.items()]
    return [
        Figure("relay: events appended", achieved, "events/s", "requested rate", rate),
        Figure("relay: commit → visible p50", percentile(from_ack, 50), "ms"),
        Figure("relay: commit → visible p99", percentile(from_ack, 99), "ms",
               "target", TARGET_P99_MS),
        Figure("relay: append call → visible p50", percentile(from_call, 50), "ms"),
        Figure("relay: append call → visible p99", percentile(from_call, 99), "ms"),
        Figure("relay: commit → visible max", max(from_ack), "ms"),
    ]


async def main(rate: int, seconds: float, json_out: Path | None) -> None:
    with servers(os.environ.get("DATABASE_URL"), os.environ.get("REDIS_URL")) as (pg, redis):
        async with fresh_database(pg) as url:
            figures = await measure(url, redis, rate, seconds)
    report(f"bench relay — {rate:,} events/s for {seconds:g}s, single-event appends, "
           f"{IN_FLIGHT} runs in flight, projector in its own process", figures, json_out)
