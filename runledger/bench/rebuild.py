"""``runledger bench rebuild``: how fast the ``runs`` model is rebuilt from the log.

The log: N runs (default 10,000) of ``queued, started, step x S, completed`` (default S = 17:
20 events a run, 200,000 events), written through ``PgEventStore.append`` with the runs
interleaved in windows of 100, as concurrent runs interleave in production.

Contenders, same database, same log:

* runledger — ``projections.rebuild`` of the ``runs`` model, end to end (copy tables,
  replay in batches folded in Python into one INSERT + one UPDATE per batch, build indexes,
  swap); median of ``rounds`` rebuilds. Also ``runs`` + ``run_steps`` together, for scale.
* eventsourcing — the library's ``ProjectionRunner`` (9.5 ``eventsourcing.projection``):
  its ``Application`` reads our ``stored_events`` with our transcoder; a ``Projection``
  maintains ``es_runs`` (same columns, same mapping) through a ``PostgresTrackingRecorder``
  view, one transaction per event with its tracking record (the library's exactly-once).
  Afterwards its table is compared with ours, row by row, so both did the same work.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
from eventsourcing.application import Application
from eventsourcing.dispatch import singledispatchmethod
from eventsourcing.persistence import Tracking
from eventsourcing.postgres import PostgresTrackingRecorder
from eventsourcing.projection import Projection
from psycopg.sql import SQL, Composed

from ledger.codec import OrjsonTranscoder
from ledger.db import create_pool
from ledger.domain import Run, StepResult
from ledger.store import PgEventStore
from projections import runs as runs_model
from projections import steps as steps_model
from projections.rebuild import rebuild
from projections.run_row import COLUMNS
from runledger.bench.harness import Figure, fresh_database, median, report, servers

WINDOW = 100  # runs in flight at once while the log is written
APPEND_EVENTS = 1000  # events per append while writing the log
BATCH_SIZE = 5000
BROWSER = {"name": "chromium", "version": "bench"}

# The runs row's columns (one definition: projections.run_row), compared in both tables after
# the run: rows in one table and not in the other, either way.
_COLUMNS = ", ".join(COLUMNS)
COMPARE = f"""
SELECT count(*) FROM (
    (SELECT {_COLUMNS} FROM runs EXCEPT SELECT {_COLUMNS} FROM es_runs)
    UNION ALL
    (SELECT {_COLUMNS} FROM es_runs EXCEPT SELECT {_COLUMNS} FROM runs)
) AS differences
"""


def lifecycle(steps: int) -> Sequence[Any]:
    run = Run.queue(test_id=f"bench-{steps}", test_name="bench", url="http://127.0.0.1/",
                    steps=[{"action": "click", "instruction": "Click 'Go'"}])
    run.start(worker="bench", browser=BROWSER)
    for index in range(steps):
        run.record_step(StepResult(
            index=index, action="click", instruction="Click 'Go'",
            status="passed" if index % 7 else "failed", strategy="dom",
            duration_ms=12, url="http://127.0.0.1/", details={"locator": "#go"}))
    run.complete(status="passed", duration_ms=40)
    return run.collect_events()


async def write_log(pool: asyncpg.Pool, runs: int, steps: int) -> int:
    """Append the benchmark's log; returns the number of events."""
    store = PgEventStore(pool)
    total = 0
    for first in range(0, runs, WINDOW):
        window = [lifecycle(steps) for _ in range(min(WINDOW, runs - first))]
        interleaved = [run[i] for i in range(steps + 3) for run in window]
        for i in range(0, len(interleaved), APPEND_EVENTS):
            total += len(await store.append(interleaved[i:i + APPEND_EVENTS]))
    return total


async def measure(url: str, runs: int, steps: int, rounds: int, peer_events: int | None
                  ) -> list[Figure]:
    pool = await create_pool(url, min_size=1, max_size=2)
    try:
        began = time.perf_counter()
        events = await write_log(pool, runs, steps)
        print(f"log: {events:,} events of {runs:,} runs written in "
              f"{time.perf_counter() - began:.1f}s")
        rates = []
        for _ in range(rounds):
            result = await rebuild(url, [runs_model.MODEL], batch_size=BATCH_SIZE)
            rates.append(result.rate)
        both = await rebuild(url, [runs_model.MODEL, steps_model.MODEL], batch_size=BATCH_SIZE)
        target = min(peer_events or events, events)
        position = await pool.fetchval(
            "SELECT notification_id FROM stored_events ORDER BY notification_id "
            "OFFSET $1 LIMIT 1", target - 1)
        peer_rate = target / await asyncio.to_thread(run_peer, url, position)
        if target == events:
            differences = await pool.fetchval(COMPARE)
            if differences:
                raise RuntimeError(f"the peer's es_runs differs from runs in {differences} rows")
    finally:
        await pool.close()
    ours = median(rates)
    return [
        Figure(f"rebuild runs: {events:,} events", ours, "events/s",
               "eventsourcing ProjectionRunner", peer_rate),
        Figure("rebuild runs: target", ours, "events/s", "target", 50_000),
        Figure("rebuild runs + run_steps", both.rate, "events/s"),
    ]


# -- the peer: eventsourcing's ProjectionRunner ------------------------------------------------

PEER_TABLE = """
CREATE TABLE IF NOT EXISTS es_runs (
    id uuid PRIMARY KEY, test_id text NOT NULL, test_name text NOT NULL, status text NOT NULL,
    attempt integer NOT NULL, created_at timestamptz NOT NULL, started_at timestamptz,
    completed_at timestamptz, duration_ms integer, steps_passed integer NOT NULL DEFAULT 0,
    steps_failed integer NOT NULL DEFAULT 0, error text, error_step integer, worker text,
    last_event_at timestamptz NOT NULL, version integer NOT NULL)
"""


def run_peer(url: str, position: int) -> float:
    """Run the library's ProjectionRunner over the log up to ``position``; returns the
    seconds it took (from constructing the runner, as ours counts its set-up too)."""
    from eventsourcing.projection import ProjectionRunner

    application_class, projection_class, view_class = _peer_classes()
    parts = urlsplit(url)
    env = {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": parts.path.lstrip("/"), "POSTGRES_HOST": parts.hostname or "",
        "POSTGRES_PORT": str(parts.port or 5432), "POSTGRES_USER": parts.username or "",
        "POSTGRES_PASSWORD": parts.password or "",
        # Our log: only read it, never create the library's tables or functions in it.
        "STORED_CREATE_TABLE": "no",
    }
    began = time.perf_counter()
    with ProjectionRunner(application_class=application_class,
                          projection_class=projection_class, view_class=view_class,
                          env=env) as runner:
        while True:
            runner.wait(position, timeout=600)
            done = runner.view.max_tracking_id(runner.app_name) or 0
            if done >= position:
                break
        return time.perf_counter() - began


def _peer_classes() -> tuple[type[Any], type[Any], type[Any]]:
    # singledispatch resolves the annotations below from this module's globals.
    class Stored(Application[Any]):
        """Reads ``stored_events`` (the library names the table after the application)."""

        def construct_transcoder(self) -> Any:
            return OrjsonTranscoder()

    class RunsView(PostgresTrackingRecorder):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.sql_create_statements.append(Composed([SQL(PEER_TABLE)]))

        def write(self, tracking: Tracking, sql: str, params: Sequence[Any]) -> None:
            with self.datastore.transaction(commit=True) as curs:
                self._insert_tracking(curs, tracking)
                curs.execute(sql, params, prepare=True)

    class RunsProjection(Projection[RunsView]):
        name = "es_runs_projection"

        @singledispatchmethod
        def process_event(self, event: Any, tracking: Tracking) -> None:
            self.view.insert_tracking(tracking)

        @process_event.register
        def queued(self, e: Run.Queued, tracking: Tracking) -> None:
            self.view.write(tracking, (
                "INSERT INTO es_runs (id, test_id, test_name, status, attempt, created_at, "
                "last_event_at, version) VALUES (%s, %s, %s, 'queued', %s, %s, %s, %s)"),
                (e.originator_id, e.test_id, e.test_name, e.attempt, e.timestamp, e.timestamp,
                 e.originator_version))

        @process_event.register
        def started(self, e: Run.Started, tracking: Tracking) -> None:
            self.view.write(tracking, (
                "UPDATE es_runs SET status = 'running', worker = %s, attempt = %s, "
                "started_at = %s, last_event_at = %s, version = %s WHERE id = %s"),
                (e.worker, e.attempt, e.timestamp, e.timestamp, e.originator_version,
                 e.originator_id))

        @process_event.register
        def step(self, e: Run.StepRecorded, tracking: Tracking) -> None:
            passed = int(e.status == "passed")
            self.view.write(tracking, (
                "UPDATE es_runs SET status = 'running', steps_passed = steps_passed + %s, "
                "steps_failed = steps_failed + %s, last_event_at = %s, version = %s "
                "WHERE id = %s"),
                (passed, 1 - passed, e.timestamp, e.originator_version, e.originator_id))

        @process_event.register
        def completed(self, e: Run.Completed, tracking: Tracking) -> None:
            self.view.write(tracking, (
                "UPDATE es_runs SET status = %s, completed_at = %s, duration_ms = %s, "
                "error = %s, error_step = %s, last_event_at = %s, version = %s WHERE id = %s"),
                (e.status, e.timestamp, e.duration_ms, e.error, e.error_step, e.timestamp,
                 e.originator_version, e.originator_id))

    return Stored, RunsProjection, RunsView


async def main(runs: int, steps: int, rounds: int, peer_events: int | None,
               json_out: Path | None) -> None:
    with servers(os.environ.get("DATABASE_URL"), os.environ.get("REDIS_URL")) as (pg, _redis):
        async with fresh_database(pg) as url:
            figures = await measure(url, runs, steps, rounds, peer_events)
    report(f"bench rebuild — {runs:,} runs x {steps + 3} events, median of {rounds} rebuilds",
           figures, json_out)
