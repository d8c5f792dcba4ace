"""``runledger dev``: the whole system in one process, for a laptop or a demo.

Without ``DATABASE_URL`` / ``REDIS_URL`` it starts PostgreSQL and Valkey from wheels as
child processes (data under ``.runledger/``), migrates, then runs the followers (read models
and relay), one worker (with the Playwright executor) and the HTTP API side by side until
SIGINT/SIGTERM. The first signal stops everything gracefully (in-flight runs finish), a
second one at once; the servers it started are stopped last, in reverse order. If any of
the three dies, the others are stopped and the error is raised: nothing runs half-alive.
"""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path

from ledger.aio import Signals, supervise
from ledger.settings import load_settings, redact

log = logging.getLogger(__name__)


async def run_dev(data_dir: Path, host: str, port: int) -> None:
    from api.server import serve as serve_api
    from api.settings import ApiSettings
    from projections.service import ProjectorSettings, run_projector
    from runledger.database import migrate_database
    from runledger.embedded import start_postgres, start_valkey
    from worker.main import playwright_executor
    from worker.service import run_worker
    from worker.settings import WorkerSettings

    with contextlib.ExitStack() as stack:
        urls = {
            "database_url": os.environ.get("DATABASE_URL"),
            "redis_url": os.environ.get("REDIS_URL"),
        }
        if not urls["database_url"]:
            pg = start_postgres(data_dir / "postgres")
            stack.callback(pg.stop)
            urls["database_url"] = pg.url
        if not urls["redis_url"]:
            valkey = start_valkey(data_dir / "valkey")
            stack.callback(valkey.stop)
            urls["redis_url"] = valkey.url
        projector_settings = load_settings(ProjectorSettings, **urls)
        worker_settings = load_settings(WorkerSettings, **urls)
        api_settings = load_settings(ApiSettings, **urls, host=host, port=port)
        applied = await migrate_database(projector_settings.database_url)
        log.info("DATABASE_URL=%s (%d migration(s) applied), REDIS_URL=%s",
                 redact(projector_settings.database_url), len(applied),
                 redact(projector_settings.redis_url))
        log.info("API on http://%s:%d (docs at /docs) — Ctrl-C to stop", host, port)

        with Signals(what="finishing in-flight runs, then stopping") as signals:

            async def api() -> None:
                if await serve_api(api_settings, signals.stop):
                    raise RuntimeError("the API stopped with an error (see the log above)")

            # The services drain on their own after the first signal (the worker lets its
            # runs finish); a second signal cuts that short. One that fails stops the others.
            await supervise(
                [("projector", run_projector(projector_settings, signals.stop)),
                 ("worker", run_worker(worker_settings, playwright_executor, signals.stop,
                                       force_stop=signals.force_stop)),
                 ("api", api())],
                stop=signals.stop, grace_seconds=None, force=signals.force_stop,
            )
        if signals.forced_by is not None:
            log.warning("stopped at once")
        log.info("stopped")
