"""The executor's read side of locator memory."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import asyncpg

from ledger.db import translated
from projections.locator_memory.follower import Q, entry_from_row
from projections.locator_memory.keys import normalise_instruction
from projections.locator_memory.memory import MemoryEntry


class PgLocatorMemory:
    """Reads ``locator_memory``. It is handed a pool and never closes it."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def for_steps(
        self, steps: Iterable[tuple[str, str, str | None]]
    ) -> dict[str, MemoryEntry]:
        """Entries (by key) that may serve any of ``(action, instruction, value)``, on any
        page: one query per run; the executor picks by key once it knows the page."""
        pairs = sorted({(a, normalise_instruction(i, v)) for a, i, v in steps})
        if not pairs:
            return {}
        with translated():
            rows = await self._pool.fetch(
                Q["entries_for_steps"], [a for a, _ in pairs], [i for _, i in pairs]
            )
        return {row["key"]: entry_from_row(row) for row in rows}

    async def by_keys(self, keys: Sequence[str]) -> dict[str, MemoryEntry]:
        with translated():
            rows = await self._pool.fetch(Q["entries_by_key"], list(keys))
        return {row["key"]: entry_from_row(row) for row in rows}
