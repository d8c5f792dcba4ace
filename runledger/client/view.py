"""What the client shows: a live step view while runs go, tables and summaries after.

On a terminal the live view is a table redrawn in place (rich ``Live``): a row per test
with its attempt, status and the step it is at. Elsewhere (CI logs, pipes) it prints one
line per finished step and per finished run, so a log reads top to bottom.
Text from the runs (instructions, errors) is shown as text, never as rich markup.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from ledger.text import escape
from runledger.client.runs import Outcome

_STYLE = {"passed": "green", "failed": "red", "cancelled": "yellow", "running": "cyan",
          "queued": "dim", "flaky": "yellow"}


@dataclass
class _Row:
    status: str = "queued"
    attempt: int = 1
    steps: int = 0
    total: int | None = None
    last: str = ""
    run_id: str = ""


class LiveView:
    """Receives every event (``on_event``) and shows progress; a context manager."""

    def __init__(self, console: Console, names: list[str]) -> None:
        self._console = console
        self._rows = {name: _Row() for name in names}
        self._live: Live | None = None

    def __enter__(self) -> LiveView:
        if self._console.is_terminal:
            self._live = Live(self._table(), console=self._console, refresh_per_second=8,
                              transient=False)
            self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.update(self._table())
            self._live.__exit__(None, None, None)

    def on_event(self, name: str, event: dict[str, Any]) -> None:
        row = self._rows.setdefault(name, _Row())
        kind, data = event["type"], event.get("data") or {}
        if kind == "queued":
            row.attempt, row.run_id = int(data.get("attempt", 1)), str(event["run_id"])
            row.status, row.steps, row.total = "queued", 0, len(data.get("steps") or [])
            row.last = ""
        elif kind == "started":
            row.status = "running"
        elif kind == "step":
            row.steps += 1
            row.last = f"{data.get('status')}: {data.get('instruction', '')}"
            if self._live is None:
                self._line(name, row, f"step {data.get('index')} {row.last}"
                           + (f" — {data['error']}" if data.get("error") else ""))
        else:
            row.status = data.get("status", "failed") if kind == "completed" else (
                "cancelled" if kind == "cancelled" else "failed")
            if self._live is None:
                error = data.get("error") or data.get("message") or data.get("reason")
                self._line(name, row, f"{row.status} ({kind})" + (f": {error}" if error else ""))
        if self._live is not None:
            self._live.update(self._table())

    def _line(self, name: str, row: _Row, what: str) -> None:
        attempt = f" attempt {row.attempt}" if row.attempt > 1 else ""
        self._console.print(Text(f"[{name}]{attempt} {escape(what, 300)}"), soft_wrap=True)

    def _table(self) -> Table:
        table = Table("test", "attempt", "status", "steps", "last step", expand=False)
        for name, row in self._rows.items():
            steps = f"{row.steps}/{row.total}" if row.total else str(row.steps)
            table.add_row(Text(name), str(row.attempt),
                          Text(row.status, style=_STYLE.get(row.status, "")), steps,
                          Text(escape(row.last, 80)))
        return table


def summary(console: Console, outcomes: list[Outcome], run_page: dict[str, str]) -> None:
    table = Table("test", "result", "attempts", "time", "failing step")
    table.add_column("run page", overflow="fold")  # whole, to be clicked or copied
    for outcome in outcomes:
        status = "flaky" if outcome.flaky else outcome.status
        final = outcome.final
        failing = ""
        if not outcome.passed:
            failing = (f"{final.error_step}: {final.failing_step or ''} — "
                       if final.error_step is not None else "") + (final.error or "")
        table.add_row(Text(outcome.name), Text(status, style=_STYLE.get(status, "")),
                      str(len(outcome.attempts)), f"{outcome.seconds:.1f}s",
                      Text(escape(failing, 120)), run_page[final.run_id])
    console.print(table)
    passed = sum(o.passed for o in outcomes)
    flaky = sum(o.flaky for o in outcomes)
    failed = len(outcomes) - passed
    console.print(f"{passed} passed" + (f" ({flaky} flaky)" if flaky else "")
                  + f", {failed} failed", style="green" if not failed else "red")


def runs_table(console: Console, runs: list[dict[str, Any]]) -> None:
    table = Table("run", "test", "status", "attempt", "created", "duration", "error")
    for run in runs:
        duration = f"{run['duration_ms'] / 1000:.1f}s" if run.get("duration_ms") else ""
        table.add_row(str(run["id"]), Text(str(run.get("test_name") or run.get("test_id"))),
                      Text(run["status"], style=_STYLE.get(run["status"], "")),
                      str(run.get("attempt", 1)), str(run.get("created_at", ""))[:19],
                      duration, Text(escape(run.get("error") or "", 60)))
    console.print(table)


def run_detail(console: Console, run: dict[str, Any], attempts: list[dict[str, Any]],
               page: str) -> None:
    console.print(Text(f"run {run['id']}  {run.get('test_name')}  {run['status']}",
                       style=_STYLE.get(run["status"], "")))
    console.print(f"page: {page}")
    for key in ("test_id", "attempt", "worker", "created_at", "started_at", "completed_at",
                "duration_ms", "error", "error_step"):
        if run.get(key) is not None:
            console.print(Text(f"  {key}: {escape(str(run[key]), 300)}"))
    if len(attempts) > 1:
        final = attempts[-1]
        flaky = final["status"] == "passed" and any(a["status"] != "passed" for a in attempts)
        console.print("attempts" + (" (flaky: the last passed after a failure)" if flaky else
                                    "") + ":")
        for a in attempts:
            console.print(Text(f"  {a['attempt']}. {a['id']} {a['status']}",
                               style=_STYLE.get(a["status"], "")))
    steps = Table("#", "action", "status", "strategy", "ms", "instruction", "error")
    for step in run.get("steps") or []:
        steps.add_row(str(step["index"]), step["action"],
                      Text(step["status"], style=_STYLE.get(step["status"], "")),
                      str(step.get("strategy") or ""), str(step.get("duration_ms") or ""),
                      Text(escape(step.get("instruction") or "", 60)),
                      Text(escape(step.get("error") or "", 60)))
    if run.get("steps"):
        console.print(steps)
