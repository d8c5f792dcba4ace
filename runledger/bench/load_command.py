"""The ``runledger bench load`` command (registered in ``runledger.cli``): options only; the
benchmark (``runledger.bench.load``) is imported when it runs."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Annotated

import typer


def bench_load(
    seconds: Annotated[float, typer.Option(min=1, help="How long runs arrive.")] = 60.0,
    clients: Annotated[int, typer.Option(min=0, help="Concurrent SSE clients.")] = 100,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes (no-op executor).")] = 2,
    in_flight: Annotated[int, typer.Option(min=1, help="Runs kept unfinished.")] = 50,
    fault_every: Annotated[float, typer.Option(
        min=1, help="Seconds between faults: worker kill -9, Redis restart, connections "
        "terminated, in turn.")] = 10.0,
    drain: Annotated[float, typer.Option(
        min=1, help="Seconds the runs in flight get to finish after the load.")] = 120.0,
    redis_server: Annotated[str | None, typer.Option(
        help="Redis server binary to start and restart (default: the embedded Valkey's; "
        "e.g. /usr/bin/redis-server for Redis 7).")] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write figures here.")] = None,
) -> None:
    """No-op runs and SSE clients with a fault every few seconds: runs/s, commit → SSE
    p50/p99, runs lost and duplicate terminal events (target 0), RSS of each process at
    start and end. Exits 1 when a run was lost or ended twice."""
    from runledger.bench import load

    # Entry point: one line per SSE connection would bury the figures.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    options = load.Options(seconds=seconds, clients=clients, workers=workers,
                           in_flight=in_flight, fault_every=fault_every, drain=drain,
                           redis_server=redis_server)
    asyncio.run(load.main(options, json_out))
