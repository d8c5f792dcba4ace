"""``runledger dev``: the whole system in one process, for a laptop or a demo.

Without ``DATABASE_URL`` / ``REDIS_URL`` it starts PostgreSQL and Valkey from wheels as
child processes (data under ``.runledger/``), migrates, then runs the followers (read models
and relay), one worker (with the Playwright executor) and the HTTP API side by side until
SIGINT/SIGTERM. The first signal stops everything gracefully (in-flight runs finish), a
second one at once; the servers it started are stopped last, in reverse order. If any of
the three dies, the others are stopped and the error is raised: nothing runs half-alive.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from pathlib import Path

from ledger.settings import load_settings, redact

log = logging.getLogger(__name__)


class ForcedStop(Exception):
    """A second signal arrived: stop every service at once."""


async def run_dev(data_dir: Path, host: str, port: int) -> None:
    from api.server import serve as serve_api
    from api.settings import ApiSettings
    from projections.service import ProjectorSettings, run_projector
    from runledger.cli import migrate_database
    from runledger.embedded import start_postgres, start_valkey
    from worker.main import Signals, playwright_executor
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

        loop = asyncio.get_running_loop()
        signals = Signals()
        signals.install(loop)

        async def api() -> None:
            if await serve_api(api_settings, signals.stop):
                raise RuntimeError("the API stopped with an error (see the log above)")

        async def force() -> None:
            await signals.force_stop.wait()
            raise ForcedStop

        try:
            async with asyncio.TaskGroup() as group:
                services = [
                    group.create_task(run_projector(projector_settings, signals.stop),
                                      name="projector"),
                    group.create_task(run_worker(worker_settings, playwright_executor,
                                                 signals.stop, force_stop=signals.force_stop),
                                      name="worker"),
                    group.create_task(api(), name="api"),
                ]
                watcher = group.create_task(force(), name="force-stop")
                # The services drain on their own after the first signal; the watcher only
                # matters for a second one. A service that fails makes the group cancel
                # the others and this wait.
                await asyncio.wait(services)
                watcher.cancel()
        except* ForcedStop:
            log.warning("stopped at once")
        finally:
            signals.remove(loop)
        log.info("stopped")

