"""``runledger bench queue``: no-op runs per second end to end, against ``arq`` on the same Redis.

runledger: the bench appends ``queued`` runs to the ledger (as the API does); a real
``runledger projector`` process relays them to ``runs:queue`` and projects the ``runs`` table;
1 or 2 real worker processes (``run_worker`` with a no-op executor that records one step)
append ``started`` → ``step`` → ``completed`` and acknowledge. A run counts when the ``runs``
table shows it ``passed``: every event persisted *and* projected.

Peer: ``arq`` workers (1 or 2 processes) executing an equivalent no-op job enqueued with
``enqueue_job``, counted when its result is stored — arq keeps a result, not a history.
Both sides run ``--concurrency`` jobs at a time per process. arq polls its queue every
``poll_delay`` seconds; it is measured at its default (0.5 s) and tuned (0.01 s).

Also the worker's RSS after a warm-up and after ``--runs`` more runs (target: growth < 10%).
Figures come from one process tree on this machine; the phases rotate contenders per
round and report medians.

``python -m runledger.bench.queue worker|arq-worker`` are the benchmark's child processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from ledger.db import create_pool
from ledger.domain import Run
from ledger.store import PgEventStore
from runledger.bench.harness import Figure, fresh_database, median, report, servers
from runledger.testing import wait_until
from worker.ports import Outcome, RunJob, StepResult, StepSink

WARMUP = 100
ARQ_DEFAULT_POLL_DELAY = 0.5
APPENDERS = 4
READY_TIMEOUT = 60.0
STEPS = [{"action": "click", "instruction": "noop"}]


class NoopExecutor:
    """Records one passed step per run and does nothing else: the queue's own cost."""

    browser = {"name": "noop", "version": "0"}

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def execute(self, job: RunJob, sink: StepSink) -> Outcome:
        step = job.steps[0]
        await sink.record(StepResult(
            index=0, action=step.action.value, instruction=step.instruction, status="passed",
            duration_ms=0, strategy="selector",
        ))
        return Outcome(status="passed", duration_ms=0)


async def arq_noop(ctx: dict[str, Any], index: int) -> int:
    return index


# -- child processes --------------------------------------------------------------------


@dataclass
class Child:
    name: str
    proc: asyncio.subprocess.Process
    log: Path

    def rss_mib(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError(f"{self.name}: no VmRSS")

    def check_alive(self) -> None:
        if self.proc.returncode is not None:
            tail = self.log.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{tail}")


@contextlib.asynccontextmanager
async def children(
    specs: Sequence[tuple[str, list[str]]], env: dict[str, str], logs: Path
) -> AsyncIterator[list[Child]]:
    """Start processes; SIGTERM them afterwards (SIGKILL after 30 s)."""
    started: list[Child] = []
    try:
        for name, argv in specs:
            log = logs / f"{name}.log"
            with log.open("wb") as out:
                proc = await asyncio.create_subprocess_exec(
                    sys.executable, *argv, env={**os.environ, **env},
                    stdout=out, stderr=asyncio.subprocess.STDOUT,
                )
            started.append(Child(name, proc, log))
        yield started
    finally:
        for child in started:
            if child.proc.returncode is None:
                child.proc.send_signal(signal.SIGTERM)
        for child in started:
            try:
                await asyncio.wait_for(child.proc.wait(), 30)
            except TimeoutError:
                child.proc.kill()
                await child.proc.wait()


async def until(check: Callable[[], Awaitable[bool]], procs: Sequence[Child], what: str,
                within: float) -> None:
    """``wait_until`` ``check()`` is true; fail at once if a child died meanwhile."""

    async def ready() -> bool:
        if await check():
            return True
        for child in procs:
            child.check_alive()
        return False

    await wait_until(ready, within=within, what=what)


# -- runledger --------------------------------------------------------------------------


async def append_runs(store: PgEventStore, count: int) -> None:
    """``count`` queued runs, appended by APPENDERS concurrent writers (as API replicas)."""
    remaining = iter(range(count))

    async def appender() -> None:
        for _ in remaining:
            await store.save(Run.queue(test_id="bench", test_name="noop",
                                       url="http://127.0.0.1/", steps=STEPS))

    async with asyncio.TaskGroup() as group:
        for _ in range(APPENDERS):
            group.create_task(appender())


async def passed_runs(pool: Any) -> int:
    from projections.queries import RunQueries

    counts = await RunQueries(pool).count_by_status()
    if counts["failed"]:
        raise RuntimeError(f"{counts['failed']} no-op run(s) failed")
    return counts["passed"]


@dataclass
class Measured:
    rate: float
    rss_before: float = 0.0
    rss_after: float = 0.0


async def measure_runledger(
    pg_url: str, redis_url: str, workers: int, runs: int, concurrency: int, logs: Path,
) -> Measured:
    async with fresh_database(pg_url) as url:
        await flush(redis_url)
        env = {"DATABASE_URL": url, "REDIS_URL": redis_url, "LOG_LEVEL": "INFO",
               "WORKER_CONCURRENCY": str(concurrency)}
        specs = [("projector", ["-m", "runledger.cli", "projector"])] + [
            (f"worker-{i}", ["-m", "runledger.bench.queue", "worker"]) for i in range(workers)
        ]
        pool = await create_pool(url, min_size=APPENDERS, max_size=APPENDERS + 1)
        try:
            async with children(specs, env, logs) as procs:
                store = PgEventStore(pool)
                await append_runs(store, WARMUP)
                await until(lambda: _at_least(passed_runs(pool), WARMUP), procs,
                            "the warm-up runs", READY_TIMEOUT)
                before = procs[1].rss_mib()
                began = time.perf_counter()
                await append_runs(store, runs)
                await until(lambda: _at_least(passed_runs(pool), WARMUP + runs), procs,
                            f"{runs} runs to pass", 600)
                elapsed = time.perf_counter() - began
                return Measured(runs / elapsed, before, procs[1].rss_mib())
        finally:
            await pool.close()


async def _at_least(count: Any, target: int) -> bool:
    return await count >= target


# -- arq --------------------------------------------------------------------------------


async def measure_arq(
    redis_url: str, workers: int, jobs: int, concurrency: int, poll_delay: float, logs: Path,
) -> Measured:
    from arq import create_pool as arq_pool
    from arq.connections import RedisSettings

    await flush(redis_url)
    env = {"REDIS_URL": redis_url, "BENCH_CONCURRENCY": str(concurrency),
           "BENCH_ARQ_POLL_DELAY": str(poll_delay)}
    specs = [(f"arq-{i}", ["-m", "runledger.bench.queue", "arq-worker"]) for i in range(workers)]
    pool = await arq_pool(RedisSettings.from_dsn(redis_url))
    try:
        async with children(specs, env, logs) as procs:
            await run_arq_jobs(pool, WARMUP, procs)
            began = time.perf_counter()
            await run_arq_jobs(pool, jobs, procs)
            return Measured(jobs / (time.perf_counter() - began))
    finally:
        await pool.aclose()


async def run_arq_jobs(pool: Any, count: int, procs: Sequence[Child]) -> None:
    ids = [uuid.uuid4().hex for _ in range(count)]
    remaining = iter(enumerate(ids))

    async def enqueuer() -> None:
        for index, job_id in remaining:
            await pool.enqueue_job("arq_noop", index, _job_id=job_id)

    async with asyncio.TaskGroup() as group:
        for _ in range(APPENDERS):
            group.create_task(enqueuer())
    keys = [f"arq:result:{job_id}" for job_id in ids]

    async def done() -> bool:
        stored = 0
        for start in range(0, len(keys), 1000):
            stored += await pool.exists(*keys[start:start + 1000])
        return stored == len(keys)

    await until(done, procs, f"{count} arq jobs", 600)


def arq_worker_main() -> None:
    from arq.connections import RedisSettings
    from arq.worker import Worker, func

    worker = Worker(
        functions=[func(arq_noop, name="arq_noop")],
        redis_settings=RedisSettings.from_dsn(os.environ["REDIS_URL"]),
        max_jobs=int(os.environ["BENCH_CONCURRENCY"]),
        poll_delay=float(os.environ["BENCH_ARQ_POLL_DELAY"]),
    )
    worker.run()


# -- the benchmark ----------------------------------------------------------------------


async def flush(redis_url: str) -> None:
    client = aioredis.Redis.from_url(redis_url)
    try:
        await client.flushdb()
    finally:
        await client.aclose()


async def measure(
    pg_url: str, redis_url: str, runs: int, rounds: int, concurrency: int,
    poll_delays: Sequence[float], logs: Path,
) -> list[Figure]:
    rates: dict[tuple[str, int], list[float]] = {}
    rss: list[Measured] = []
    contenders = ["runledger", *(f"arq {delay:g}" for delay in poll_delays)]
    for round_ in range(rounds):
        for workers in (1, 2):
            # Rotate who goes first, so nobody always runs on a warmer (or busier) machine.
            shift = round_ % len(contenders)
            for name in contenders[shift:] + contenders[:shift]:
                if name == "runledger":
                    result = await measure_runledger(
                        pg_url, redis_url, workers, runs, concurrency, logs)
                    if workers == 1:
                        rss.append(result)
                else:
                    delay = float(name.split()[1])
                    result = await measure_arq(redis_url, workers, runs, concurrency, delay, logs)
                rates.setdefault((name, workers), []).append(result.rate)
    figures = []
    for workers in (1, 2):
        processes = f"{workers} worker process{'es' if workers > 1 else ''}"
        ours = median(rates[("runledger", workers)])
        for delay in poll_delays:
            default = " (its default)" if delay == ARQ_DEFAULT_POLL_DELAY else ""
            figures.append(Figure(
                f"no-op runs end to end, {processes}", ours, "runs/s",
                f"arq, {processes}, poll_delay {delay:g}s{default}",
                median(rates[(f"arq {delay:g}", workers)]),
            ))
    last = rss[-1]
    growth = (last.rss_after - last.rss_before) / last.rss_before * 100
    figures += [
        Figure(f"worker RSS after {WARMUP} warm-up runs", last.rss_before, "MiB"),
        Figure(f"worker RSS after {runs:,} more runs", last.rss_after, "MiB"),
        Figure(f"worker RSS growth over {runs:,} runs", max(growth, 0.0), "% RSS growth",
               "target", 10.0),
    ]
    return figures


async def main(
    *, runs: int, rounds: int, concurrency: int, arq_poll_delays: Sequence[float],
    redis_url: str | None, json_out: Path | None,
) -> None:
    # Redis is flushed between phases: a throw-away server unless one is named explicitly.
    with (servers(os.environ.get("DATABASE_URL"), redis_url) as (pg, redis),
          tempfile.TemporaryDirectory(prefix="runledger-bench-queue-") as logs):
        figures = await measure(
            pg, redis, runs, rounds, concurrency, arq_poll_delays, Path(logs))
    report(
        f"bench queue — {runs:,} no-op runs per phase, median of {rounds} round(s), "
        f"{concurrency} jobs at a time per process", figures, json_out,
    )


def worker_main() -> None:
    from worker.main import run

    sys.exit(run(lambda settings, pool: NoopExecutor()))


if __name__ == "__main__":
    import logging

    logging.basicConfig(level=os.environ.get("LOG_LEVEL", "INFO"), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    {"worker": worker_main, "arq-worker": arq_worker_main}[sys.argv[1]]()
