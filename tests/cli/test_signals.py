"""Signals as operators send them, to real processes with a real Chromium run in flight.

A terminal's Ctrl-C is a SIGINT to its whole foreground process group, and ``uv run``
forwards its own copy to its child; ``kill -TERM -PGID`` (or a supervisor) signals every
process of the group. Each test starts ``runledger worker`` or ``runledger dev`` in a
session of its own (standing in for the terminal), holds the run's page load on a local
server (so the run is certainly in flight), signals the group, releases the page, and
expects the run to pass and the process to exit 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from ledger.domain import Run
from ledger.store import PgEventStore
from runledger.testing import serve_http, wait_until
from tests.api.helpers import SseReader
from tests.cli.test_cli import free_port
from tests.worker.conftest import enqueue

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

ROOT = Path(__file__).resolve().parents[2]
PAGE = b"<!doctype html><title>held</title><h1>Welcome, operator</h1>"
STEPS = [{"action": "verify", "instruction": "The greeting shows",
          "expected": "Welcome, operator"}]


class Gate:
    """A page whose load waits until the test opens the gate: the run is in flight."""

    def __init__(self) -> None:
        self.arrived = threading.Event()
        self.opened = threading.Event()

    def handler(self) -> type[BaseHTTPRequestHandler]:
        gate = self

        class Held(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                gate.arrived.set()
                gate.opened.wait(60)
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(PAGE)))
                self.end_headers()
                self.wfile.write(PAGE)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Held


@pytest.fixture
def gate() -> Iterator[tuple[Gate, str]]:
    held = Gate()
    with serve_http(held.handler(), name="held-site") as url:
        try:
            yield held, url
        finally:
            held.opened.set()  # never leave a handler thread waiting


class Process:
    def __init__(self, proc: asyncio.subprocess.Process, log: Path) -> None:
        self.proc = proc
        self.log = log

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    async def logged(self, needle: str, within: float = 60.0) -> None:
        async def check() -> bool:
            if self.proc.returncode is not None:
                raise AssertionError(f"exited {self.proc.returncode}; log:\n{self.text()}")
            return needle in self.text()

        await wait_until(check, within=within, what=f"the log to say {needle!r}")

    async def exit_code(self, within: float = 60.0) -> int:
        try:
            return await asyncio.wait_for(self.proc.wait(), within)
        except TimeoutError:
            raise AssertionError(f"still running after {within}s; log:\n{self.text()}") from None


def _as_in_a_terminal() -> None:
    # A shell without job control starts background commands with SIGINT ignored, and an
    # ignored signal stays ignored across exec: restore the default a terminal gives.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.fixture
async def start(tmp_path: Path, database_url: str, redis_url: str
                ) -> AsyncIterator[Any]:
    started: list[Process] = []

    async def spawn(*command: str, **env: str) -> Process:
        log = tmp_path / f"{command[0]}-{len(started)}.log"
        environment = {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": redis_url,
                       "REDIS_CONSUMER_NAME": f"signals-{uuid.uuid4().hex[:6]}",
                       "LOG_LEVEL": "INFO", **env}
        environment.pop("API_KEYS", None)
        with log.open("wb") as out:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "runledger.cli", *command, cwd=ROOT, env=environment,
                stdout=out, stderr=asyncio.subprocess.STDOUT,
                start_new_session=True, preexec_fn=_as_in_a_terminal,
            )
        started.append(Process(proc, log))
        return started[-1]

    yield spawn
    for process in started:
        if process.proc.returncode is None:
            os.killpg(process.proc.pid, signal.SIGKILL)
            await process.proc.wait()


def send(process: Process, signum: int) -> None:
    """What an operator sends: the signal to the whole group, and (as ``uv run`` forwards
    its copy) once more to the process itself, at once."""
    os.killpg(process.proc.pid, signum)
    os.kill(process.proc.pid, signum)


async def run_status(pool: asyncpg.Pool, run_id: uuid.UUID) -> list[str]:
    return [e.type for e in await PgEventStore(pool).read_run(run_id)]


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["Ctrl-C", "SIGTERM"])
async def test_worker_finishes_the_run_in_flight_when_its_group_is_signalled(
    start: Any, gate: tuple[Gate, str], pool: asyncpg.Pool, redis_url: str, signum: int,
) -> None:
    import redis.asyncio as aioredis

    held, url = gate
    worker = await start("worker", WORKER_BLOCK_SECONDS="0.2")
    await worker.logged("Stuck-run recovery every")
    run = Run.queue(test_id="signals", test_name="signals", url=f"{url}/", steps=STEPS)
    await PgEventStore(pool).save(run)
    client = aioredis.from_url(redis_url, decode_responses=True)
    try:
        await enqueue(client, run.id)
    finally:
        await client.aclose()
    assert await asyncio.to_thread(held.arrived.wait, 60), worker.text()
    send(worker, signum)
    await worker.logged("draining 1 in-flight run")
    held.opened.set()
    assert await worker.exit_code() == 0, worker.text()
    assert await run_status(pool, run.id) == ["queued", "started", "step", "completed"]
    assert "stopping at once" not in worker.text()


async def dev_with_a_run_in_flight(start: Any, held: Gate, url: str, data_dir: Path
                                   ) -> tuple[Process, httpx.AsyncClient, uuid.UUID]:
    """``runledger dev`` holding one run mid page load; yields it with a client of its API
    (the caller closes the client)."""
    port = free_port()
    dev = await start("dev", "--port", str(port), "--data-dir", str(data_dir),
                      WORKER_BLOCK_SECONDS="0.2")
    http = httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30)

    # "Application startup complete" comes before uvicorn binds its socket: wait for an
    # answer instead.
    async def serving() -> bool:
        with contextlib.suppress(httpx.TransportError):
            return (await http.get("/health")).status_code in (200, 503)
        return False

    await wait_until(serving, within=60, what="runledger dev to answer")
    test = await http.post("/tests", json={"name": "signals", "url": f"{url}/",
                                           "definition": {"steps": STEPS}})
    assert test.status_code == 201, test.text
    queued = await http.post("/runs", json={"test_id": test.json()["id"]})
    assert queued.status_code == 202, queued.text
    assert await asyncio.to_thread(held.arrived.wait, 60), dev.text()
    return dev, http, uuid.UUID(queued.json()["run_id"])


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["Ctrl-C", "SIGTERM"])
async def test_dev_finishes_the_run_in_flight_when_its_group_is_signalled(
    start: Any, gate: tuple[Gate, str], pool: asyncpg.Pool, tmp_path: Path, signum: int,
) -> None:
    held, url = gate
    dev, http, run_id = await dev_with_a_run_in_flight(start, held, url, tmp_path / "dev")
    async with contextlib.aclosing(http), http.stream("GET", f"/runs/{run_id}/stream") as tail:
        events = SseReader(tail).events()
        assert [(await anext(events)).event for _ in range(2)] == ["queued", "started"]
        send(dev, signum)
        # The API stops at once: the open stream ends with a complete response (a cut one
        # raises httpx.RemoteProtocolError) while the run goes on.
        assert [event.event async for event in events] == []
    await dev.logged("draining 1 in-flight run")
    held.opened.set()
    assert await dev.exit_code() == 0, dev.text()
    assert await run_status(pool, run_id) == ["queued", "started", "step", "completed"]
    assert "stopping at once" not in dev.text()


async def test_dev_stopped_at_once_exits_128_plus_the_forcing_signal(
    start: Any, gate: tuple[Gate, str], tmp_path: Path,
) -> None:
    held, url = gate
    dev, http, _ = await dev_with_a_run_in_flight(start, held, url, tmp_path / "dev")
    await http.aclose()
    send(dev, signal.SIGINT)
    await dev.logged("draining 1 in-flight run")
    os.kill(dev.proc.pid, signal.SIGTERM)  # another signal: stop now
    assert await dev.exit_code() == 128 + signal.SIGTERM, dev.text()


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue  # exited meanwhile
            # After the command name in parentheses: state, ppid, ...
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _is_driver(pid: int) -> bool:
    return b"run-driver" in Path(f"/proc/{pid}/cmdline").read_bytes()


@pytest.mark.integration
async def test_the_browser_and_its_driver_are_out_of_the_callers_process_group() -> None:
    from worker.agent import ExecutorConfig
    from worker.agent.browser import ChromiumHost

    before = set(_children(os.getpid()))  # other tests' drivers may still be running
    host = ChromiumHost(ExecutorConfig())
    await host.open()
    try:
        [driver] = [pid for pid in _children(os.getpid())
                    if pid not in before and _is_driver(pid)]
        browsers = _children(driver)
        assert browsers, "the driver launched no browser"
        for pid in (driver, *browsers):
            assert os.getpgid(pid) != os.getpgrp()
        assert os.getsid(driver) != os.getsid(0)
    finally:
        await host.close()
