"""``RunReads``: what the API shows of runs — the read models for lists and rows, the
ledger for history, artifacts and the compatibility shapes."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from api import views
from api.compat import ArtifactUrl, legacy_result
from ledger.artifacts import ArtifactNotFound, ArtifactStore, StoredFile
from ledger.codec import RecordedEvent
from ledger.errors import RunNotFound, UndecodableEvent
from ledger.retries import MAX_RETRIES, attempt_id, first_of
from ledger.store import PgEventStore
from projections.queries import RunQueries

Row = dict[str, Any]


class RunReads:
    """Handed the store, the read-model queries and the artifact store; closes none."""

    def __init__(self, store: PgEventStore, queries: RunQueries, artifacts: ArtifactStore) -> None:
        self._store = store
        self._queries = queries
        self._artifacts = artifacts

    async def _recorded(self, run_id: UUID) -> list[RecordedEvent]:
        events = await self._store.read_run(run_id)
        if not events:
            raise RunNotFound(run_id)
        return events

    async def _events(self, run_id: UUID) -> list[Row]:
        return [e.public() for e in await self._recorded(run_id)]

    async def run(self, run_id: UUID) -> tuple[Row, list[Row]]:
        """The run's row and steps, never older than the run's own history. The read models
        lag the log by a moment, while a client that followed the stream to its terminal
        event has already seen the newest state: when the row is missing or behind the
        run's head version (one indexed query), the run is folded from its events."""
        row = await self._queries.get_run(run_id)
        # Row first, head second: the head only grows, so a row at the head read after it
        # is current.
        if row is not None and row["version"] >= await self._store.run_version(run_id):
            return row, await self._queries.run_steps(run_id)
        try:
            events = await self._recorded(run_id)
        except UndecodableEvent:
            if row is None:
                raise
            # The run holds an event the followers parked: the row will not catch up until
            # it is fixed, and is the best answer meanwhile.
            return row, await self._queries.run_steps(run_id)
        steps = [views.step_row(e) for e in events if e.type == "step"]
        return views.run_row(events), steps

    async def attempts(self, run_id: UUID) -> list[Row]:
        """Every attempt queued so far of the test run that ``run_id`` belongs to, first to
        last: ``{run_id, attempt, status}``. Attempt ids derive from the first run's id
        (``ledger.retries``), so the chain is found without a scan."""
        queued = (await self._store.read_run(run_id, after=0, limit=1))
        if not queued:
            raise RunNotFound(run_id)
        data = queued[0].data
        first = UUID(first_of(run_id, data))
        extra = min(int(data.get("retries") or 0), MAX_RETRIES)
        chain = [first, *(attempt_id(first, n) for n in range(2, extra + 2))]
        found: list[Row] = []
        for number, attempt in enumerate(chain, start=1):
            try:
                row, _ = await self.run(attempt)
            except RunNotFound:
                break  # not queued (yet): no later attempt can exist either
            found.append({"run_id": attempt, "attempt": number, "status": row["status"]})
        return found

    async def page(
        self, *, status: str | None, test_id: UUID | None, limit: int, cursor: str | None
    ) -> tuple[list[Row], str | None]:
        return await self._queries.list_runs(
            status=status, test_id=str(test_id) if test_id else None, limit=limit, cursor=cursor
        )

    async def history(
        self, run_id: UUID, *, after: int, limit: int
    ) -> tuple[list[Row], int | None]:
        """Events after version ``after``, and the ``after`` of the next page (or None)."""
        events = await self._store.read_run(run_id, after=after, limit=limit + 1)
        if not events and await self._store.run_version(run_id) == 0:
            raise RunNotFound(run_id)
        page = [e.public() for e in events[:limit]]
        return page, (page[-1]["version"] if len(events) > limit else None)

    async def artifact(self, run_id: UUID, artifact_id: str) -> tuple[dict[str, Any], StoredFile]:
        """A run's artifact: its reference (found in the run's events, which is what
        authorises reading it through this run) and its file, to stream."""
        ref = views.artifact_refs(await self._events(run_id)).get(artifact_id)
        if ref is None:
            raise ArtifactNotFound(f"run {run_id} has no artifact {artifact_id}")
        return ref, await self._artifacts.open(artifact_id)

    async def legacy(self, run_id: UUID, artifact_url: ArtifactUrl) -> dict[str, Any]:
        """The old result shape, all from one read of the run's events: status, steps and
        logs come from the same snapshot, never a lagging row beside fresher logs."""
        events = await self._recorded(run_id)
        return legacy_result(views.run_row(events), [e.public() for e in events], artifact_url)
