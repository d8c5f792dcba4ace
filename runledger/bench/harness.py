"""Shared benchmark plumbing: servers and throw-away databases (from ``runledger.testing``),
timing, and the report.

Every benchmark prints a table and, with ``--json FILE``, writes
``{"figures": [{"name", "value", "unit", "baseline", "baseline_value", "ratio"}]}`` where
``ratio > 1`` always means runledger is better than the baseline.
"""

from __future__ import annotations

import contextlib
import statistics
from dataclasses import asdict, dataclass
from pathlib import Path

import orjson
from rich.console import Console
from rich.table import Table

from runledger.testing import local_servers, throwaway_database

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
        if self.baseline_value is None or self.baseline_value == 0 or self.value == 0:
            return None
        if self.unit in HIGHER_IS_BETTER:
            return self.value / self.baseline_value
        return self.baseline_value / self.value

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


# The benchmarks' servers and databases are the tests' (one definition, in runledger.testing):
# ``servers(database_url, redis_url)`` starts embedded ones for what is not given, and
# ``fresh_database(server_url)`` is a new database migrated from zero, dropped afterwards.
servers = local_servers


def fresh_database(server_url: str) -> contextlib.AbstractAsyncContextManager[str]:
    return throwaway_database(server_url, prefix="runledger_bench")
