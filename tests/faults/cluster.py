"""A runledger deployment as real processes, for the fault suite and ``bench load``'s tests.

* ``RedisServer`` (shared with ``bench load``): a Redis/Valkey server of the test's own on a
  fixed port, so it can be killed and started again *without its data* (no snapshots, no
  AOF) — what a restart of a cache-configured Redis does. The binary: ``FAULTS_REDIS_SERVER``
  (e.g. Debian's ``redis-server`` 7), else the embedded Valkey's.
* ``Cluster``: worker (scripted executor), projector and API processes against one database
  and one Redis, each logging to a file; kill -9, SIGSTOP/SIGCONT and restarts by pid.
* ``SseClient``: tails one run over ``/runs/{id}/stream`` the way a browser's EventSource
  does (reconnecting with ``Last-Event-ID``) and records every event id it received.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx

from ledger.domain import Run
from ledger.store import PgEventStore
from runledger.bench.load import free_port
from runledger.testing import wait_until
from tests.worker.scripted import steps

ROOT = Path(__file__).resolve().parents[2]
TERMINAL = ("completed", "errored", "timed-out", "cancelled")
UNAVAILABLE = (502, 503, 504)

#: fast settings: a lost worker's run is ended within seconds, followers fail over quickly
WORKER_ENV = {
    "CLAIM_IDLE_SECONDS": "1", "RECOVERY_CHECK_INTERVAL_SECONDS": "0.2",
    "STUCK_RUN_TIMEOUT_MINUTES": "0.05", "RUN_TIMEOUT_SECONDS": "1",
    "RUN_FINISH_GRACE_SECONDS": "0.5", "STEP_TIMEOUT_SECONDS": "1",
    "WORKER_BLOCK_SECONDS": "0.5", "WORKER_CONCURRENCY": "4",
}
PROJECTOR_ENV = {
    "PROJECTOR_POLL_INTERVAL_SECONDS": "0.2", "FOLLOWER_STANDBY_RETRY_SECONDS": "0.2",
    "FOLLOWER_LEASE_SECONDS": "1.5", "QUEUED_RUN_REPAIR_SECONDS": "2",
    "RELAY_TRIM_INTERVAL_SECONDS": "1",
}


@dataclass(eq=False)
class Proc:
    """One child process of the cluster; its output goes to ``log``."""

    kind: str
    name: str
    process: asyncio.subprocess.Process
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def alive(self) -> bool:
        return self.process.returncode is None

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def count(self, needle: str) -> int:
        return self.text().count(needle)

    async def logged(self, needle: str, count: int = 1, within: float = 30.0) -> None:
        async def found() -> bool:
            if not self.alive and self.count(needle) < count:
                raise AssertionError(f"{self.name} exited ({self.process.returncode}) before "
                                     f"logging {needle!r}:\n{self.text()[-3000:]}")
            return self.count(needle) >= count

        await wait_until(found, within=within, what=f"{self.name} to log {needle!r}")

    def signal(self, sig: int) -> None:
        if self.alive:
            os.kill(self.pid, sig)

    async def kill(self) -> None:
        """kill -9: no clean-up at all."""
        self.signal(signal.SIGKILL)
        await self.process.wait()

    async def stop(self, within: float = 30.0) -> int:
        self.signal(signal.SIGCONT)  # a stopped process cannot handle SIGTERM
        self.signal(signal.SIGTERM)
        try:
            return await asyncio.wait_for(self.process.wait(), within)
        except TimeoutError:
            await self.kill()
            raise AssertionError(f"{self.name} ignored SIGTERM:\n{self.text()[-3000:]}"
                                 ) from None


@dataclass(eq=False)
class Cluster:
    """Processes of one deployment; ``close()`` kills whatever is still running."""

    database_url: str
    redis_url: str
    folder: Path
    env: dict[str, str] = field(default_factory=dict)
    procs: list[Proc] = field(default_factory=list)
    api_key: str = field(default_factory=lambda: uuid.uuid4().hex + uuid.uuid4().hex)
    api_port: int | None = None
    spawned: int = 0

    def _environment(self, extra: dict[str, Any]) -> dict[str, str]:
        inherited = {k: v for k, v in os.environ.items()
                     if k not in ("DATABASE_URL", "REDIS_URL", "LOG_LEVEL")}
        return {**inherited, "DATABASE_URL": self.database_url, "REDIS_URL": self.redis_url,
                "LOG_LEVEL": "INFO", **WORKER_ENV, **PROJECTOR_ENV, **self.env,
                **{k.upper(): str(v) for k, v in extra.items()}}

    async def spawn(self, kind: str, argv: Sequence[str], **env: Any) -> Proc:
        # Named before the first await: processes started side by side get distinct logs.
        self.spawned += 1
        name = f"{kind}-{self.spawned}"
        log = self.folder / f"{name}.log"
        self.folder.mkdir(parents=True, exist_ok=True)
        with log.open("wb") as out:
            process = await asyncio.create_subprocess_exec(
                sys.executable, *argv, cwd=ROOT, env=self._environment(env),
                stdout=out, stderr=asyncio.subprocess.STDOUT)
        proc = Proc(kind, name, process, log)
        self.procs.append(proc)
        return proc

    async def worker(self, *, ready: bool = True, **env: Any) -> Proc:
        """A worker process with the scripted executor (its consumer name is unique)."""
        name = f"fault-worker-{uuid.uuid4().hex[:8]}"
        proc = await self.spawn("worker", ["-m", "tests.worker.scripted_worker"],
                                redis_consumer_name=name, **env)
        if ready:
            await proc.logged("Stuck-run recovery every")
        return proc

    async def projector(self, **env: Any) -> Proc:
        return await self.spawn("projector", ["-m", "runledger.cli", "projector"], **env)

    async def api(self) -> Proc:
        self.api_port = free_port()
        proc = await self.spawn("api", ["-m", "runledger.cli", "api"], port=self.api_port,
                                api_keys=self.api_key, log_level="WARNING")

        async def healthy() -> bool:
            if not proc.alive:
                raise AssertionError(f"the API exited:\n{proc.text()[-3000:]}")
            with contextlib.suppress(httpx.HTTPError):
                async with httpx.AsyncClient() as client:
                    answer = await client.get(f"http://127.0.0.1:{self.api_port}/health")
                    return answer.status_code == 200
            return False

        await wait_until(healthy, within=60, interval=0.1, what="the API to be healthy")
        return proc

    def alive(self, kind: str) -> list[Proc]:
        return [p for p in self.procs if p.kind == kind and p.alive]

    async def close(self) -> None:
        for proc in self.procs:
            if proc.alive:
                proc.signal(signal.SIGCONT)
                await proc.kill()


async def submit(store: PgEventStore, count: int, *cues: str) -> list[UUID]:
    """``count`` queued runs whose steps are scripted cues, appended as the API does."""
    ids = []
    for _ in range(count):
        run = Run.queue(test_id=f"fault-{uuid.uuid4().hex[:6]}", test_name="fault",
                        url="http://127.0.0.1:9/", steps=steps(*(cues or ("pass",))))
        await store.save(run)
        ids.append(run.id)
    return ids


@dataclass(eq=False)
class SseClient:
    """Tails one run to its terminal event like an EventSource; ``ids`` is every event id
    received, in arrival order, across reconnections."""

    run_id: UUID
    base_url: str
    key: str
    ids: list[int] = field(default_factory=list)
    types: list[str] = field(default_factory=list)
    reconnects: int = 0
    #: answers 502/503/504 while a fault lasted
    refused: int = 0
    ended: bool = False

    async def run(self, http: httpx.AsyncClient) -> None:
        while not self.ended:
            headers = {"Authorization": f"Bearer {self.key}", "Accept": "text/event-stream"}
            if self.ids:
                headers["Last-Event-ID"] = str(self.ids[-1])
            try:
                async with http.stream("GET", f"{self.base_url}/runs/{self.run_id}/stream",
                                       headers=headers, timeout=httpx.Timeout(60, read=60)
                                       ) as answer:
                    if answer.status_code in UNAVAILABLE:
                        # The API could not reach PostgreSQL or Redis for the history: it
                        # says so (with Retry-After) and the client comes back.
                        self.refused += 1
                    elif answer.status_code != 200:
                        raise AssertionError(f"stream of {self.run_id}: {answer.status_code}")
                    else:
                        await self._read(answer)
            except (httpx.TransportError, httpx.RemoteProtocolError):
                pass
            if not self.ended:
                self.reconnects += 1
                await asyncio.sleep(0.2)  # EventSource's reconnection delay, shortened

    async def _read(self, answer: httpx.Response) -> None:
        event_id: int | None = None
        event_type = "message"
        async for line in answer.aiter_lines():
            if line.startswith("id:"):
                event_id = int(line[3:].strip())
            elif line.startswith("event:"):
                event_type = line[6:].strip()
            elif line == "" and event_id is not None:
                self.ids.append(event_id)
                self.types.append(event_type)
                if event_type in TERMINAL:
                    self.ended = True
                    return
                event_id, event_type = None, "message"


@contextlib.asynccontextmanager
async def tailing(cluster: Cluster, run_ids: Sequence[UUID]) -> Any:
    """SSE clients on ``run_ids`` for the block; yields them (their tasks end with the runs)."""
    assert cluster.api_port is not None, "start the API first"
    clients = [SseClient(r, f"http://127.0.0.1:{cluster.api_port}", cluster.api_key)
               for r in run_ids]
    limits = httpx.Limits(max_connections=len(clients) + 10)
    async with httpx.AsyncClient(limits=limits) as http:
        tasks = [asyncio.create_task(c.run(http), name=f"sse-{c.run_id}") for c in clients]
        try:
            yield clients
            await asyncio.wait_for(asyncio.gather(*tasks), 60)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
