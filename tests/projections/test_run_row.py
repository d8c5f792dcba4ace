"""One fold: the ``runs`` row the real follower stores is exactly ``run_row.fold`` of the
run's events, for random valid lifecycles, interleavings and batch sizes."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.domain import Run, StepResult
from ledger.store import PgEventStore
from projections import runs
from projections.run_row import RunRow, fold
from runledger.testing import wait_for_position

from .conftest import BROWSER, append_all, new_run, running

pytestmark = pytest.mark.integration

TERMINALS = ("completed", "errored", "timed-out", "cancelled", None)


@st.composite
def lifecycles(draw: st.DrawFn) -> list[Any]:
    """A run's events: queued, then any valid path through the lifecycle."""
    run = new_run(draw(st.sampled_from(["t-1", "t-2"])), attempt=draw(st.integers(1, 3)))
    if draw(st.booleans()):  # started
        run.start(worker=draw(st.sampled_from(["w-1", "w-2"])), browser=BROWSER)
        for index in range(draw(st.integers(0, 4))):
            run.record_step(StepResult(
                index=index, action="click", instruction=f"Click {index}",
                status=draw(st.sampled_from(["passed", "failed"])), duration_ms=index))
    _finish(run, draw(st.sampled_from(TERMINALS)), draw)
    return run.collect_events()


def _finish(run: Run, terminal: str | None, draw: st.DrawFn) -> None:
    if terminal is None:
        return
    if terminal == "cancelled":
        run.cancel(reason=draw(st.text(min_size=1, max_size=8).filter(lambda s: "\0" not in s)))
    elif terminal == "errored":
        run.fail(message="crashed", kind="browser", step=draw(st.none() | st.integers(0, 3)))
    elif run.status == "running" and terminal == "timed-out":
        run.time_out(timeout_seconds=600, detected_by="recovery")
    elif run.status == "running":
        status = draw(st.sampled_from(["passed", "failed"]))
        run.complete(status=status, duration_ms=draw(st.none() | st.integers(0, 10**6)) or 0,
                     error=None if status == "passed" else "no", error_step=None)


@st.composite
def interleavings(draw: st.DrawFn) -> list[list[Any]]:
    """Appends of 1 to 4 runs' events, interleaved in the log as concurrent writers would."""
    pending = draw(st.lists(lifecycles(), min_size=1, max_size=4))
    appends = []
    while pending:
        events = pending[draw(st.integers(0, len(pending) - 1))]
        take = draw(st.integers(1, len(events)))
        appends.append(events[:take])
        del events[:take]
        pending = [p for p in pending if p]
    return appends


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(appends=interleavings(), batch_size=st.integers(1, 5))
async def test_stored_row_is_the_fold_exactly(
    pool: asyncpg.Pool, database_url: str, appends: list[list[Any]], batch_size: int
) -> None:
    store = PgEventStore(pool)
    # Each example starts from a fresh projection of the same database.
    await pool.execute("TRUNCATE runs; DELETE FROM follower_checkpoints")
    await append_all(store, appends)
    async with running(runs.MODEL.follower(), pool, database_url, batch_size=batch_size):
        await wait_for_position(pool, runs.NAME)
    run_ids = {chunk[0].originator_id for chunk in appends}
    for run_id in run_ids:
        stored = await pool.fetchrow("SELECT * FROM runs WHERE id = $1", run_id)
        assert stored is not None
        assert RunRow(**dict(stored)) == fold(await store.read_run(run_id))
