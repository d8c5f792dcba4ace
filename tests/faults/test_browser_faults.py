"""A worker driving a real Chromium killed with kill -9 mid-step: the browser does not
outlive it, the run ends (once), and the next worker runs the next run in a browser of its
own."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
import redis.asyncio as aioredis

from ledger.domain import Run
from ledger.store import PgEventStore
from runledger.testing import local_site, wait_until
from tests.faults.cluster import Cluster
from tests.faults.invariants import check, settle

pytestmark = [pytest.mark.integration, pytest.mark.browser]

PAGE = """<!doctype html><title>slow</title>
<button onclick="this.textContent='Gone'">Go</button>
<script>setTimeout(() => document.body.insertAdjacentHTML(
  'beforeend', '<button>Later</button>'), 60000)</script>
"""
#: short timeouts, so the killed worker's run is timed out within seconds
CHROMIUM_WORKER = {"step_timeout_seconds": 20, "run_timeout_seconds": 3,
                   "run_finish_grace_seconds": 1, "stuck_run_timeout_minutes": 0.1}
#: the survivor's run must pass: a Chromium run on a loaded machine can take more than 3 s
#: (the killed worker's run is ended by its lapsed lease, CLAIM_IDLE_SECONDS, either way)
SURVIVOR = {**CHROMIUM_WORKER, "run_timeout_seconds": 30, "stuck_run_timeout_minutes": 1}


@pytest.fixture
def site(tmp_path: Path) -> Iterator[str]:
    folder = tmp_path / "site"
    folder.mkdir()
    (folder / "index.html").write_text(PAGE)
    with local_site(folder, name="fault-site") as url:
        yield url


def descendants(pid: int) -> set[int]:
    """Every live process below ``pid`` (the Playwright driver, Chromium and its helpers)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier}
        found |= frontier
    return found


def alive(pids: set[int]) -> set[int]:
    living = set()
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            living.add(pid)
    return living


async def queue(store: PgEventStore, url: str, *instructions: str) -> Run:
    run = Run.queue(test_id="browser-fault", test_name="browser fault", url=url,
                    steps=[{"action": "click", "instruction": i} for i in instructions])
    await store.save(run)
    return run


async def test_worker_with_chromium_killed_mid_step(
    cluster: Cluster, pool: asyncpg.Pool, database_url: str, redis: aioredis.Redis,
    store: PgEventStore, site: str,
) -> None:
    await cluster.projector()
    doomed = await cluster.spawn("worker", ["-m", "worker"], **CHROMIUM_WORKER)
    await doomed.logged("Stuck-run recovery every", within=60)
    slow = await queue(store, f"{site}/index.html", "Click 'Go'", "Click 'Later'")

    async def mid_step() -> bool:
        return await pool.fetchval(
            "SELECT count(*) FROM stored_events WHERE originator_id = $1", slow.id) >= 3

    await wait_until(mid_step, within=60, what="the first step to be recorded")
    browser = descendants(doomed.pid)
    assert browser, "the worker runs no browser"
    await doomed.kill()

    async def browser_gone() -> bool:
        return not alive(browser)

    await wait_until(browser_gone, within=20, what=f"the killed worker's browser ({browser})")

    survivor = await cluster.spawn("worker", ["-m", "worker"], **SURVIVOR)
    await survivor.logged("Stuck-run recovery every", within=60)
    quick = await queue(store, f"{site}/index.html", "Click 'Go'")
    await settle(pool, redis, [slow.id, quick.id], within=60)
    status = dict(await pool.fetch("SELECT id, status FROM runs"))
    assert status == {slow.id: "failed", quick.id: "passed"}
    tally = await check(pool, database_url, redis, [slow.id, quick.id])
    print(tally.line("worker with Chromium kill -9 mid-step"))
    assert tally.violations == []
