"""``runledger bench resolve``: does the ladder find the element a step means, offline?

A corpus of HTML pages kept in the repository (``resolve_corpus/``), with steps written the
way people write them and the element each means — or ``refuse`` where a careful person
would ask "which one?". Every case is resolved by the executor's DOM ladder (no selector,
no memory, no LLM) in real Chromium, and compared by element identity with the expected
one. Figures: the share resolved to the right element (target ≥ 85 %), wrong-element
resolutions (target 0: a refusal is a failed step, a wrong click is a lie), and the median
resolution time. The baseline is what a naive executor does: the first element whose text,
label or placeholder contains the phrase. Cases marked ``holdout`` were written after the
resolver was tuned on the others and are reported on their own too.

Then the real-world suite (``runledger.bench.realworld``: flows on pages copied from UI
kits' npm packages): the share of flows that end as expected, and wrong actions — steps the
resolver answered with another element than the plain Playwright proof — which must be 0.
"""

from __future__ import annotations

import time
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

from playwright.async_api import Locator, Page, Route
from rich.table import Table

from ledger.artifacts import FileArtifactStore
from ledger.definition import Step
from runledger.bench import realworld
from runledger.bench.harness import Figure, console, median, percentile, report
from runledger.testing import local_site
from worker.agent import AgentExecutor
from worker.agent.browser import ChromiumHost
from worker.agent.errors import StepFailed
from worker.agent.instruction import parse
from worker.agent.popups import PopupGuard
from worker.agent.probe import INSTALL_JS
from worker.agent.resolver import Resolver
from worker.agent.settings import ExecutorConfig

CORPUS = "resolve_corpus"
ORIGIN = "http://corpus.runledger.test"
BUDGET_SECONDS = 1.5


@dataclass(frozen=True)
class Case:
    page: str
    action: str
    instruction: str
    expect: str  # a CSS selector, or "refuse"
    value: str | None = None
    target: str | None = None
    holdout: bool = False  # written after the resolver was tuned, never used to tune it

    @property
    def step(self) -> Step:
        fields: dict[str, Any] = {"action": self.action, "instruction": self.instruction}
        if self.value is not None:
            fields["value"] = self.value
        if self.target is not None:
            fields["target"] = self.target
        return Step(**fields)


@dataclass(frozen=True)
class Verdict:
    case: Case
    outcome: str  # right | wrong | refused
    seconds: float
    detail: str


def corpus_dir() -> Path:
    return Path(str(resources.files("runledger.bench").joinpath(CORPUS)))


def load_cases() -> list[Case]:
    data = tomllib.loads((corpus_dir() / "cases.toml").read_text(encoding="utf-8"))
    return [Case(**case) for case in data["case"]]


async def _serve(route: Route) -> None:
    name = route.request.url.removeprefix(ORIGIN + "/")
    path = corpus_dir() / name
    if path.suffix == ".html" and path.is_file():
        await route.fulfill(body=path.read_text(encoding="utf-8"), content_type="text/html")
    else:
        await route.fulfill(status=404, body="")


# The same target: the element itself, or one wrapping the other with nothing else to act
# on inside (a link around the logo image, a button around its label).
SAME_TARGET = """([a, b]) => {
  if (a === b) return true;
  const [outer, inner] = a.contains(b) ? [a, b] : b.contains(a) ? [b, a] : [null, null];
  if (!outer) return false;
  const active = 'a[href], button, input, select, textarea, [role=button], [role=link], [tabindex]';
  return [...outer.querySelectorAll(active)].every(el => el === inner || inner.contains(el));
}"""


async def _same(page: Page, found: Locator, expect: str) -> bool:
    mine = await found.element_handle(timeout=2000)
    wanted = await page.locator(expect).element_handle(timeout=2000)
    return bool(await page.evaluate(SAME_TARGET, [mine, wanted]))


async def open_page(page: Page, case: Case) -> None:
    await page.goto(f"{ORIGIN}/{case.page}")
    # Playwright sets up its selector engines, accessible-name caches and main-world context
    # in each new document on first use, 30-70 ms here: paid once per page by any Playwright
    # test, so untimed for both contenders (our own script's install stays timed).
    await page.get_by_role("button", name="warm-up").count()
    await page.locator("body").evaluate_all("els => els.length")


async def resolve_case(page: Page, case: Case) -> Verdict:
    await open_page(page, case)
    resolver = Resolver(page, PopupGuard(page, auto_handle=True), strict=False)
    step = case.step
    began = time.perf_counter()
    try:
        found = await resolver.resolve(step, parse(step), None, {},
                                       time.monotonic() + BUDGET_SECONDS)
    except StepFailed as exc:
        seconds = time.perf_counter() - began
        outcome = "right" if case.expect == "refuse" else "refused"
        return Verdict(case, outcome, seconds, f"{exc.kind}: {str(exc)[:120]}")
    seconds = time.perf_counter() - began
    if case.expect == "refuse":
        return Verdict(case, "wrong", seconds, f"guessed {found.spec}")
    right = await _same(page, found.locator, case.expect)
    return Verdict(case, "right" if right else "wrong", seconds, str(found.spec))


async def naive_case(page: Page, case: Case) -> Verdict:
    """The first element whose text, label or placeholder contains the phrase."""
    await open_page(page, case)
    phrase = case.target or parse(case.step).target or case.instruction
    began = time.perf_counter()
    candidate = (page.get_by_text(phrase).or_(page.get_by_label(phrase))
                 .or_(page.get_by_placeholder(phrase)).filter(visible=True).first)
    found = await candidate.count() > 0
    seconds = time.perf_counter() - began
    if not found:
        return Verdict(case, "right" if case.expect == "refuse" else "refused", seconds, "")
    if case.expect == "refuse":
        return Verdict(case, "wrong", seconds, "clicked the first")
    right = await _same(page, candidate, case.expect)
    return Verdict(case, "right" if right else "wrong", seconds, "")


async def run_corpus(rounds: int) -> tuple[list[Verdict], list[Verdict]]:
    host = ChromiumHost(ExecutorConfig())
    await host.open()
    try:
        async with host.context() as (context, _):
            await context.route(f"{ORIGIN}/**", _serve)
            await context.add_init_script(script=INSTALL_JS)  # as the executor does
            page = await context.new_page()
            ours: list[Verdict] = []
            naive: list[Verdict] = []
            cases = load_cases()
            for _ in range(rounds):
                for case in cases:
                    ours.append(await resolve_case(page, case))
                    naive.append(await naive_case(page, case))
            return ours, naive
    finally:
        await host.close()


def figures(ours: list[Verdict], naive: list[Verdict]) -> list[Figure]:
    def share(verdicts: list[Verdict]) -> float:
        return 100.0 * sum(v.outcome == "right" for v in verdicts) / max(1, len(verdicts))

    def count(verdicts: list[Verdict], outcome: str) -> float:
        return float(sum(v.outcome == outcome for v in verdicts))

    def resolved_ms(verdicts: list[Verdict]) -> list[float]:
        return [v.seconds * 1000 for v in verdicts if v.outcome == "right"
                and v.case.expect != "refuse"]

    rounds = max(1, len(ours) // max(1, len(load_cases())))
    held_ours = [v for v in ours if v.case.holdout]
    held_naive = [v for v in naive if v.case.holdout]
    return [
        Figure("resolve: right element (or rightly refused)", share(ours), "%",
               "naive first text match", share(naive)),
        Figure("resolve: same, held-out cases only", share(held_ours), "%",
               "naive first text match", share(held_naive)),
        Figure("resolve: wrong-element resolutions", count(ours, "wrong") / rounds, "count",
               "naive first text match", count(naive, "wrong") / rounds),
        Figure("resolve: refused where an element was meant", count(ours, "refused") / rounds,
               "count", "naive first text match", count(naive, "refused") / rounds),
        Figure("resolve: median resolution time", median(resolved_ms(ours)), "ms",
               "naive first text match", median(resolved_ms(naive))),
        Figure("resolve: p95 resolution time", percentile(resolved_ms(ours), 95), "ms",
               "naive first text match", percentile(resolved_ms(naive), 95)),
    ]


def show_misses(ours: list[Verdict]) -> None:
    seen: set[tuple[str, str]] = set()
    table = Table(title="cases not resolved to the right element")
    for column in ("page", "instruction", "expected", "outcome", "detail"):
        table.add_column(column)
    for verdict in ours:
        key = (verdict.case.page, verdict.case.instruction)
        if verdict.outcome == "right" or key in seen:
            continue
        seen.add(key)
        table.add_row(verdict.case.page, verdict.case.instruction, verdict.case.expect,
                      verdict.outcome, verdict.detail[:90])
    if table.row_count:
        console.print(table)


async def run_realworld() -> tuple[list[realworld.FlowVerdict], list[realworld.Proof]]:
    """The real-world suite: each flow proven with plain Playwright locators (the resolver
    asked before each action, compared with the proof's element), then run through the
    executor (screenshots and traces off)."""
    flows = realworld.load_flows()
    verdicts: list[realworld.FlowVerdict] = []
    proofs: list[realworld.Proof] = []
    host = ChromiumHost(ExecutorConfig())
    await host.open()
    try:
        with TemporaryDirectory(prefix="runledger-realworld-") as tmp, \
                local_site(realworld.ROOT, name="realworld") as url:
            config = ExecutorConfig(artifacts_dir=Path(tmp), screenshots="off", traces="off")
            executor = AgentExecutor(config, artifacts=FileArtifactStore(config.artifacts_dir),
                                     host=host)
            for flow in flows:
                async with host.context() as (context, _):
                    await context.add_init_script(script=INSTALL_JS)
                    proofs.append(await realworld.prove(await context.new_page(), url, flow))
                verdicts.append(await realworld.run_flow(executor, url, flow))
    finally:
        await host.close()
    return verdicts, proofs


def realworld_figures(verdicts: list[realworld.FlowVerdict], proofs: list[realworld.Proof]
                      ) -> list[Figure]:
    steps = sum(p.resolved + p.refused + len(p.wrong) for p in proofs)
    return [
        Figure("resolve: real-world flows as expected",
               100.0 * sum(v.as_expected for v in verdicts) / max(1, len(verdicts)), "%"),
        Figure("resolve: real-world wrong actions (must be 0)",
               float(sum(len(p.wrong) for p in proofs)), "count"),
        Figure("resolve: real-world steps resolved to the proof's element",
               100.0 * sum(p.resolved for p in proofs) / max(1, steps), "%"),
        Figure("resolve: real-world median flow time", median(
            [v.seconds * 1000 for v in verdicts]), "ms"),
    ]


def show_realworld_misses(verdicts: list[realworld.FlowVerdict],
                          proofs: list[realworld.Proof]) -> None:
    table = Table(title="real-world flows not as expected, and wrong resolutions")
    for column in ("flow", "page", "expected", "got"):
        table.add_column(column)
    for verdict in verdicts:
        if not verdict.as_expected:
            table.add_row(verdict.flow.name, verdict.flow.page, verdict.flow.expect,
                          verdict.detail[:90])
    for proof in proofs:
        for wrong in proof.wrong:
            table.add_row(proof.flow.name, proof.flow.page, "the proof's element", wrong[:90])
    if table.row_count:
        console.print(table)


async def main(rounds: int, json_out: Path | None) -> None:
    ours, naive = await run_corpus(rounds)
    show_misses(ours)
    verdicts, proofs = await run_realworld()
    show_realworld_misses(verdicts, proofs)
    cases = len(load_cases())
    pages = len({c.page for c in load_cases()})
    flows = len(verdicts)
    flow_pages = len({v.flow.page for v in verdicts})
    report(f"bench resolve — {cases} cases on {pages} pages, {rounds} round(s), DOM ladder "
           f"only; {flows} real-world flows on {flow_pages} pages",
           [*figures(ours, naive), *realworld_figures(verdicts, proofs)], json_out)
