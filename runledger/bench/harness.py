"""Shared benchmark plumbing: a throw-away database and Redis, timing, and the report.

Every benchmark prints a table and, with ``--json FILE``, writes
``{"figures": [{"name", "value", "unit", "baseline", "baseline_value", "ratio"}]}`` where
``ratio > 1`` always means runledger is better than the baseline.
"""

from __future__ import annotations

import contextlib
import statistics
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import orjson
from rich.console import Console
from rich.table import Table

from ledger.migrate import migrate
from runledger.schema import all_migrations

# Wide enough for the figures table when output is not a terminal (CI logs, files).
console = Console(width=150)
HIGHER_IS_BETTER = {"events/s", "runs/s", "ops/s", "%"}


@dataclass(frozen=True)
class Figure:
    name: str
    value: float
    unit: str
    baseline: str | None = None
    baseline_value: float | None = None

    @property
    def ratio(self) -> float | None:
        if self.baseline_value in (None, 0) or self.value == 0:
            return None
        if self.unit in HIGHER_IS_BETTER:
            return self.value / self.baseline_value  # type: ignore[operator]
        return self.baseline_value / self.value  # type: ignore[operator]

    def as_json(self) -> dict[str, object]:
        return {**asdict(self), "ratio": self.ratio}


def percentile(samples: list[float], q: float) -> float:
    if not samples:
        return 0.0
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def median(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0


def report(title: str, figures: list[Figure], json_out: Path | None) -> None:
    table = Table(title=title)
    for column in ("figure", "value", "baseline", "baseline value", "ratio"):
        table.add_column(column, justify="left" if column in ("figure", "baseline") else "right")
    for f in figures:
        ratio = f"{f.ratio:.2f}x" if f.ratio is not None else "—"
        base = f"{f.baseline_value:,.2f} {f.unit}" if f.baseline_value is not None else "—"
        table.add_row(f.name, f"{f.value:,.2f} {f.unit}", f.baseline or "—", base, ratio)
    console.print(table)
    if json_out is not None:
        json_out.write_bytes(
            orjson.dumps({"figures": [f.as_json() for f in figures]}, option=orjson.OPT_INDENT_2)
        )
        console.print(f"figures written to {json_out}")


@contextlib.contextmanager
def servers(database_url: str | None, redis_url: str | None) -> Iterator[tuple[str, str]]:
    """The given servers, or embedded ones started for this benchmark and stopped after."""
    from runledger.embedded import start_postgres, start_valkey

    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="runledger-bench-")))
        if database_url is None:
            pg = start_postgres(tmp / "pg", ephemeral=True)
            stack.callback(pg.stop)
            database_url = pg.url
        if redis_url is None:
            valkey = start_valkey(tmp / "valkey", ephemeral=True)
            stack.callback(valkey.stop)
            redis_url = valkey.url
        yield database_url, redis_url


@contextlib.asynccontextmanager
async def fresh_database(server_url: str) -> AsyncIterator[str]:
    """A new, migrated database on ``server_url``; dropped afterwards."""
    name = f"runledger_bench_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(server_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    url = urlunsplit(urlsplit(server_url)._replace(path=f"/{name}"))
    conn = await asyncpg.connect(url)
    try:
        await migrate(conn, all_migrations())
    finally:
        await conn.close()
    try:
        yield url
    finally:
        admin = await asyncpg.connect(server_url)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()
