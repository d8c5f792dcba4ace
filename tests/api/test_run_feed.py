"""The runs feed opened without a position (``api.feed.RunFeed``): it starts where the runs
list is, so a run committed before a page opened its feed, but listed only after the page
read ``GET /runs``, still reaches the page."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from typing import Any

import asyncpg
import pytest

from api import feed as feed_module
from api.feed import RunFeed
from ledger.store import LogListener, PgEventStore
from runledger.testing import log_head
from tests.projections.conftest import write_runs

pytestmark = pytest.mark.integration


async def _run_ids(changes: AsyncGenerator[dict[str, Any], None], count: int) -> list[str]:
    found: list[str] = []
    try:
        async with asyncio.timeout(15):  # a feed that skipped a run would wait for ever
            async for change in changes:
                if change["type"] == "queued":
                    found.append(change["run_id"])
                if len(found) == count:
                    break
    finally:
        await changes.aclose()
    return found


async def _set_listed(pool: asyncpg.Pool, position: int) -> None:
    await pool.execute(
        "INSERT INTO follower_checkpoints (name, position) VALUES ('runs', $1) "
        "ON CONFLICT (name) DO UPDATE SET position = $1", position)


async def test_a_run_the_list_cannot_show_yet_comes_first(
    pool: asyncpg.Pool, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = PgEventStore(pool)
    listener = LogListener(database_url, poll_interval=0.2)
    await listener.start()
    try:
        feed = RunFeed(pool, store, listener)
        [shown] = await write_runs(store, 1, seed=1)
        await _set_listed(pool, await log_head(pool))  # the runs model holds it
        [unlisted] = await write_runs(store, 1, seed=2)  # committed, not projected yet

        # Opened now, the feed first names the run the list lacks, then what comes next.
        changes = await feed.open(None)
        [later] = await write_runs(store, 1, seed=3)
        assert await _run_ids(changes, 2) == [str(unlisted.id), str(later.id)]
        assert str(shown.id) not in await _run_ids(await feed.open(None), 1)

        # A projector far behind (or stopped) does not make a feed replay the whole log:
        # it starts at most CATCH_UP_POSITIONS back (here none).
        monkeypatch.setattr(feed_module, "CATCH_UP_POSITIONS", 0)
        await _set_listed(pool, 0)
        changes = await feed.open(None)
        [newest] = await write_runs(store, 1, seed=4)
        assert await _run_ids(changes, 1) == [str(newest.id)]
    finally:
        await listener.close()
