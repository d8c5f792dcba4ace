"""``runledger dev``: the whole system in one process tree, for a laptop or a demo.

Without ``DATABASE_URL`` / ``REDIS_URL`` it starts PostgreSQL and Valkey from wheels as
child processes (data under ``.runledger/``), migrates, and runs until SIGINT/SIGTERM,
then stops everything it started, in reverse order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from pathlib import Path

from ledger.settings import redact

log = logging.getLogger(__name__)


async def run_dev(data_dir: Path) -> None:
    from runledger.cli import migrate_database
    from runledger.embedded import start_postgres, start_valkey

    with contextlib.ExitStack() as stack:
        database_url = os.environ.get("DATABASE_URL")
        redis_url = os.environ.get("REDIS_URL")
        if not database_url:
            pg = start_postgres(data_dir / "postgres")
            stack.callback(pg.stop)
            database_url = pg.url
        if not redis_url:
            valkey = start_valkey(data_dir / "valkey")
            stack.callback(valkey.stop)
            redis_url = valkey.url
        applied = await migrate_database(database_url)
        log.info("DATABASE_URL=%s ready (%d migration(s) applied)",
                 redact(database_url), len(applied))
        log.info("REDIS_URL=%s ready — press Ctrl-C to stop", redact(redis_url))
        await _until_signal()
        log.info("stopping")


async def _until_signal() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
