"""The projector as users run it: ``run_projector`` in a task, and ``runledger projector`` /
``runledger rebuild`` as real processes (signals, kill -9 failover, exit codes)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import sys
import uuid
from collections.abc import AsyncIterator, Sequence

import asyncpg
import pytest
import redis.asyncio as aioredis

from ledger.aio import Backoff, supervise
from ledger.codec import RecordedEvent
from ledger.settings import load_settings
from ledger.store import LogListener, PgEventStore
from ledger.streams import stream_key
from projections import runs
from projections.errors import FollowerError
from projections.follower import Follower, FollowerRunner
from projections.service import ProjectorSettings, build_followers, keep_running, run_projector
from runledger.testing import wait_for_position, wait_until

from .conftest import append_raw, caught_up, running, write_runs

pytestmark = pytest.mark.integration

FOLLOWERS = ("runs", "run_steps", "relay")
#: how many followers a projector process runs (``build_followers`` does no I/O)
EVERY_FOLLOWER = len(build_followers(load_settings(
    ProjectorSettings, database_url="postgresql://localhost/x", redis_url="redis://localhost"),
    None, None))  # type: ignore[arg-type]


async def all_caught_up(pool: asyncpg.Pool) -> bool:
    return all([await caught_up(pool, name) for name in FOLLOWERS])


async def test_run_projector_runs_every_follower_and_stops_on_request(
    pool: asyncpg.Pool, database_url: str, redis_url: str, redis: aioredis.Redis,
    store: PgEventStore,
) -> None:
    settings = load_settings(ProjectorSettings, database_url=database_url, redis_url=redis_url,
                             projector_poll_interval_seconds=0.2)
    stop = asyncio.Event()
    task = asyncio.create_task(run_projector(settings, stop), name="test-projector")
    try:
        written = await write_runs(store, 8, seed=3)
        await wait_until(lambda: all_caught_up(pool), what="all followers")
    finally:
        stop.set()
        await asyncio.wait_for(task, 15)
    assert await pool.fetchval("SELECT count(*) FROM runs") == 8
    for run in written:
        assert await redis.xlen(stream_key(run.id)) == run.version
    # Every lease was released on the way out: a standby would take over at once.
    assert await pool.fetchval("SELECT count(*) FROM follower_leases") == 0


async def test_a_follower_that_dies_is_restarted_alone_and_the_others_carry_on(
    pool: asyncpg.Pool, database_url: str, store: PgEventStore
) -> None:
    await write_runs(store, 3, seed=1)
    deaths = 0
    died_twice = asyncio.Event()

    async def apply(conn: asyncpg.Connection, events: Sequence[RecordedEvent]) -> None:
        pass

    async def maintain() -> None:
        # Not an event's fault, so nothing to park: the runner itself dies, twice.
        nonlocal deaths
        if deaths < 2:
            deaths += 1
            if deaths == 2:
                died_twice.set()
            raise FollowerError("broken", -1, "upkeep failed")

    listener = LogListener(database_url, poll_interval=0.2)
    await listener.start()
    halt = asyncio.Event()
    stop = asyncio.Event()
    runners = [
        FollowerRunner(f, dsn=database_url, listener=listener, stop=halt)
        for f in (runs.MODEL.follower(), Follower("broken", apply, maintain=maintain))
    ]
    restart = Backoff(base_seconds=0.01, max_seconds=0.05)
    supervisor = asyncio.create_task(supervise(
        ((r.name, keep_running(r, halt, restart)) for r in runners), stop=stop, halt=halt))
    try:
        await wait_for_position(pool, "runs")
        # maintain() runs after a batch or an idle wake-up: the second death may come a
        # poll later than the catch-up.
        await asyncio.wait_for(died_twice.wait(), 15)
        await write_runs(store, 2, seed=2)
        await wait_for_position(pool, "runs")
        await wait_for_position(pool, "broken")  # restarted after both deaths, caught up
        assert deaths == 2 and not supervisor.done()
    finally:
        stop.set()
        await asyncio.wait_for(supervisor, 15)
        await listener.close()
    assert halt.is_set() and not any(r.active for r in runners)


class Projector:
    """``runledger projector`` as a child process, its log lines collected as they come."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.lines: list[str] = []
        self._changed = asyncio.Condition()
        self._reader = asyncio.create_task(self._read(), name="test-projector-log")

    async def _read(self) -> None:
        assert self.process.stderr is not None
        async for raw in self.process.stderr:
            async with self._changed:
                self.lines.append(raw.decode(errors="replace").rstrip())
                self._changed.notify_all()

    async def wait_for_lines(self, pattern: str, count: int = 1, within: float = 30) -> None:
        regex = re.compile(pattern)

        def enough() -> bool:
            return sum(bool(regex.search(line)) for line in self.lines) >= count

        async with self._changed:
            try:
                await asyncio.wait_for(self._changed.wait_for(enough), within)
            except TimeoutError:
                log = "\n".join(self.lines[-30:])
                raise AssertionError(f"no {count}x {pattern!r} in the log:\n{log}") from None

    async def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.process.returncode is None:
            self.process.send_signal(sig)
        code = await asyncio.wait_for(self.process.wait(), 30)
        await self._reader
        return code


def cli_env(**values: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("DATABASE_URL", "REDIS_URL", "LOG_LEVEL")}
    return {**env, "LOG_LEVEL": "INFO", **values}


@contextlib.asynccontextmanager
async def projector(database_url: str, redis_url: str, tmp_path: object) -> AsyncIterator[
        Projector]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "runledger.cli", "projector",
        env=cli_env(DATABASE_URL=database_url, REDIS_URL=redis_url,
                    PROJECTOR_POLL_INTERVAL_SECONDS="0.2",
                    FOLLOWER_STANDBY_RETRY_SECONDS="0.2"),
        cwd=str(tmp_path), stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )
    child = Projector(process)
    try:
        yield child
    finally:
        if process.returncode is None:
            process.kill()
        await process.wait()
        await child._reader


async def test_sigterm_stops_the_projector_cleanly(
    pool: asyncpg.Pool, database_url: str, redis_url: str, store: PgEventStore, tmp_path: object
) -> None:
    async with projector(database_url, redis_url, tmp_path) as child:
        await child.wait_for_lines(r"follower \S+: following from position", 3)
        await write_runs(store, 4, seed=2)
        await wait_until(lambda: all_caught_up(pool), what="projected")
        assert await child.stop(signal.SIGTERM) == 0
        assert any("projector: stopped" in line for line in child.lines)


async def test_standby_process_takes_over_after_kill_9(
    pool: asyncpg.Pool, database_url: str, redis_url: str, store: PgEventStore, tmp_path: object
) -> None:
    async with projector(database_url, redis_url, tmp_path) as first:
        # Every follower's lease, not just the three checked below: one still free would be
        # taken by the second process, which must stand by for all of them.
        await first.wait_for_lines(r"follower \S+: active \(lease acquired", EVERY_FOLLOWER)
        async with projector(database_url, redis_url, tmp_path) as second:
            await takeover(first, second, pool, store)


async def takeover(first: Projector, second: Projector, pool: asyncpg.Pool,
                   store: PgEventStore) -> None:
    await second.wait_for_lines(r"follower \S+: standing by", EVERY_FOLLOWER)
    await write_runs(store, 3, seed=1)
    await wait_until(lambda: all_caught_up(pool), what="first projects")
    assert not any("active (lease acquired" in line for line in second.lines)

    first.process.kill()  # SIGKILL: no cleanup, its connections just drop
    assert await first.stop() == -signal.SIGKILL
    await second.wait_for_lines(r"follower \S+: active \(lease acquired", 3)
    await write_runs(store, 3, seed=2)
    await wait_until(lambda: all_caught_up(pool), what="second projects")
    assert await pool.fetchval("SELECT count(*) FROM runs") == 6
    assert await second.stop(signal.SIGINT) == 0


async def test_the_projector_process_parks_poison_and_keeps_going(
    pool: asyncpg.Pool, database_url: str, redis_url: str, redis: aioredis.Redis,
    store: PgEventStore, tmp_path: object,
) -> None:
    async with projector(database_url, redis_url, tmp_path) as child:
        bad = await append_raw(pool, uuid.uuid4(), 1, "queued", b"\xff not json")
        written = await write_runs(store, 3, seed=7)
        await wait_until(lambda: all_caught_up(pool), what="all followers past the poison")
        await child.wait_for_lines(
            rf"ERROR .*follower runs: parked the queued event at position {bad} of run_id")
        assert child.process.returncode is None
        for run in written:
            assert await redis.xlen(stream_key(run.id)) == run.version
        assert await pool.fetchval("SELECT count(*) FROM runs") == 3
        assert await child.stop() == 0


async def test_cli_refuses_bad_configuration_naming_the_variable(tmp_path: object) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "runledger.cli", "projector", env=cli_env(),
        cwd=str(tmp_path), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    _, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 2
    assert b"DATABASE_URL is required" in err and b"REDIS_URL is required" in err


async def test_cli_rebuild_reports_what_it_did(
    pool: asyncpg.Pool, database_url: str, store: PgEventStore, tmp_path: object
) -> None:
    await write_runs(store, 5, seed=4)
    async with running(runs.MODEL.follower(), pool, database_url):
        await wait_for_position(pool, "runs")
    before = await pool.fetch("SELECT * FROM runs ORDER BY id")
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "runledger.cli", "rebuild", "runs", "--batch-size", "7",
        env=cli_env(DATABASE_URL=database_url), cwd=str(tmp_path),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()
    head = await store.head_id()
    assert re.search(rf"rebuilt runs: {head} events up to position {head} in", out.decode())
    assert await pool.fetch("SELECT * FROM runs ORDER BY id") == before

    bad = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "runledger.cli", "rebuild", "tests",
        env=cli_env(DATABASE_URL=database_url), cwd=str(tmp_path),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    _, err = await asyncio.wait_for(bad.communicate(), 30)
    assert bad.returncode == 2 and b"unknown target 'tests'" in err
