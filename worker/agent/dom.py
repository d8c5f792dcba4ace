"""The DOM rung: probe candidate locators and decide — one element, ambiguity, or nothing.

Candidates are probed in score bands, each band concurrently; a band is skipped when the
best finding so far is already decisive (nothing it holds could be a close rival). A
visible modal dialog confines the search to itself. ``decide`` is pure: it picks the best
candidate that matches exactly one visible element, refuses when a close candidate of the
same exactness points at a different element, and honours an ordinal only when the
instruction gave one.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from functools import reduce
from typing import Any

from playwright.async_api import Locator, Page

from worker.agent.candidates import (
    Candidate,
    candidates,
    fuzzy_candidates,
    opposite_of,
    scope_specs,
)
from worker.agent.instruction import Intent
from worker.agent.locators import Call, LocatorSpec
from worker.agent.probe import Match, PageState, Probe, named_elements, probe, same_state

MARGIN = 30.0
# From a heading: how many levels up its section starts (0: the heading's own siblings) and
# how many siblings it spans before the next heading.
SECTION_JS = """h => {
  const isHeading = (e) => /^H[1-6]$/.test(e.tagName) || e.getAttribute('role') === 'heading'
    || !!e.querySelector('h1,h2,h3,h4,h5,h6,[role=heading]');
  let el = h;
  for (let up = 0; up < 4 && el && el !== document.body; up++, el = el.parentElement) {
    let count = 0;
    for (let s = el.nextElementSibling; s && !isHeading(s); s = s.nextElementSibling) count++;
    if (count) return [up, count];
  }
  return [0, 0];
}"""
MODAL = LocatorSpec.css('[aria-modal="true"]:visible, dialog:modal').then("last")
FUZZY_BUDGET_SECONDS = 0.5
#: above this many elements the snapshot rung reads names with ``named_elements`` instead
SNAPSHOT_MAX_ELEMENTS = 5000
_BANDS = (50.0, 130.0, 210.0, 300.0, float("inf"))


@dataclass(frozen=True)
class Finding:
    candidate: Candidate
    scope: LocatorSpec | None  # the container searched (a scope phrase or the open modal)
    base: LocatorSpec  # the candidate's locator (narrowed to one role for role candidates)
    matches: tuple[Match, ...]  # visible matches (inside the modal when one is open)
    tail: tuple[Call, ...] = ()  # an ordinal's pick among the matches

    @property
    def spec(self) -> LocatorSpec:
        scope = self.scope.calls if self.scope else ()
        return LocatorSpec((*scope, *self.base.calls, *self.tail))


@dataclass(frozen=True)
class Decision:
    kind: str  # winner | ambiguous | disabled | nothing
    finding: Finding | None = None
    match: Match | None = None
    rivals: tuple[Finding, ...] = ()
    table: list[list[Any]] = field(default_factory=list)
    page: PageState = field(default_factory=PageState)
    note: str | None = None


def decide(findings: Sequence[Finding], ordinal: int | None) -> Decision:
    """The verdict over probed candidates (see the module docstring)."""
    matched = sorted((f for f in findings if f.matches), key=lambda f: f.candidate.score)
    table = compact_table(findings)
    if not matched:
        return Decision("nothing", table=table)
    best = matched[0]
    pick = _pick(best, ordinal)
    if pick is None and not best.candidate.exact:
        # A loose match that fits several elements gives way to an exact one that fits one
        # ("the '2' button": the text "2", not every "Page 2…").
        exact = next((f for f in matched if f.candidate.exact and _pick(f, ordinal)), None)
        if exact is not None:
            best, pick = exact, _pick(exact, ordinal)
    if pick is None:
        return Decision("ambiguous", best, rivals=(best,), table=table)
    finding, match = pick
    for other in matched:
        if other is best:
            continue
        close = other.candidate.score <= best.candidate.score + MARGIN
        comparable = other.candidate.exact or not best.candidate.exact
        if close and comparable and match.id not in {m.id for m in other.matches}:
            return Decision("ambiguous", finding, match, rivals=(finding, other), table=table)
    if not match.ok:
        return Decision("disabled", finding, match, table=table)
    return Decision("winner", finding, match, table=table)


def _pick(best: Finding, ordinal: int | None) -> tuple[Finding, Match] | None:
    if len(best.matches) == 1:
        return best, best.matches[0]
    if ordinal is None:
        return None
    index = ordinal if ordinal >= 0 else len(best.matches) - 1
    if index >= len(best.matches):
        return None
    match = best.matches[index]
    return replace(best, matches=(match,), tail=_ordinal_tail(ordinal, index)), match


def _ordinal_tail(ordinal: int, index: int) -> tuple[Call, ...]:
    # Playwright's nth counts hidden matches too; the probe only saw visible ones.
    pick = Call("last") if ordinal < 0 else Call("nth", (index,))
    return (Call("filter", (), (("visible", True),)), pick)


def compact_table(findings: Sequence[Finding], limit: int = 8) -> list[list[Any]]:
    """``[locator, score, visible matches]`` rows for the step event, best first."""
    rows = sorted(findings, key=lambda f: (not f.matches, f.candidate.score))[:limit]
    return [[_shown(f)[:200], f.candidate.score, len(f.matches)] for f in rows]


def _shown(finding: Finding) -> str:
    text = str(finding.spec)
    roles = finding.candidate.roles
    if len(roles) > 1 and finding.base == finding.candidate.spec:
        # Probed as one locator over several roles: show them all.
        text = text.replace(f'"{roles[0]}"', '"' + "|".join(roles) + '"', 1)
    return text


class DomSearch:
    """Probes candidates for one resolution attempt on ``page``."""

    def __init__(self, page: Page, options: dict[str, Any]) -> None:
        self._page = page
        self.options = options
        self.state = PageState()
        self._checked = False  # whether a probe of this search checked banners and CAPTCHAs
        self.browser_ms = 0.0  # time spent waiting for the page's answers
        self._in_flight = 0
        self._since = 0.0
        self._phrases: list[str] = []  # the intent's target phrases (``run``)

    async def run(self, intent: Intent) -> Decision:
        self._phrases = [p for p in (intent.target, *intent.alternates) if p]
        scope, note = await self._scope(intent)
        if intent.scope and scope is None:
            return Decision("nothing", note=note, page=self.state)
        findings: list[Finding] = []
        pending = candidates(intent)
        verdict = Decision("nothing")
        for ceiling in _BANDS:
            band = [c for c in pending if c.score < ceiling]
            pending = [c for c in pending if c.score >= ceiling]
            findings += await asyncio.gather(*(self._find(c, scope) for c in band))
            verdict = decide(findings, intent.ordinal)
            # Decisive: a winner, or an exact candidate's ambiguity; a loose candidate's
            # ambiguity may still give way to an exact one further down.
            decisive = verdict.kind == "winner" or (
                verdict.finding is not None and verdict.finding.candidate.exact)
            if verdict.finding is not None and decisive and (
                not pending or pending[0].score > verdict.finding.candidate.score + MARGIN
            ):
                break
        if verdict.kind == "nothing" or (
            verdict.kind == "ambiguous" and verdict.finding is not None
            and not verdict.finding.candidate.exact
        ):
            # Only loose or no matches: read the names off the ARIA snapshot.
            findings += await self._from_snapshot(intent, scope)
            verdict = decide(findings, intent.ordinal)
        return await self._finish(verdict, intent)

    async def probe(self, spec: LocatorSpec, locator: Locator | None = None) -> Probe:
        # The whole-document checks (banners, CAPTCHAs) ride on the search's first probe only.
        full = not self._checked
        self._checked = True
        options = self.options if full else {**self.options, "state": False}
        with self._in_browser():
            result = await probe(locator or spec.build(self._page), options)
        self.state = result.page if full else same_state(self.state, result.page)
        return result

    @contextlib.contextmanager
    def _in_browser(self) -> Iterator[None]:
        """Account wall time spent waiting on the browser (overlapping probes count once)."""
        if self._in_flight == 0:
            self._since = time.perf_counter()
        self._in_flight += 1
        try:
            yield
        finally:
            self._in_flight -= 1
            if self._in_flight == 0:
                self.browser_ms += (time.perf_counter() - self._since) * 1000

    async def _scope(self, intent: Intent) -> tuple[LocatorSpec | None, str | None]:
        if intent.scope is None:
            return None, None
        if intent.scope.role == "heading":
            return await self._under_heading(intent.scope.text)
        for spec in scope_specs(intent.scope, intent.candidate_roles):
            if len((await self.probe(spec)).matches) == 1:
                if intent.scope.role == "frame":
                    # Search inside the frame's document (same-origin frames).
                    return LocatorSpec((*spec.calls, Call("content_frame"))), None
                return spec, None
        return None, f"found no single {intent.scope.role} for {intent.scope.text!r}"

    async def _under_heading(self, text: str) -> tuple[LocatorSpec | None, str | None]:
        """"Under the 'X' heading": what follows the heading up to the next heading (its
        following siblings; of an ancestor when the heading is alone in a wrapper)."""
        for spec in (LocatorSpec.of("get_by_role", "heading", name=text, exact=True),
                     LocatorSpec.of("get_by_role", "heading", name=text)):
            if len((await self.probe(spec)).matches) != 1:
                continue
            with self._in_browser():
                up, count = await spec.build(self._page).filter(visible=True).evaluate(
                    SECTION_JS)
            if count:
                path = spec
                for _ in range(up):
                    path = path.then("locator", "xpath=..")
                return path.then("locator", "xpath=following-sibling::*[position() <= "
                                 f"{count}]"), None
        return None, f"found no single heading {text!r} with content after it"

    async def _find(self, candidate: Candidate, scope: LocatorSpec | None) -> Finding:
        finding = Finding(candidate, scope, candidate.spec, ())
        locator = self._any_role(candidate, scope) if len(candidate.roles) > 1 else None
        found = await self.probe(finding.spec, locator)
        if found.page.modal and scope is None:
            # Behind an open modal dialog nothing can be acted on: search inside it only.
            return replace(finding, scope=MODAL,
                           matches=self._not_opposites(found.usable(modal_only=True)))
        return replace(finding, matches=self._not_opposites(found.matches))

    def _not_opposites(self, matches: tuple[Match, ...]) -> tuple[Match, ...]:
        """Matches less the ones named as the phrase's opposite: a loose locator's substring
        match finds "Unsubscribe" for "Subscribe", and acting on it is never what was meant."""
        if not self._phrases:
            return matches
        return tuple(m for m in matches if not any(
            opposite_of(phrase, str(m.fingerprint.get(key) or ""))
            for phrase in self._phrases for key in ("name", "text")))

    def _any_role(self, candidate: Candidate, scope: LocatorSpec | None) -> Locator:
        root: Any = scope.build(self._page) if scope else self._page
        kwargs = dict(candidate.spec.calls[0].kwargs)
        return reduce(
            lambda a, b: a.or_(b), (root.get_by_role(role, **kwargs) for role in candidate.roles)
        )

    async def _finish(self, verdict: Decision, intent: Intent) -> Decision:
        """A winner found through a several-roles ``or_`` probe gets its own role's locator,
        checked to reach the same element (the page's role may differ from the probe's)."""
        finding, match = verdict.finding, verdict.match
        if finding is None or match is None or len(finding.candidate.roles) <= 1:
            return replace(verdict, page=self.state)
        guess = match.fingerprint.get("role")
        roles = sorted(finding.candidate.roles, key=lambda r: r != guess)
        first = finding.base.calls[0]
        for role in roles:
            base = LocatorSpec((Call(first.method, (role,), first.kwargs),))
            narrowed = replace(finding, base=base, tail=())
            found = await self.probe(narrowed.spec)
            visible = [m.id for m in found.usable(modal_only=finding.scope == MODAL)]
            if match.id not in visible:
                continue
            if finding.tail:
                index = visible.index(match.id)
                last = finding.tail[-1].method == "last" and index == len(visible) - 1
                narrowed = replace(narrowed, tail=_ordinal_tail(-1 if last else 0, index))
            elif len(visible) > 1:
                continue
            return replace(verdict, finding=replace(narrowed, matches=finding.matches),
                           page=self.state)
        return replace(verdict, page=self.state)

    async def _from_snapshot(self, intent: Intent, scope: LocatorSpec | None
                             ) -> list[Finding]:
        root = scope or (MODAL if self.state.modal else None)
        locator = root.build(self._page) if root else self._page.locator("body")
        if root and root.calls[-1].method == "content_frame":
            locator = locator.locator("body")
        with self._in_browser():
            size = await locator.evaluate("el => el.getElementsByTagName('*').length")
            if size <= SNAPSHOT_MAX_ELEMENTS:
                snapshot = await locator.aria_snapshot()
            else:
                # A huge page's ARIA snapshot is megabytes to parse on the event loop: read
                # a bounded list of its named elements instead, in the snapshot's form.
                rows = await named_elements(self._page)
                snapshot = "\n".join(f"- {role} {json.dumps(name)}" for role, name, _ in rows
                                      if name and role != "generic")
        # Off the event loop: a large page's snapshot is thousands of names to compare.
        found = (await asyncio.to_thread(fuzzy_candidates, intent, snapshot,
                                         FUZZY_BUDGET_SECONDS))[:8]
        return list(await asyncio.gather(*(self._find(c, scope) for c in found)))
