"""eventsourcing's own PostgreSQL recorder reads what runledger's asyncpg store wrote."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

import asyncpg
import pytest
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore

from ledger.codec import make_mapper
from ledger.domain import Run, StepResult
from ledger.store import PgEventStore

pytestmark = pytest.mark.integration


def library_recorder(database_url: str) -> tuple[PostgresDatastore, PostgresApplicationRecorder]:
    url = urlsplit(database_url)
    datastore = PostgresDatastore(
        dbname=url.path.lstrip("/"), host=url.hostname or "127.0.0.1", port=str(url.port),
        user=url.username or "postgres", password=url.password or "", pool_size=1,
    )
    return datastore, PostgresApplicationRecorder(datastore, events_table_name="stored_events")


async def test_library_recorder_rebuilds_an_equal_run(
    pool: asyncpg.Pool, database_url: str
) -> None:
    store = PgEventStore(pool)
    run = Run.queue(test_id="t-9", test_name="checkout", url="http://127.0.0.1/",
                    steps=[{"action": "click", "instruction": "Click 'Buy'"}])
    run.start(worker="w1", browser={"name": "chromium", "version": "156"})
    run.record_step(StepResult(index=0, action="click", instruction="Click 'Buy'", status="passed",
                    strategy="dom", duration_ms=12, details={"locator": "role=button"}))
    run.complete(status="passed", duration_ms=30)
    await store.save(run)

    def read_with_library() -> tuple[Run, list[int], int | None]:
        datastore, recorder = library_recorder(database_url)
        try:
            stored = recorder.select_events(run.id)
            mapper = make_mapper()
            copy = None
            for item in stored:
                copy = mapper.to_domain_event(item).mutate(copy)
            ids = [n.id for n in recorder.select_notifications(start=None, limit=10)]
            return copy, ids, recorder.max_notification_id()
        finally:
            datastore.close()

    copy, ids, head = await asyncio.to_thread(read_with_library)
    assert isinstance(copy, Run)
    assert vars(copy) == vars(await store.load_run(run.id))
    assert copy.status == "passed" and copy.steps_passed == 1
    assert ids == [1, 2, 3, 4] and head == 4
