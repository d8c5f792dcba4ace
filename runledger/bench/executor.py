"""``runledger bench executor``: what the executor costs around Playwright's own work.

One process, one browser, a small test (navigate, fill, fill, check, click, verify) against
a page of the resolve corpus served on 127.0.0.1, run many times:

* **run start** — from ``execute()`` until the first step can begin: a fresh context and
  page on the warm browser, against launching a browser per run (what the system we
  replace does; its launch is timed into the run);
* **per-step overhead** — a step's wall time minus the time spent inside Playwright's action
  call (click, fill …): resolving, bookkeeping, recording. Screenshots and traces off, the
  sink in memory; locator memory learns from each run (the follower's fold, in memory), so
  after the first run steps take the memory rung as they do in production. A bare
  ``page.evaluate`` round trip is timed alongside: resolving costs at least one;
* **memory** — the browser's process tree and this process's RSS every few runs, over
  ``--runs`` runs with ``BROWSER_MAX_RUNS`` recycling: it must stay bounded;
* **against a plain script** — the same flow with the defaults (a screenshot per step, a
  trace), alternating with the flow written as a plain Playwright script doing the same
  evidence work (role and label locators, ``page.screenshot`` after each step, a saved
  trace) on the same browser: the ratio's target is at most 1.2;
* **time to fail** on a missing element: "not found" within ``NOT_FOUND_SECONDS`` + 1 s
  (Playwright's own default would wait 30 s).
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import psutil
from playwright.async_api import expect

from ledger.artifacts import FileArtifactStore
from ledger.codec import RecordedEvent
from ledger.definition import parse_steps
from projections.locator_memory import MemoryEntry, fold, normalise_instruction, observe
from runledger.bench.harness import Figure, console, median, percentile, report
from runledger.bench.resolve import corpus_dir
from runledger.testing import local_site
from worker.agent import AgentExecutor, ExecutorConfig
from worker.ports import RunJob, StepResult

STEPS: list[dict[str, Any]] = [
    {"action": "navigate", "instruction": "Open the sign-in page"},
    {"action": "fill", "instruction": "Enter 'ada@example.com' in the email field",
     "value": "ada@example.com"},
    {"action": "fill", "instruction": "Type the password", "value": "hunter2"},
    {"action": "check", "instruction": "Tick 'Keep me signed in'"},
    {"action": "click", "instruction": "Click the Sign in button"},
    {"action": "verify", "instruction": "Still on Acme", "expected": "Sign in to Acme"},
]


class MemoryOfResults:
    """Locator memory in this process: the follower's fold over the runs' step results."""

    def __init__(self) -> None:
        self.entries: dict[str, MemoryEntry] = {}

    async def for_steps(self, steps: list[tuple[str, str, str | None]]
                        ) -> dict[str, MemoryEntry]:
        wanted = {(a, normalise_instruction(i, v)) for a, i, v in steps}
        return {k: e for k, e in self.entries.items() if (e.action, e.instruction) in wanted}

    def learn(self, result: StepResult) -> None:
        event = RecordedEvent(0, uuid.uuid4(), 0, "step", "2030-01-01T00:00:00+00:00", {
            "action": result.action, "instruction": result.instruction, "status": result.status,
            "url": result.url, "details": result.details,
        })
        seen = observe(event)
        if seen is not None:
            entry = fold(self.entries.get(seen.key), seen)
            if entry is None:
                self.entries.pop(seen.key, None)
            else:
                self.entries[seen.key] = entry


class TimingSink:
    """Keeps the results and when the first one arrived."""

    def __init__(self, memory: MemoryOfResults | None = None) -> None:
        self.results: list[StepResult] = []
        self.first_at: float | None = None
        self._memory = memory

    async def record(self, result: StepResult) -> None:
        if self.first_at is None:
            self.first_at = time.perf_counter()
        self.results.append(result)
        if self._memory is not None:
            self._memory.learn(result)


def job(site: str) -> RunJob:
    return RunJob(run_id=uuid.uuid4(), test_id="bench-login", test_name="bench login",
                  url=f"{site}/01_login.html", steps=parse_steps(STEPS),
                  auto_handle_popups=True, attempt=1)


def run_start_ms(began: float, sink: TimingSink) -> float:
    """Time from ``execute()`` to the start of step 0 (its own duration taken out)."""
    assert sink.first_at is not None
    first = sink.results[0]
    return (sink.first_at - began) * 1000 - first.details["timing"]["total_ms"]


def overheads(results: list[StepResult]) -> dict[str, list[float]]:
    """Per strategy (and ``all``), each step's wall time beyond Playwright's action call;
    ``outside`` is what is left once the resolution's own page calls are taken out too."""
    out: dict[str, list[float]] = {"all": [], "outside": []}
    for result in results:
        timing = result.details.get("timing") or {}
        extra = (timing["total_ms"] - timing.get("action_ms", 0.0)
                 - timing.get("screenshot_ms", 0.0))
        out["all"].append(extra)
        out["outside"].append(extra - timing.get("probe_ms", 0.0))
        out.setdefault(result.strategy or "none", []).append(extra)
    return out


def tree_rss(pid: int) -> int:
    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    total = 0
    for process in processes:
        try:
            total += process.memory_info().rss
        except psutil.NoSuchProcess:
            continue
    return total


def browser_rss(tag: str) -> int:
    total = 0
    for process in psutil.process_iter(["cmdline"]):
        cmdline = process.info.get("cmdline") or []
        if any(tag in part for part in cmdline) and not any("--type=" in p for p in cmdline):
            total += tree_rss(process.pid)
    return total


async def measure(runs: int, cold_runs: int, artifacts: Path
                  ) -> tuple[list[Figure], list[tuple[int, int, int]]]:
    with local_site(corpus_dir(), name="bench-site") as site:
        config = ExecutorConfig(screenshots="off", traces="off", artifacts_dir=artifacts,
                                retention_interval_seconds=3600)
        memory = MemoryOfResults()
        executor = AgentExecutor(config, artifacts=FileArtifactStore(artifacts), memory=memory)
        await executor.open()
        try:
            warm, extra, samples = await _warm_runs(executor, memory, site, runs)
            trips = await round_trip_ms(executor, site)
            full = await _with_artifacts(artifacts, site, min(20, runs))
        finally:
            await executor.close()
        cold = [await _cold_run(site, artifacts) for _ in range(cold_runs)]
    return _figures(warm, cold, extra, trips, samples, full, runs,
                    config.not_found_seconds), samples


async def _warm_runs(executor: AgentExecutor, memory: MemoryOfResults, site: str, runs: int
                     ) -> tuple[list[float], dict[str, list[float]], list[tuple[int, int, int]]]:
    process = psutil.Process()
    starts: list[float] = []
    extra: dict[str, list[float]] = {}
    samples: list[tuple[int, int, int]] = []
    for number in range(1, runs + 1):
        sink = TimingSink(memory)
        began = time.perf_counter()
        outcome = await executor.execute(job(site), sink)
        if outcome.status != "passed":
            raise RuntimeError(f"bench run {number} failed: {outcome.error}")
        starts.append(run_start_ms(began, sink))
        if number > 1:  # the first run learns; the rest is the steady state
            for strategy, values in overheads(sink.results).items():
                extra.setdefault(strategy, []).extend(values)
        if number % 10 == 0 or number == 1:
            samples.append((number, browser_rss(executor.host.tag), process.memory_info().rss))
    return starts, extra, samples


async def round_trip_ms(executor: AgentExecutor, site: str, count: int = 200) -> list[float]:
    """A bare ``page.evaluate("1")``: the floor of any call into the page, same conditions."""
    async with executor.host.context() as (context, _):
        page = await context.new_page()
        await page.goto(f"{site}/01_login.html")
        samples = []
        for _ in range(count):
            began = time.perf_counter()
            await page.evaluate("1")
            samples.append((time.perf_counter() - began) * 1000)
        return samples


async def _cold_run(site: str, artifacts: Path) -> float:
    config = ExecutorConfig(screenshots="off", traces="off", artifacts_dir=artifacts)
    executor = AgentExecutor(config, artifacts=FileArtifactStore(artifacts))
    sink = TimingSink()
    began = time.perf_counter()
    await executor.open()  # the browser launch is part of this run's start
    try:
        await executor.execute(job(site), sink)
    finally:
        await executor.close()
    return run_start_ms(began, sink)


async def _with_artifacts(artifacts: Path, site: str, runs: int
                          ) -> tuple[list[float], list[float], list[float]]:
    """Run durations with the defaults (a screenshot per step, a trace per run), alternating
    with the same flow written as a plain Playwright script that does the same evidence
    work, on the same browser; and the time to fail on a missing element."""
    config = ExecutorConfig(artifacts_dir=artifacts, retention_interval_seconds=3600)
    executor = AgentExecutor(config, artifacts=FileArtifactStore(artifacts))
    await executor.open()
    try:
        ours: list[float] = []
        script: list[float] = []
        for _ in range(runs):
            began = time.perf_counter()
            outcome = await executor.execute(job(site), TimingSink())
            if outcome.status != "passed":
                raise RuntimeError(f"bench run failed: {outcome.error}")
            ours.append((time.perf_counter() - began) * 1000)
            script.append(await plain_script_ms(executor, site, artifacts))
        missing = [await _missing_ms(executor, site) for _ in range(3)]
        return ours, script, missing
    finally:
        await executor.close()


async def plain_script_ms(executor: AgentExecutor, site: str, out: Path) -> float:
    """The bench flow as a person writes it with Playwright: role and label locators, a
    screenshot saved after each step, a trace of the run saved — timed whole."""
    shots = out / "script"
    shots.mkdir(parents=True, exist_ok=True)
    began = time.perf_counter()
    async with executor.host.context() as (context, _):
        await context.tracing.start(screenshots=True, snapshots=True)
        page = await context.new_page()
        steps = [
            lambda: page.goto(f"{site}/01_login.html"),
            lambda: page.get_by_label("Email address").fill("ada@example.com"),
            lambda: page.get_by_label("Password").fill("hunter2"),
            lambda: page.get_by_label("Keep me signed in").check(),
            lambda: page.get_by_role("button", name="Sign in").click(),
            lambda: expect(page.get_by_text("Sign in to Acme")).to_be_visible(),
        ]
        for index, step in enumerate(steps):
            await step()
            await page.wait_for_load_state("load")  # the click may have started a navigation
            await page.screenshot(path=shots / f"{index}.png")
        await context.tracing.stop(path=out / "script-trace.zip")
    return (time.perf_counter() - began) * 1000


async def _missing_ms(executor: AgentExecutor, site: str) -> float:
    """From the step's start to its "not found" failure, for a button the page lacks."""
    steps = parse_steps([{"action": "click", "instruction": "Click the 'Export' button"}])
    run = RunJob(run_id=uuid.uuid4(), test_id="bench-missing", test_name="bench missing",
                 url=f"{site}/01_login.html", steps=steps, auto_handle_popups=True, attempt=1)
    sink = TimingSink()
    outcome = await executor.execute(run, sink)
    if outcome.status != "failed" or sink.results[0].details.get("error_kind") != "not_found":
        raise RuntimeError(f"the missing element did not fail as not found: {outcome.error}")
    return float(sink.results[0].duration_ms)


def _figures(warm: list[float], cold: list[float], extra: dict[str, list[float]],
             trips: list[float], samples: list[tuple[int, int, int]],
             full: tuple[list[float], list[float], list[float]], runs: int,
             not_found_seconds: float) -> list[Figure]:
    ours, script, missing = full
    mb = 1024 * 1024
    steady = [s for s in samples if s[0] >= 10] or samples
    figures = [
        Figure("run start (context + page)", median(warm), "ms",
               "browser launched per run", median(cold)),
        Figure("run start p95", percentile(warm, 95), "ms",
               "browser launched per run", percentile(cold, 95)),
        Figure("per-step overhead beyond the action, median", median(extra["all"]), "ms",
               "target", 5.0),
        Figure("per-step overhead, p95", percentile(extra["all"], 95), "ms"),
        Figure("per-step time outside any Playwright call, median",
               median(extra["outside"]), "ms", "target", 5.0),
        Figure("one Playwright round trip (page.evaluate), median", median(trips), "ms"),
    ]
    for strategy in ("memory", "dom", "none"):
        if extra.get(strategy):
            figures.append(Figure(f"per-step overhead, {strategy} steps, median",
                                  median(extra[strategy]), "ms"))
    figures += [
        Figure("browser RSS after 10 runs", steady[0][1] / mb, "MiB"),
        Figure(f"browser RSS, max over {runs} runs", max(s[1] for s in steady) / mb, "MiB",
               "after 10 runs", steady[0][1] / mb),
        Figure(f"worker RSS after {runs} runs", samples[-1][2] / mb, "MiB",
               "after 10 runs", steady[0][2] / mb),
        Figure("run duration with screenshots + trace (6 steps)", median(ours), "ms",
               "plain Playwright script, same evidence", median(script)),
        Figure("run time / plain script time (target ≤ 1.2)",
               median(ours) / max(median(script), 1e-9), "x"),
        Figure("time to fail on a missing element", median(missing), "ms",
               "target: NOT_FOUND_SECONDS + 1 s", (not_found_seconds + 1) * 1000),
    ]
    return figures


def show_memory(samples: list[tuple[int, int, int]]) -> None:
    console.print("RSS samples (run: browser MiB / worker MiB): " + ", ".join(
        f"{n}: {b / 2**20:.0f}/{w / 2**20:.0f}" for n, b, w in samples))


async def main(runs: int, cold_runs: int, json_out: Path | None) -> None:
    with TemporaryDirectory(prefix="runledger-bench-artifacts-") as tmp:
        figures, samples = await measure(runs, cold_runs, Path(tmp))
    show_memory(samples)
    report(f"bench executor — {runs} warm runs, {cold_runs} cold, {len(STEPS)} steps each",
           figures, json_out)
