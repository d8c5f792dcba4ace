"""``runledger bench tail``: how long an event takes from its commit to SSE clients.

Set-up, as deployed: PostgreSQL and Valkey (embedded unless ``DATABASE_URL`` / ``REDIS_URL``
are set), ``runledger projector`` and ``runledger api`` as processes of their own. A writer
process plays the workers: it appends step events to N runs, round-robin, at a fixed total
rate, and stamps each event when its append returned (the commit is acknowledged). This
process plays the clients, on the same events at the same time:

* **SSE** — N clients, one per run, each tailing ``/runs/{id}/stream`` (a minimal HTTP/1.1
  client, standing in for a browser's native EventSource so the measuring side stays light);
* **polling** (the baseline: how the replaced system streams) — N clients reading their
  run's Redis stream every 0.5 s (``XRANGE`` after the last id seen);
* for reference, one ``XREAD BLOCK`` over every stream: when the relay's entry appears.

Latency = arrival minus commit; both stamps are ``time.perf_counter()``, CLOCK_MONOTONIC on
Linux, one clock for all processes. Every event must reach its SSE client exactly once, in
order; the benchmark fails otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import secrets
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path

import redis.asyncio as aioredis
from redis.typing import KeyT, StreamIdT

from ledger.db import create_pool
from ledger.domain import Run, StepResult
from ledger.store import PgEventStore
from ledger.streams import stream_key
from runledger.bench.harness import Figure, fresh_database, percentile, report, servers
from runledger.testing import wait_until

POLL_INTERVAL = 0.5
WRITER_LANES = 4
BROWSER = {"name": "chromium", "version": "bench"}
POLLING = "polling XRANGE every 0.5 s"
FIRST_MEASURED = 3  # versions 1-2 (queued, started) are written before clients connect

Key = tuple[str, int]  # (run id, version)


@dataclass
class Clock:
    """When each (run, version) committed and when each client saw it."""

    committed: dict[Key, float] = field(default_factory=dict)
    sse: dict[Key, list[float]] = field(default_factory=dict)
    polled: dict[Key, float] = field(default_factory=dict)
    relayed: dict[Key, float] = field(default_factory=dict)

    def latencies(self, arrivals: dict[Key, float]) -> list[float]:
        return [(arrivals[key] - at) * 1000 for key, at in self.committed.items()
                if key in arrivals]


# -- the writer (a process of its own, so the clients' load cannot delay its stamps) -------

def _writer_process(database_url: str, clients: int, rate: int, seconds: float,
                    pipe: Connection) -> None:
    asyncio.run(_writer(database_url, clients, rate, seconds, pipe))


async def _writer(database_url: str, clients: int, rate: int, seconds: float,
                  pipe: Connection) -> None:
    pool = await create_pool(database_url, min_size=WRITER_LANES, max_size=WRITER_LANES)
    try:
        store = PgEventStore(pool)
        runs = []
        for _ in range(clients):
            run = Run.queue(test_id="bench", test_name="bench", url="http://127.0.0.1/",
                            steps=[{"action": "click", "instruction": "Click"}])
            run.start(worker="bench", browser=BROWSER)
            await store.save(run)
            runs.append(run)
        pipe.send([str(run.id) for run in runs])
        await asyncio.to_thread(pipe.recv)  # "go": every client is connected
        committed: dict[Key, float] = {}
        began = time.perf_counter()
        async with asyncio.TaskGroup() as group:
            for lane in range(WRITER_LANES):
                group.create_task(_lane(store, runs[lane::WRITER_LANES], rate / WRITER_LANES,
                                        began, seconds, committed))
        achieved = len(committed) / (time.perf_counter() - began)
        for run in runs:  # ends the streams
            run.complete(status="passed", duration_ms=1)
            await store.save(run)
        pipe.send((achieved, committed, {str(run.id): run.version for run in runs}))
    finally:
        await pool.close()


async def _lane(store: PgEventStore, runs: list[Run], rate: float, began: float,
                seconds: float, committed: dict[Key, float]) -> None:
    index = 0
    while (due := began + index / rate) < began + seconds:
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        run = runs[index % len(runs)]
        run.record_step(StepResult(
            index=run.last_step + 1, action="click", instruction="Click", status="passed",
            strategy="dom", duration_ms=5))
        await store.save(run)
        committed[(str(run.id), run.version)] = time.perf_counter()
        index += 1


# -- the clients ---------------------------------------------------------------------------

async def _sse_client(port: int, key: str, run_id: str, clock: Clock,
                      connected: asyncio.Event) -> None:
    """Tail one run over HTTP/1.1 (chunked) to its terminal event, stamping each event."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(
            f"GET /runs/{run_id}/stream?after=2 HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Authorization: Bearer {key}\r\nAccept: text/event-stream\r\n\r\n".encode()
        )
        status = await reader.readline()
        if b" 200 " not in status:
            raise RuntimeError(f"stream of run {run_id}: {status!r}")
        while await reader.readline() not in (b"\r\n", b""):
            pass  # headers
        connected.set()
        while size := int((await reader.readline()).strip() or b"0", 16):
            chunk = await reader.readexactly(size + 2)
            arrived = time.perf_counter()
            for line in chunk.split(b"\r\n"):
                if line.startswith(b"id: "):
                    clock.sse.setdefault((run_id, int(line[4:])), []).append(arrived)
                elif line == b"event: completed":
                    return
    finally:
        writer.close()


async def _poller(redis: aioredis.Redis, run_ids: list[str], clock: Clock,
                  last: dict[str, int], targets: dict[str, int], stop: asyncio.Event) -> None:
    """The replaced system's way: every 0.5 s, read each run's stream after the last id.
    Returns once it has read up to ``targets`` (filled in when writing ends)."""
    while not stop.is_set():
        if targets and all(last[r] >= v for r, v in targets.items()):
            return
        async with redis.pipeline(transaction=False) as pipe:
            for run_id in run_ids:
                pipe.xrange(stream_key(run_id), f"({last[run_id]}-0", "+")
            replies = await pipe.execute()
        arrived = time.perf_counter()
        for run_id, entries in zip(run_ids, replies, strict=True):
            for entry_id, _fields in entries:
                version = int(entry_id.split("-")[0])
                clock.polled.setdefault((run_id, version), arrived)
                last[run_id] = version
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), POLL_INTERVAL)


async def _relay_probe(redis: aioredis.Redis, run_ids: list[str], clock: Clock,
                       stop: asyncio.Event) -> None:
    """When entries appear in Redis: the relay's share of the latency, before the API's."""
    last: dict[KeyT, StreamIdT] = {stream_key(run_id): "2-0" for run_id in run_ids}
    while not stop.is_set():
        reply = await redis.xread(last, block=200)
        arrived = time.perf_counter()
        for stream, entries in reply or ():
            for entry_id, _fields in entries:
                clock.relayed[(stream.split(":", 1)[1], int(entry_id.split("-")[0]))] = arrived
                last[stream] = entry_id


# -- one rate --------------------------------------------------------------------------------

async def measure(database_url: str, redis: aioredis.Redis, port: int, key: str, rate: int,
                  seconds: float, clients: int) -> list[Figure]:
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    writer = context.Process(target=_writer_process, name="bench-tail-writer",
                             args=(database_url, clients, rate, seconds, theirs))
    writer.start()
    theirs.close()  # the writer holds the only other end: its death is an EOFError here
    clock = Clock()
    stop = asyncio.Event()
    try:
        run_ids: list[str] = await asyncio.to_thread(ours.recv)
        connected = [asyncio.Event() for _ in run_ids]
        tails = [asyncio.create_task(_sse_client(port, key, run_id, clock, ready),
                                     name=f"sse-client-{run_id}")
                 for run_id, ready in zip(run_ids, connected, strict=True)]
        await asyncio.wait_for(asyncio.gather(*(ready.wait() for ready in connected)), 60)
        last = dict.fromkeys(run_ids, 2)
        targets: dict[str, int] = {}
        poller = asyncio.create_task(_poller(redis, run_ids, clock, last, targets, stop))
        probe = asyncio.create_task(_relay_probe(redis, run_ids, clock, stop))
        ours.send("go")
        achieved, clock.committed, final = await asyncio.to_thread(ours.recv)
        await asyncio.wait_for(asyncio.gather(*tails), 60)
        targets.update(final)
        await asyncio.wait_for(asyncio.shield(poller), 30)
        stop.set()
        await probe
    finally:
        stop.set()
        writer.join(30)
    _check_exactly_once(clock, final)
    return _figures(rate, achieved, clock)


def _check_exactly_once(clock: Clock, final: dict[str, int]) -> None:
    expected = {(run_id, v) for run_id, top in final.items()
                for v in range(FIRST_MEASURED, top + 1)}
    seen = set(clock.sse)
    duplicated = [key for key, times in clock.sse.items() if len(times) != 1]
    if seen != expected or duplicated:
        raise RuntimeError(f"SSE delivery broken: {len(expected - seen)} missing, "
                           f"{len(seen - expected)} unexpected, {len(duplicated)} duplicated")


def _figures(rate: int, achieved: float, clock: Clock) -> list[Figure]:
    sse = clock.latencies({key: times[0] for key, times in clock.sse.items()})
    polled = clock.latencies(clock.polled)
    relayed = clock.latencies(clock.relayed)
    label = f"tail @ {rate} events/s ({achieved:,.0f} achieved)"
    return [
        *(Figure(f"{label}: commit → SSE client p{q}", percentile(sse, q), "ms",
                 POLLING, percentile(polled, q)) for q in (50, 99)),
        *(Figure(f"{label}: commit → Redis entry p{q} (the relay's share)",
                 percentile(relayed, q), "ms") for q in (50, 99)),
    ]


# -- set-up ----------------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.asynccontextmanager
async def _process(*args: str, env: dict[str, str]) -> AsyncIterator[None]:
    """``runledger <args>`` as a child process, stopped with SIGTERM on exit."""
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "runledger.cli", *args, env={**os.environ, **env},
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        yield
    finally:
        if child.returncode is None:
            child.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(child.wait(), 20)
            except TimeoutError:
                child.kill()
                await child.wait()


async def _until_healthy(port: int, within: float = 60.0) -> None:
    async def healthy() -> bool:
        with contextlib.suppress(OSError):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /health HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
            status = await reader.readline()
            writer.close()
            return b" 200 " in status
        return False

    await wait_until(healthy, within=within, interval=0.1, what="the runledger api to be healthy")


async def run(database_url: str, redis_url: str, rates: list[int], seconds: float,
              clients: int) -> list[Figure]:
    key = secrets.token_urlsafe(16)
    port = _free_port()
    env = {"DATABASE_URL": database_url, "REDIS_URL": redis_url, "LOG_LEVEL": "WARNING"}
    api_env = {**env, "PORT": str(port), "API_KEYS": key}
    redis = aioredis.Redis.from_url(redis_url, decode_responses=True)
    figures: list[Figure] = []
    try:
        async with _process("projector", env=env), _process("api", env=api_env):
            await _until_healthy(port)
            for rate in rates:
                figures += await measure(database_url, redis, port, key, rate, seconds,
                                         clients)
    finally:
        await redis.aclose()
    return figures


async def main(rates: list[int], seconds: float, clients: int, json_out: Path | None) -> None:
    with servers(os.environ.get("DATABASE_URL"), os.environ.get("REDIS_URL")) as (pg, redis):
        async with fresh_database(pg) as url:
            figures = await run(url, redis, rates, seconds, clients)
    report(f"bench tail — {clients} SSE clients (one run each) and {clients} pollers on the "
           f"same events, {seconds:.0f} s per rate", figures, json_out)


__all__ = ["main"]
