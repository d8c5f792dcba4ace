"""The runs feed: what changes the list of runs, live — a run queued, started or ended —
as it commits to the log, for the runs page to show new runs without a reload.

Positions are the log's notification ids, so a client that reconnects with the id of the
last message it received (``Last-Event-ID``) misses nothing and gets nothing twice. Woken by
the process's shared ``LogListener`` (LISTEN/NOTIFY, polling fallback); step events are left
out: they do not change a run's row in a list.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Any

import asyncpg

from ledger.codec import RecordedEvent
from ledger.domain import TERMINAL_TYPES
from ledger.store import LogListener, PgEventStore, read_log_entries
from projections.queries import RunQueries

BATCH = 500
LIFECYCLE = frozenset({"queued", "started"}) | TERMINAL_TYPES
#: How far back a feed opened without a position may start (see ``RunFeed.open``): the
#: runs model lags the log by a moment, not by this; a projector this far behind (or
#: stopped) leaves the list stale anyway, and the feed then starts at the head.
CATCH_UP_POSITIONS = 10_000


def change(event: RecordedEvent) -> dict[str, Any]:
    """One feed message: which run changed, how, and at which log position."""
    return {"position": event.notification_id, "run_id": str(event.run_id),
            "type": event.type, "version": event.version, "timestamp": event.timestamp}


@dataclass(eq=False)
class RunFeed:
    """Opens feeds. One per process; handed the pool, store and listener, closes none."""

    pool: asyncpg.Pool
    store: PgEventStore
    listener: LogListener

    async def open(self, after: int | None) -> AsyncGenerator[dict[str, Any], None]:
        """Changes after log position ``after``, until closed. Without one, changes the runs
        list does not show yet, then live: a page opens the feed and then reads ``GET
        /runs``, which shows the runs model — a run committed before the feed opened but
        projected after the list was read would otherwise be in neither."""
        position = await self._listed() if after is None else after
        return self._follow(position)

    async def _listed(self) -> int:
        listed = await RunQueries(self.pool).listed_position()
        head = await self.store.head_id()
        return listed if head - listed <= CATCH_UP_POSITIONS else head

    async def _follow(self, position: int) -> AsyncGenerator[dict[str, Any], None]:
        while True:
            # The generation is taken before reading: a commit in between wakes the wait.
            generation = self.listener.generation
            entries = await read_log_entries(self.pool, position, BATCH)
            for entry in entries:
                position = entry.notification_id
                if isinstance(entry, RecordedEvent) and entry.type in LIFECYCLE:
                    yield change(entry)
            if len(entries) < BATCH:
                await self.listener.wait(generation)
