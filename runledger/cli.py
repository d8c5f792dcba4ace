"""``runledger``: the command line and composition root — the one place that wires the
packages together. Each command builds its settings, opens what it needs, and closes it."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Annotated

import typer

from ledger.db import create_pool
from ledger.errors import LedgerError
from ledger.migrate import migrate as apply_migrations
from ledger.settings import DatabaseSettings, load_settings, redact
from runledger import logs
from runledger.schema import all_migrations

app = typer.Typer(
    no_args_is_help=True, add_completion=False,
    help="runledger: an event-sourced run ledger for browser tests.",
)
bench_app = typer.Typer(no_args_is_help=True, help="Benchmarks: figures and ratios.")
app.add_typer(bench_app, name="bench")
log = logging.getLogger("runledger")


def fail(message: str, code: int = 2) -> typer.Exit:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    return typer.Exit(code)


@app.callback()
def main(
    log_level: Annotated[str, typer.Option(envvar="LOG_LEVEL", help="Log level.")] = "INFO",
) -> None:
    logs.configure(log_level)


async def migrate_database(database_url: str) -> list[str]:
    pool = await create_pool(database_url, min_size=1, max_size=1)
    try:
        async with pool.acquire() as conn:
            return await apply_migrations(conn, all_migrations())
    finally:
        await pool.close()


@app.command()
def migrate() -> None:
    """Apply the schema migrations not yet applied to DATABASE_URL (idempotent)."""
    try:
        settings = load_settings(DatabaseSettings)
        applied = asyncio.run(migrate_database(settings.database_url))
    except LedgerError as exc:
        raise fail(str(exc)) from None
    target = redact(settings.database_url)
    if applied:
        typer.echo(f"applied {len(applied)} migration(s) to {target}: " + ", ".join(applied))
    else:
        typer.echo(f"{target} is up to date")


@app.command()
def dev(
    data_dir: Annotated[
        Path, typer.Option(help="Where embedded servers keep their data.")
    ] = Path(".runledger"),
) -> None:
    """Run everything in one process tree. Without DATABASE_URL / REDIS_URL it starts its own
    PostgreSQL and Valkey (from wheels) under DATA_DIR and stops them on exit."""
    from runledger.dev import run_dev

    try:
        asyncio.run(run_dev(data_dir))
    except LedgerError as exc:
        raise fail(str(exc)) from None
    except KeyboardInterrupt:
        pass


@bench_app.command("append")
def bench_append(
    runs: Annotated[int, typer.Option(help="Runs to append to.")] = 1000,
    rounds: Annotated[int, typer.Option(help="Alternating rounds per contender.")] = 3,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write figures here.")] = None,
) -> None:
    """Appends per second: runledger vs raw asyncpg (the floor) vs eventsourcing (the peer)."""
    from runledger.bench import append

    asyncio.run(append.main(runs=runs, rounds=rounds, json_out=json_out))


if __name__ == "__main__":
    app()
