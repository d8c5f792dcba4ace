"""The real-world suite: flows on pages from widely used UI kits and example apps.

The pages live in ``tests/executor/realworld/`` (copied from their npm packages, with their
licences) and ``flows.toml`` there holds the flows: steps written as a QA engineer writes
them, each step with ``pw``, the plain Playwright locator (codegen syntax) that proves the
step can be done. For each flow:

* ``prove`` runs the flow with those plain locators (Playwright's own actions and web-first
  ``expect``), and on the way asks the executor's resolver, before each action, which
  element the step's words mean: an element other than the proof's is a **wrong action**
  (it must never happen); a refusal is counted, never guessed past;
* ``run_flow`` runs the same steps through the ``AgentExecutor``: it must end as the flow
  says (``passed``, or failed at ``fails_at`` with the expected error kind).

Used by the CI test (``tests/executor/test_realworld.py``) and ``runledger bench resolve``.
"""

from __future__ import annotations

import re
import time
import tomllib
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

from playwright.async_api import Locator, Page, expect

from ledger.definition import navigate_place, parse_steps
from ledger.verify import read_check
from worker.agent import AgentExecutor
from worker.agent.actions import key_chord
from worker.agent.errors import StepFailed
from worker.agent.instruction import parse
from worker.agent.locators import LocatorSpec
from worker.agent.popups import PopupGuard
from worker.agent.resolver import Resolver
from worker.ports import RunJob, StepResult

ROOT = Path(__file__).resolve().parents[2] / "tests" / "executor" / "realworld"
_PROOF_KEYS = ("pw", "pw_absent")
# Steps that act on one element: the resolver's choice is compared with the proof's.
_ACTING = {"click", "fill", "check", "uncheck", "select", "hover", "double_click",
           "right_click", "press", "upload", "drag", "scroll"}
RESOLVE_SECONDS = 3.0
EXPECT_MS = 5000

# The same target: the element itself, or one wrapping the other with nothing else to act
# on inside (a label around its checkbox, a link around its image).
SAME_TARGET = """([a, b]) => {
  if (a === b) return true;
  if (a.labels && [...a.labels].includes(b) || b.labels && [...b.labels].includes(a)) return true;
  const [outer, inner] = a.contains(b) ? [a, b] : b.contains(a) ? [b, a] : [null, null];
  if (!outer) return false;
  const active = 'a[href], button, input, select, textarea, [role=button], [role=link], [tabindex]';
  return [...outer.querySelectorAll(active)].every(el => el === inner || inner.contains(el));
}"""


@dataclass(frozen=True)
class Flow:
    name: str
    page: str
    steps: list[dict[str, Any]]
    expect: str = "passed"
    fails_at: int | None = None

    def runledger_steps(self) -> list[dict[str, Any]]:
        return [{k: v for k, v in step.items() if k not in _PROOF_KEYS} for step in self.steps]


@dataclass
class Proof:
    """What the plain-Playwright run of a flow showed, step by step."""

    flow: Flow
    resolved: int = 0  # steps the resolver answered with the proof's element
    refused: int = 0  # steps it refused (not found / ambiguous)
    wrong: list[str] = field(default_factory=list)  # steps it answered with another element


@dataclass(frozen=True)
class FlowVerdict:
    flow: Flow
    as_expected: bool
    status: str
    detail: str
    seconds: float


def load_flows(root: Path = ROOT) -> list[Flow]:
    data = tomllib.loads((root / "flows.toml").read_text(encoding="utf-8"))
    flows = [Flow(**flow) for flow in data["flow"]]
    for flow in flows:
        parse_steps(flow.runledger_steps())  # a malformed flow fails here, by name
    return flows


def job(base_url: str, flow: Flow) -> RunJob:
    return RunJob(run_id=uuid.uuid4(), test_id=f"realworld-{flow.name}", test_name=flow.name,
                  url=urljoin(base_url + "/", flow.page),
                  steps=parse_steps(flow.runledger_steps()), auto_handle_popups=True,
                  attempt=1)


class _Sink:
    def __init__(self) -> None:
        self.results: list[StepResult] = []

    async def record(self, result: StepResult) -> None:
        self.results.append(result)


async def run_flow(executor: AgentExecutor, base_url: str, flow: Flow) -> FlowVerdict:
    """The flow through the executor, judged against what it expects."""
    sink = _Sink()
    began = time.perf_counter()
    outcome = await executor.execute(job(base_url, flow), sink)
    seconds = time.perf_counter() - began
    if flow.expect == "passed":
        ok = outcome.status == "passed"
        detail = "" if ok else f"step {outcome.error_step}: {outcome.error}"
        return FlowVerdict(flow, ok, outcome.status, detail, seconds)
    failed = sink.results[-1] if sink.results else None
    kind = failed.details.get("error_kind") if failed is not None else None
    ok = (outcome.status == "failed" and outcome.error_step == flow.fails_at
          and kind == flow.expect)
    return FlowVerdict(flow, ok, outcome.status,
                       f"step {outcome.error_step} {kind}: {outcome.error}", seconds)


async def prove(page: Page, base_url: str, flow: Flow, *, compare: bool = True) -> Proof:
    """Run ``flow`` with its plain Playwright locators (``AssertionError`` when a step cannot
    be done that way); with ``compare``, the resolver's answer for each acting step is
    compared with the proof's element first."""
    proof = Proof(flow)
    url = urljoin(base_url + "/", flow.page)
    await page.goto(url)
    resolver = Resolver(page, PopupGuard(page, auto_handle=True), strict=False,
                        not_found_seconds=1.0)
    steps = parse_steps(flow.runledger_steps())
    for index, (raw, step) in enumerate(zip(flow.steps, steps, strict=True)):
        where = f"{flow.name!r} step {index} ({step.action.value})"
        locator = LocatorSpec.parse(raw["pw"]).build(page) if raw.get("pw") else None
        if raw.get("pw_absent"):
            assert locator is not None, f"{where}: pw_absent needs pw"
            await expect(locator).to_have_count(0, timeout=EXPECT_MS)
            continue
        if compare and step.action.value in _ACTING and locator is not None:
            await _compare(page, resolver, step, locator, proof, where)
        await _perform(page, url, step, locator, where)
    return proof


async def _compare(page: Page, resolver: Resolver, step: Any, locator: Locator, proof: Proof,
                   where: str) -> None:
    await locator.wait_for(state="visible", timeout=EXPECT_MS)
    try:
        found = await resolver.resolve(step, parse(step), None, {},
                                       time.monotonic() + RESOLVE_SECONDS)
    except StepFailed:
        proof.refused += 1
        return
    mine = await found.locator.element_handle(timeout=2000)
    wanted = await locator.element_handle(timeout=2000)
    if await page.evaluate(SAME_TARGET, [mine, wanted]):
        proof.resolved += 1
    else:
        proof.wrong.append(f"{where}: resolved {found.spec}, the proof uses {locator}")


async def _perform(page: Page, url: str, step: Any, locator: Locator | None, where: str
                   ) -> None:
    action = step.action.value
    timeout = EXPECT_MS
    if action == "navigate":
        place = navigate_place(step)
        await page.goto(urljoin(url, place) if place else url)
        return
    if action == "assert_url":
        pattern = re.escape(step.expected or "").replace(r"\*", ".*")
        await expect(page).to_have_url(re.compile(pattern), timeout=timeout)
        return
    if action == "press" and locator is None:
        await page.keyboard.press(key_chord(step.value or ""))
        return
    if action == "go_back":
        await page.go_back()
        return
    if action == "reload":
        await page.reload()
        return
    assert locator is not None, f"{where}: the step has no plain locator (pw)"
    if action == "verify":
        await _check(page, step, locator)
        return
    calls: dict[str, Any] = {
        "click": lambda: locator.click(timeout=timeout),
        "double_click": lambda: locator.dblclick(timeout=timeout),
        "right_click": lambda: locator.click(button="right", timeout=timeout),
        "hover": lambda: locator.hover(timeout=timeout),
        "fill": lambda: locator.fill(step.value or "", timeout=timeout),
        "press": lambda: locator.press(key_chord(step.value or ""), timeout=timeout),
        "check": lambda: locator.check(timeout=timeout),
        "uncheck": lambda: locator.uncheck(timeout=timeout),
        "select": lambda: locator.select_option(label=step.value, timeout=timeout),
        "scroll": lambda: locator.scroll_into_view_if_needed(timeout=timeout),
    }
    await calls[action]()


async def _check(page: Page, step: Any, locator: Locator) -> None:
    reading = read_check(step.instruction, step.state.value if step.state else None)
    kind = reading.kind
    timeout = EXPECT_MS
    if kind in ("text", "visible"):
        await expect(locator.first if kind == "text" else locator).to_be_visible(
            timeout=timeout)
    elif kind == "hidden":
        await expect(locator).to_be_hidden(timeout=timeout)
    elif kind == "value":
        await expect(locator).to_have_value(step.expected or "", timeout=timeout)
    elif kind in ("checked", "unchecked") and await locator.get_attribute("aria-selected"):
        # A tab is "selected", not checked.
        await expect(locator).to_have_attribute(
            "aria-selected", "true" if kind == "checked" else "false", timeout=timeout)
    elif kind == "checked":
        await expect(locator).to_be_checked(timeout=timeout)
    elif kind == "unchecked":
        await expect(locator).not_to_be_checked(timeout=timeout)
    elif kind == "enabled":
        await expect(locator).to_be_enabled(timeout=timeout)
    elif kind == "disabled":
        await expect(locator).to_be_disabled(timeout=timeout)
    elif kind == "count":
        wanted = int(step.expected) if step.expected else reading.count or 0
        await expect(locator).to_have_count(wanted, timeout=timeout)
    elif kind == "title":
        await expect(page).to_have_title(re.compile(re.escape(step.expected or "")),
                                         timeout=timeout)
    else:
        raise AssertionError(f"no plain check for a {kind} check")
