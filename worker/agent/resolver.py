"""The locator ladder: find exactly one element for a step, or say precisely why not.

Rungs, in order: the step's ``advanced_selector`` → the remembered locator (validated on
the page, its element still like the one remembered) → the DOM heuristics of the
instruction → fingerprint healing (the remembered element's closest visible look-alike) →
the LLM plug-in when configured. The whole ladder is retried every ~250 ms until the step's
deadline (elements arrive late); an ambiguity that persists for a second fails the step
at once rather than waiting out the budget.

A stored locator (selector or memory) that was tried and failed, followed by another rung
succeeding, is a *heal*: recorded with the old and new locator, refused under
``HEALING=strict``. A heal is never silent.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from typing import Any

from playwright.async_api import Error as PlaywrightError
from playwright.async_api import Locator, Page

from ledger.definition import Step
from projections.locator_memory import MemoryEntry
from worker.agent.candidates import opposite_of
from worker.agent.dom import Decision, DomSearch, Finding
from worker.agent.errors import AmbiguousTarget, CaptchaDetected, HealRefused, TargetNotFound
from worker.agent.instruction import Intent
from worker.agent.llm import Advice, AdviceRequest, LocatorAdvisor
from worker.agent.locators import InvalidLocator, LocatorSpec
from worker.agent.popups import PopupGuard
from worker.agent.probe import (
    Match,
    NetworkActivity,
    PageState,
    named_elements,
    probe_one,
    probe_options,
    scan,
    settled,
    similarity,
)
from worker.agent.untraced import traced, untraced

log = logging.getLogger(__name__)

RETRY_SECONDS = 0.25
AMBIGUITY_SETTLE_SECONDS = 1.0
NOT_FOUND_SECONDS = 5.0
#: "not found" lists this many of the page's elements most like the phrase
CLOSEST = 3
CLOSEST_BUDGET_SECONDS = 0.5
HEAL_THRESHOLD = 0.5
HEAL_MARGIN = 0.1
INTERACTIONS = {"click", "fill", "select", "check", "uncheck", "press", "hover"}


@dataclass
class Resolution:
    """The element a step acts on, and how it was found (for the step event)."""

    locator: Locator
    spec: LocatorSpec
    strategy: str  # selector | memory | dom | llm
    match: Match
    healed: bool = False
    heal: dict[str, Any] | None = None
    table: list[list[Any]] = field(default_factory=list)

    def details(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "strategy": self.strategy, "locator": str(self.spec),
            "fingerprint": self.match.fingerprint,
        }
        if self.heal:
            out["heal"] = self.heal
        if self.table:
            out["candidates"] = self.table
        return out


@dataclass
class _Attempt:
    """What the rungs found in one pass, kept for the failure message."""

    stored: list[dict[str, Any]] = field(default_factory=list)  # stale selector / memory
    decision: Decision | None = None
    advice: str | None = None


class Resolver:
    """Resolves the targets of one run's steps on its page."""

    def __init__(
        self, page: Page, popups: PopupGuard, *, strict: bool,
        advisor: LocatorAdvisor | None = None, not_found_seconds: float = NOT_FOUND_SECONDS,
    ) -> None:
        self._page = page
        self._popups = popups
        self._strict = strict
        self._advisor = advisor
        self._not_found_seconds = not_found_seconds
        self._network = NetworkActivity(page)
        #: of the last ``resolve``: time spent waiting for the browser's answers
        self.browser_ms = 0.0

    async def resolve(
        self, step: Step, intent: Intent, memory: MemoryEntry | None, memory_info: dict[str, Any],
        deadline: float, *, use_selector: bool = True,
    ) -> Resolution:
        """The step's element, or ``StepFailed`` (``memory_info['result']`` is updated).
        ``use_selector=False`` ignores the step's ``advanced_selector`` (helper elements)."""
        searches: list[DomSearch] = []
        try:
            # The resolver's probes are its own reading of the page: kept out of the trace.
            return await untraced(lambda: self._ladder(
                step, intent, memory, memory_info, deadline, use_selector, searches))
        finally:
            self.browser_ms = sum(s.browser_ms for s in searches)

    async def _ladder(
        self, step: Step, intent: Intent, memory: MemoryEntry | None,
        memory_info: dict[str, Any], deadline: float, use_selector: bool,
        searches: list[DomSearch],
    ) -> Resolution:
        options = probe_options("verify" if intent.lenient else intent.action)
        # Nothing found on a settled page fails after NOT_FOUND_SECONDS; a page still
        # loading or changing may take the step's whole time to show it.
        give_up_at = min(deadline, time.monotonic() + self._not_found_seconds)
        ambiguous_since: float | None = None
        asked = False
        advice: str | None = None
        while True:
            attempt = _Attempt(advice=advice)
            search = DomSearch(self._page, options)
            searches.append(search)
            selector = step.advanced_selector if use_selector else None
            found = await self._stored(selector, memory, memory_info, search, attempt)
            if found is None:
                found = await self._heuristics(intent, search, attempt)
            if found is None and memory and memory.fingerprint and attempt.stored:
                found = await self._fingerprint_heal(intent, memory, search, attempt)
            if found is None and self._advisor and not asked and _worth_asking(attempt):
                asked = True
                found = await self._ask(step, intent, search, attempt)
                advice = attempt.advice  # the model is asked once; its answer is kept
            if found is not None and attempt.stored:
                # The element may have arrived between the stored locator's check and the
                # heuristics': look again before calling it a heal.
                again = await self._stored(selector, memory, memory_info, search, _Attempt())
                found = again or found
            if intent.action in INTERACTIONS:
                self._check_blockers(search.state)
            if found is not None:
                return self._settle(found, attempt, memory_info)
            now = time.monotonic()
            if attempt.decision and attempt.decision.kind == "ambiguous":
                ambiguous_since = ambiguous_since or now
                if now - ambiguous_since >= AMBIGUITY_SETTLE_SECONDS or now >= deadline:
                    raise _ambiguous(attempt.decision)
            else:
                ambiguous_since = None
            if now + RETRY_SECONDS >= deadline or (
                    ambiguous_since is None and now >= give_up_at
                    and await settled(self._page, self._network)):
                raise await self._not_found(intent, attempt, search.state)
            await asyncio.sleep(RETRY_SECONDS)

    async def _not_found(self, intent: Intent, attempt: _Attempt, state: PageState
                         ) -> TargetNotFound:
        error = _not_found(intent, attempt, state, self._popups.auto_handle)
        phrase = intent.target or " ".join(intent.quoted)
        if not phrase:
            return error
        try:
            # Traced: the trace then holds a snapshot of the page the step failed on.
            rows = await traced(lambda: named_elements(self._page))
        except PlaywrightError:
            return error  # the page went away meanwhile: the finding stands without hints
        nearest = await asyncio.to_thread(closest_rows, phrase, rows, CLOSEST,
                                          CLOSEST_BUDGET_SECONDS)
        if nearest:
            error.details["closest"] = [list(row) for row in nearest]
            shown = "; ".join(f"{role} {name or text!r}" + (
                f" (text {text!r})" if name and text and text != name else "")
                for role, name, text in nearest)
            error.args = (f"{error}; closest on the page: {shown}",)
        return error

    # -- rungs ------------------------------------------------------------------------------

    async def _stored(
        self, selector: str | None, memory: MemoryEntry | None, memory_info: dict[str, Any],
        search: DomSearch, attempt: _Attempt,
    ) -> Resolution | None:
        if selector:
            spec = LocatorSpec.css(selector)
            found = await self._validate(spec, search, None)
            if isinstance(found, Match):
                return Resolution(spec.build(self._page), spec, "selector", found)
            attempt.stored.append({"from": "selector", "locator": str(spec), "problem": found})
        if memory is None:
            return None
        if not memory.reliable:
            memory_info["result"] = "unreliable"
            return None
        try:
            spec = LocatorSpec.parse(memory.locator)
        except InvalidLocator:
            memory_info["result"] = "miss"
            return None
        found = await self._validate(spec, search, memory.fingerprint)
        if isinstance(found, Match):
            memory_info["result"] = "hit"
            return Resolution(spec.build(self._page), spec, "memory", found)
        memory_info["result"] = "miss"
        attempt.stored.append({"from": "memory", "locator": str(spec), "problem": found})
        return None

    async def _validate(
        self, spec: LocatorSpec, search: DomSearch, fingerprint: dict[str, Any] | None
    ) -> Match | str:
        """The one actionable element ``spec`` matches, or what is wrong with it."""
        try:
            found = await search.probe(spec)
        except PlaywrightError as exc:
            if _is_selector_error(exc):
                # A malformed user selector is a finding about the step, not a crash.
                return f"is not a valid selector: {str(exc).splitlines()[0][:200]}"
            raise
        await self._sweep(search)
        matches = found.usable(modal_only=found.page.modal)
        if len(matches) != 1:
            return f"matched {len(matches)} visible elements" + (
                f" ({found.hidden} hidden)" if found.hidden else "")
        match = matches[0]
        if not match.ok:
            return "matched one element, but it is disabled or not editable"
        if fingerprint:
            score = similarity(fingerprint, match.fingerprint)
            if score < HEAL_THRESHOLD:
                return f"matched an element unlike the remembered one (similarity {score})"
        return match

    async def _heuristics(self, intent: Intent, search: DomSearch, attempt: _Attempt
                          ) -> Resolution | None:
        if not (intent.target or intent.candidate_roles):
            return None
        decision = await search.run(intent)
        if await self._sweep(search):
            decision = await search.run(intent)
        attempt.decision = decision
        if decision.kind != "winner" or decision.finding is None or decision.match is None:
            return None
        spec = decision.finding.spec
        return Resolution(spec.build(self._page), spec, "dom", decision.match,
                          table=decision.table)

    async def _fingerprint_heal(
        self, intent: Intent, memory: MemoryEntry, search: DomSearch, attempt: _Attempt
    ) -> Resolution | None:
        """The visible element most like the remembered one, when clearly the most alike."""
        said = [p for p in (intent.target, str(memory.fingerprint.get("name") or "")) if p]
        scored = sorted(
            ((similarity(memory.fingerprint, m.fingerprint), m)
             for m in await scan(self._page, memory.fingerprint, intent.action)
             # "Unsubscribe" where "Subscribe" was remembered is alike, and its opposite.
             if m.ok and not any(opposite_of(p, str(m.fingerprint.get(key) or ""))
                                 for p in said for key in ("name", "text"))),
            key=lambda pair: pair[0], reverse=True,
        )
        if not scored or scored[0][0] < HEAL_THRESHOLD:
            return None
        if len(scored) > 1 and scored[0][0] - scored[1][0] < HEAL_MARGIN:
            return None
        score, match = scored[0]
        spec = await describe(search, match)
        if spec is None:
            return None
        resolution = Resolution(spec.build(self._page), spec, "memory", match)
        resolution.heal = {"similarity": score}
        return resolution

    async def _ask(self, step: Step, intent: Intent, search: DomSearch, attempt: _Attempt
                   ) -> Resolution | None:
        assert self._advisor is not None
        root = self._page.locator("body")
        snapshot = await root.aria_snapshot(mode="ai")
        request = AdviceRequest(
            action=intent.action, instruction=step.instruction, target=intent.target,
            snapshot=snapshot, candidates=[row[0] for row in (attempt.decision.table
                                                              if attempt.decision else [])],
        )
        advice: Advice | None = await self._advisor.advise(request)
        if advice is None or advice.ref is None:
            attempt.advice = advice.reason if advice else "the LLM plug-in gave no answer"
            return None
        try:
            found = await probe_one(self._page.locator(f"aria-ref={advice.ref}"), search.options)
        except PlaywrightError:
            found = None
        if found is None or len(found.matches) != 1 or not found.matches[0].ok:
            attempt.advice = f"the LLM suggested {advice.ref}, which is not one actionable element"
            return None
        match = found.matches[0]
        spec = await describe(search, match)
        if spec is None:
            attempt.advice = "the LLM's element has no stable locator"
            return None
        return Resolution(spec.build(self._page), spec, "llm", match)

    # -- outcome ----------------------------------------------------------------------------

    def _settle(self, found: Resolution, attempt: _Attempt, memory_info: dict[str, Any]
                ) -> Resolution:
        if not attempt.stored or found.strategy == "selector":
            return found
        old = attempt.stored[0]
        found.healed = True
        found.heal = {
            "from": old["from"], "old": old["locator"], "new": str(found.spec),
            "problem": old["problem"], "strategy": found.strategy,
            **(found.heal or {}),
        }
        if found.strategy == "memory" and old["from"] == "memory":
            memory_info["result"] = "miss"  # healed by fingerprint: the locator itself failed
        if self._strict:
            raise HealRefused(
                f"HEALING=strict: the {_what(old['from'])} {old['locator']} {old['problem']}; "
                f"healing would have used {found.spec} ({found.strategy})",
                details={"heal": found.heal},
            )
        log.info("healed %s %s -> %s (%s)", old["from"], old["locator"], found.spec,
                 found.strategy)
        return found

    def _check_blockers(self, state: PageState) -> None:
        # Acting next to a visible CAPTCHA cannot get the test anywhere; checks still can.
        if state.captcha:
            raise CaptchaDetected(
                f"a CAPTCHA ({state.captcha}) blocks the page; runledger does not solve "
                "CAPTCHAs — use a test environment without one",
                details={"captcha": state.captcha},
            )

    async def _sweep(self, search: DomSearch) -> bool:
        consent = search.state.consent
        if not consent:
            return False
        # Dismissing a banner is an action on the page: the trace shows it.
        if await traced(lambda: self._popups.sweep(consent)):
            search.state = PageState(search.state.modal, search.state.captcha, None)
            return True
        return False


async def describe(search: DomSearch, match: Match) -> LocatorSpec | None:
    """A locator that finds exactly ``match`` (by its fingerprint), most readable first."""
    fp = match.fingerprint
    attrs = fp.get("attrs") or {}
    options: list[LocatorSpec] = []
    if attrs.get("data-testid"):
        options.append(LocatorSpec.of("get_by_test_id", attrs["data-testid"]))
    if fp.get("role") not in (None, "generic") and fp.get("name"):
        options.append(LocatorSpec.of("get_by_role", fp["role"], name=fp["name"], exact=True))
    if attrs.get("placeholder"):
        options.append(LocatorSpec.of("get_by_placeholder", attrs["placeholder"], exact=True))
    if fp.get("text"):
        options.append(LocatorSpec.of("get_by_text", fp["text"], exact=True))
    if fp.get("id") and not any(ch.isdigit() for ch in fp["id"]):
        options.append(LocatorSpec.css(f'[id="{fp["id"]}"]'))
    if attrs.get("name"):
        options.append(LocatorSpec.css(f'{fp.get("tag", "*")}[name="{attrs["name"]}"]'))
    positional: LocatorSpec | None = None
    for spec in options:
        found = await search.probe(spec)
        ids = [m.id for m in found.matches]
        if ids == [match.id]:
            return spec
        if positional is None and match.id in ids:
            # Only its position tells it apart: honest, if less stable.
            positional = spec.then("filter", visible=True).then("nth", ids.index(match.id))
    return positional


def closest_rows(phrase: str, rows: list[tuple[str, str, str]], n: int, budget: float
                 ) -> list[tuple[str, str, str]]:
    """The ``n`` rows whose name or text is most like ``phrase``, best
    first; CPU work for a worker thread, stopping after ``budget`` seconds."""
    stop = time.monotonic() + budget
    wanted = phrase.lower()
    matcher = SequenceMatcher()
    matcher.set_seq2(wanted)
    scored: list[tuple[float, int, tuple[str, str, str]]] = []
    for index, row in enumerate(rows):
        if index % 64 == 0 and time.monotonic() > stop:
            break
        best = 0.0
        for text in {row[1], row[2]}:
            if not text:
                continue
            matcher.set_seq1(text.lower()[:200])
            if matcher.real_quick_ratio() <= best or matcher.quick_ratio() <= best:
                continue
            ratio = matcher.ratio()
            if wanted in text.lower() or text.lower() in wanted:
                ratio = max(ratio, 0.75)
            best = max(best, ratio)
        if best > 0:
            scored.append((-best, index, row))
    return [row for _, _, row in sorted(scored)[:n]]


def _worth_asking(attempt: _Attempt) -> bool:
    return attempt.decision is None or attempt.decision.kind in ("nothing", "ambiguous")


def _is_selector_error(exc: BaseException) -> bool:
    text = str(exc).lower()
    return "selector" in text and any(
        word in text for word in ("parse", "parsing", "unexpected", "valid", "unknown engine"))


def _what(source: str) -> str:
    return "advanced selector" if source == "selector" else "remembered locator"


def _ambiguous(decision: Decision) -> AmbiguousTarget:
    listed = [_describe_finding(f) for f in decision.rivals]
    return AmbiguousTarget(
        "ambiguous target: " + "; ".join(listed) + " — add an ordinal ('the second …'), a "
        "scope ('in the … form') or an advanced_selector",
        details={"candidates": decision.table, "ambiguous": listed},
    )


def _describe_finding(finding: Finding) -> str:
    names = ", ".join(_label(m) for m in finding.matches[:4])
    return f"{finding.spec} matches {len(finding.matches)} ({names})"


def _label(match: Match) -> str:
    fp = match.fingerprint
    name = fp.get("name") or fp.get("text") or ""
    return f"<{fp.get('tag', '?')}> {name}".strip()


def _not_found(intent: Intent, attempt: _Attempt, state: PageState, auto_handle: bool
               ) -> TargetNotFound:
    what = f"{intent.target!r}" if intent.target else "the target"
    parts = [f"no single visible element for {what}"]
    for stored in attempt.stored:
        parts.append(f"the {_what(stored['from'])} {stored['locator']} {stored['problem']}")
    decision = attempt.decision
    if decision is not None:
        if decision.note:
            parts.append(decision.note)
        elif decision.kind == "disabled" and decision.finding is not None:
            parts.append(f"{decision.finding.spec} is disabled or not editable")
        elif decision.kind == "nothing":
            parts.append("no candidate matched")
    if attempt.advice:
        parts.append(attempt.advice)
    if state.consent and not auto_handle:
        parts.append(f"a {state.consent} consent banner is open and auto_handle_popups is off")
    details = {"candidates": decision.table if decision else []}
    return TargetNotFound("not found: " + "; ".join(parts), details=details)
