"""Runs keep arriving while faults happen.

``load(...)`` runs a ``Submitter`` for the block: it keeps ``in_flight`` runs unfinished
(submitting one as soon as one ends), so a fault always meets runs queued, started and
mid-step; with an API in the cluster, an SSE client tails every ``tail_every``-th run.
``progress`` waits for the log to grow by some events: faults strike at moments picked by
the load's progress (random counts of events), not by the clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from uuid import UUID

import asyncpg
import httpx

from ledger.errors import StoreError
from ledger.store import PgEventStore
from runledger.testing import wait_until
from tests.faults.cluster import Cluster, SseClient, submit
from tests.faults.invariants import unfinished

CUES = ("work 0.05", "pass", "work 0.05")
#: what a fault may make the test's own database calls raise
DATABASE_ERRORS = (StoreError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError)


@dataclass(eq=False)
class Submitter:
    store: PgEventStore
    pool: asyncpg.Pool
    cluster: Cluster
    http: httpx.AsyncClient
    in_flight: int = 12
    tail_every: int = 2
    run_ids: list[UUID] = field(default_factory=list)
    clients: list[SseClient] = field(default_factory=list)
    tails: list[asyncio.Task[None]] = field(default_factory=list)
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    #: appends of the test's own that a fault made fail (an API would answer 503)
    errors: int = 0
    #: held while one of the test's own appends is in flight (``paused``)
    submitting: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def run(self) -> None:
        while not self.stop.is_set():
            await wait_until(self._room, within=120, what="room for one more run in flight")
            if self.stop.is_set():
                return
            try:
                async with self.submitting:
                    [run_id] = await submit(self.store, 1, *CUES)
            except DATABASE_ERRORS:
                self.errors += 1
                continue
            self.run_ids.append(run_id)
            if self.cluster.api_port is not None and len(self.run_ids) % self.tail_every == 0:
                self._tail(run_id)

    @contextlib.asynccontextmanager
    async def paused(self) -> AsyncIterator[None]:
        """No append of the test's own in flight during the block: a server restart could
        otherwise lose the reply of one that committed, and the log would hold a run the
        test never learnt of. The runs already submitted meet the fault as they are."""
        async with self.submitting:
            yield

    def _tail(self, run_id: UUID) -> None:
        client = SseClient(run_id, f"http://127.0.0.1:{self.cluster.api_port}",
                           self.cluster.api_key)
        self.clients.append(client)
        self.tails.append(asyncio.create_task(client.run(self.http), name=f"sse-{run_id}"))

    async def _room(self) -> bool:
        if self.stop.is_set():
            return True
        try:
            recent = self.run_ids[-self.in_flight * 4:]
            return len(await unfinished(self.pool, recent)) < self.in_flight
        except DATABASE_ERRORS:
            return False


@contextlib.asynccontextmanager
async def load(store: PgEventStore, pool: asyncpg.Pool, cluster: Cluster,
               in_flight: int = 12) -> AsyncIterator[Submitter]:
    """Runs arrive during the block; at its end submitting stops and the SSE clients are
    awaited (each ends with its run's terminal event)."""
    async with httpx.AsyncClient(limits=httpx.Limits(max_connections=1000)) as http:
        submitter = Submitter(store, pool, cluster, http, in_flight=in_flight)
        task = asyncio.create_task(submitter.run(), name="fault-load")
        try:
            yield submitter
            submitter.stop.set()
            await task
            if submitter.tails:
                await asyncio.wait_for(asyncio.gather(*submitter.tails), 90)
        finally:
            submitter.stop.set()
            for pending in (task, *submitter.tails):
                pending.cancel()
            await asyncio.gather(task, *submitter.tails, return_exceptions=True)


async def progress(pool: asyncpg.Pool, events: int) -> None:
    """Wait until the log holds ``events`` more events than now."""
    start = await wait_until(lambda: _head(pool), what="the log head")

    async def past() -> bool:
        head = await _head(pool)
        return head is not None and head >= start + events

    await wait_until(past, within=60, what=f"{events} more events in the log")


async def _head(pool: asyncpg.Pool) -> int | None:
    """The log's head (at least 1 once anything was written), None when unreachable."""
    try:
        return int(await pool.fetchval(
            "SELECT coalesce(max(notification_id), 0) + 1 FROM stored_events"))
    except DATABASE_ERRORS:
        return None


def moment(rng: random.Random) -> int:
    """A random moment, counted in events of progress."""
    return rng.randint(1, 15)
