"""Doing what one step says, on a page: resolve the target (if any), act, check.

``perform(ctx)`` dispatches on the action. It raises ``StepFailed`` subclasses for test
failures and lets Playwright errors it cannot explain escape to the session, which decides
whether the browser died (``ExecutorError``) or the action failed.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urljoin

from playwright.async_api import Error as PlaywrightError
from playwright.async_api import Locator, Page

from ledger.definition import Step
from projections.locator_memory import MemoryEntry
from worker.agent import checks
from worker.agent.errors import ActionFailed, StepFailed
from worker.agent.instruction import Intent
from worker.agent.resolver import Resolution, Resolver

_STATE_WORDS = {"disabled", "enabled", "checked", "unchecked"}


@dataclass
class StepContext:
    page: Page
    step: Step
    intent: Intent
    test_url: str
    deadline: float  # monotonic: the step's budget
    verify_seconds: float
    resolver: Resolver
    memory: MemoryEntry | None
    memory_info: dict[str, Any] | None
    details: dict[str, Any] = field(default_factory=dict)
    timing: dict[str, float] = field(default_factory=dict)
    resolved_url: str | None = None  # the page's URL when the target was resolved
    screenshot: bytes | None = None  # an explicit ``screenshot`` step's capture
    #: what the session does to a value before the browser gets it (reveals secrets, masks
    #: passwords: ``worker.agent.secrets``); unset, the value as written
    prepare: Callable[[Locator | None, str], Awaitable[str]] | None = None

    async def typed(self, element: Locator | None, value: str) -> str:
        """``value`` as the browser is to get it, for ``element`` (None: a URL)."""
        return value if self.prepare is None else await self.prepare(element, value)

    @property
    def remaining_ms(self) -> float:
        return max(1.0, (self.deadline - time.monotonic()) * 1000)

    @property
    def check_deadline(self) -> float:
        return min(self.deadline, time.monotonic() + self.verify_seconds)

    async def resolve(self, intent: Intent | None = None, *, record: bool = True) -> Resolution:
        """The step's element (``record=False``: a helper element, e.g. a dropdown's option,
        which neither memory nor the step's details are about)."""
        began = time.perf_counter()
        if record:
            self.resolved_url = self.page.url
        try:
            resolution = await self.resolver.resolve(
                self.step, intent or self.intent, self.memory if record else None,
                self.memory_info if record and self.memory_info is not None else {},
                self.deadline, use_selector=record,
            )
        finally:
            self.timing["resolve_ms"] = self.timing.get("resolve_ms", 0.0) + _ms(began)
            # Of which waiting for the page's answers (Playwright and the browser).
            self.timing["probe_ms"] = round(
                self.timing.get("probe_ms", 0.0) + self.resolver.browser_ms, 2)
        if record:
            self.details.update(resolution.details())
        return resolution

    async def act(self, what: str, action: Callable[[], Awaitable[Any]]) -> Any:
        """Run Playwright's action, timing it and explaining its failure."""
        began = time.perf_counter()
        try:
            return await action()
        except PlaywrightError as exc:
            if _browser_gone(exc):
                raise
            raise ActionFailed(f"{what} failed: {explain(exc)}") from exc
        finally:
            self.timing["action_ms"] = self.timing.get("action_ms", 0.0) + _ms(began)


async def perform(ctx: StepContext) -> Resolution | None:
    """Execute ``ctx.step``; the resolution when it acted on an element."""
    handler = _HANDLERS[ctx.intent.action]
    began = time.perf_counter()
    try:
        return await handler(ctx)
    finally:
        if "action_ms" not in ctx.timing:
            # Checks (verify, wait_for, assert_url) are Playwright's waiting, not ours.
            ctx.timing["action_ms"] = round(_ms(began) - ctx.timing.get("resolve_ms", 0.0), 2)


# -- actions on elements ------------------------------------------------------------------

async def _click(ctx: StepContext) -> Resolution:
    found = await ctx.resolve()
    await ctx.act(f"click on {found.spec}", lambda: found.locator.click(timeout=ctx.remaining_ms))
    return found


async def _hover(ctx: StepContext) -> Resolution:
    found = await ctx.resolve()
    await ctx.act(f"hover over {found.spec}",
                  lambda: found.locator.hover(timeout=ctx.remaining_ms))
    return found


async def _fill(ctx: StepContext) -> Resolution:
    found = await ctx.resolve()
    value = await ctx.typed(found.locator, ctx.step.value or "")
    await ctx.act(f"fill {found.spec}", lambda: found.locator.fill(value, timeout=ctx.remaining_ms))
    return found


async def _check(ctx: StepContext) -> Resolution:
    found = await ctx.resolve()
    if ctx.intent.action == "check":
        await ctx.act(f"check {found.spec}", lambda: found.locator.check(timeout=ctx.remaining_ms))
    else:
        await ctx.act(f"uncheck {found.spec}",
                      lambda: found.locator.uncheck(timeout=ctx.remaining_ms))
    return found


async def _press(ctx: StepContext) -> Resolution | None:
    key = ctx.step.value or ""
    if not (ctx.intent.target or ctx.step.advanced_selector):
        await ctx.act(f"press {key}", lambda: ctx.page.keyboard.press(key))
        return None
    found = await ctx.resolve()
    await ctx.act(f"press {key} in {found.spec}",
                  lambda: found.locator.press(key, timeout=ctx.remaining_ms))
    return found


async def _select(ctx: StepContext) -> Resolution:
    found = await ctx.resolve()
    value = await ctx.typed(found.locator, ctx.step.value or "")
    if found.match.fingerprint.get("tag") == "select":
        label = await _option_for(found.locator, value, ctx.remaining_ms)
        await ctx.act(f"select {label!r} in {found.spec}",
                      lambda: found.locator.select_option(label=label, timeout=ctx.remaining_ms))
        return found
    # A custom dropdown: open it, then pick the option by its accessible name.
    await ctx.act(f"open {found.spec}", lambda: found.locator.click(timeout=ctx.remaining_ms))
    option = Intent(action="click", target=value, roles=("option", "menuitem", "menuitemradio"))
    picked = await ctx.resolve(option, record=False)
    await ctx.act(f"select {value!r}", lambda: picked.locator.click(timeout=ctx.remaining_ms))
    return found


async def _option_for(select: Locator, value: str, timeout_ms: float) -> str:
    """The label of the option ``value`` names (label or value, case-insensitively)."""
    options: list[dict[str, str]] = await select.evaluate(
        "s => [...s.options].map(o => ({label: o.label, value: o.value}))", timeout=timeout_ms
    )
    wanted = value.strip().lower()
    for key in ("label", "value"):
        for option in options:
            if option[key] == value:
                return option["label"]
        for option in options:
            if option[key].strip().lower() == wanted:
                return option["label"]
    listed = ", ".join(repr(o["label"]) for o in options[:20])
    raise ActionFailed(f"the select has no option {value!r}; its options: {listed}")


# -- navigation and checks ----------------------------------------------------------------

async def _navigate(ctx: StepContext) -> None:
    url = urljoin(ctx.test_url, ctx.step.target) if ctx.step.target else ctx.test_url
    await goto(ctx, await ctx.typed(None, url))


async def goto(ctx: StepContext, url: str) -> None:
    response = await ctx.act(
        f"navigate to {url}",
        lambda: ctx.page.goto(url, timeout=ctx.remaining_ms, wait_until="load"),
    )
    if response is not None and response.status >= 400:
        raise ActionFailed(f"navigate to {url} returned HTTP {response.status}")


async def _verify(ctx: StepContext) -> Resolution | None:
    expected = ctx.step.expected or ""
    kind = checks.check_kind(ctx.step.instruction)
    if kind == "url":
        await checks.verify_url(ctx.page, expected, ctx.step.instruction, ctx.check_deadline)
        return None
    if kind == "title":
        await checks.verify_title(ctx.page, expected, ctx.check_deadline)
        return None
    if kind == "text":
        await checks.verify_text(ctx.page, expected, negated=ctx.intent.negated,
                                 deadline=ctx.check_deadline)
        return None
    # A check on an element: find it by the phrase that is not the expected value.
    target = _element_phrase(ctx, expected, kind)
    if not target and not ctx.step.advanced_selector:
        raise StepFailed(f"the instruction names no element to check as {kind}")
    intent = Intent(action="verify", target=target, roles=ctx.intent.roles,
                    ordinal=ctx.intent.ordinal, scope=ctx.intent.scope)
    found = await ctx.resolve(intent)
    await checks.verify_state(found.locator, kind, expected, ctx.check_deadline)
    return found


def _element_phrase(ctx: StepContext, expected: str, kind: str) -> str | None:
    if ctx.step.target:
        return ctx.step.target
    others = [q for q in ctx.intent.quoted if q != expected]
    if others:
        return others[0]
    if kind in _STATE_WORDS and expected.lower() not in _STATE_WORDS:
        return expected
    target = ctx.intent.target
    return target if target and target != expected else None


async def _wait_for(ctx: StepContext) -> Resolution | None:
    deadline = ctx.deadline
    if ctx.step.advanced_selector:
        state: Literal["hidden", "visible"] = "hidden" if ctx.intent.negated else "visible"
        locator = ctx.page.locator(ctx.step.advanced_selector).first
        await ctx.act(f"wait for {ctx.step.advanced_selector} to be {state}",
                      lambda: locator.wait_for(state=state, timeout=ctx.remaining_ms))
        return None
    target = ctx.intent.target or ctx.step.expected
    if not target:
        await ctx.act("wait for the page to load",
                      lambda: ctx.page.wait_for_load_state("load", timeout=ctx.remaining_ms))
        return None
    await checks.wait_for_text(ctx.page, target, negated=ctx.intent.negated, deadline=deadline)
    return None


async def _assert_url(ctx: StepContext) -> None:
    await checks.verify_url(ctx.page, ctx.step.expected or "", ctx.step.instruction,
                            ctx.check_deadline)


async def _screenshot(ctx: StepContext) -> None:
    ctx.screenshot = await ctx.act(
        "screenshot",
        lambda: ctx.page.screenshot(type="png", full_page=True, timeout=ctx.remaining_ms),
    )


_HANDLERS: dict[str, Callable[[StepContext], Awaitable[Resolution | None]]] = {
    "navigate": _navigate,
    "click": _click,
    "fill": _fill,
    "verify": _verify,
    "press": _press,
    "select": _select,
    "check": _check,
    "uncheck": _check,
    "hover": _hover,
    "wait_for": _wait_for,
    "assert_url": _assert_url,
    "screenshot": _screenshot,
}


# -- errors -------------------------------------------------------------------------------

_BLOCKERS = (
    ("intercepts pointer events", "blocked: {line}"),
    ("element is not enabled", "the element is disabled"),
    ("element is not visible", "the element is not visible"),
    ("element is not editable", "the element is not editable"),
    ("element is outside of the viewport", "the element is outside the viewport"),
    ("element was detached", "the element was removed from the page"),
)


def explain(exc: PlaywrightError) -> str:
    """Playwright's error in one line, with the reason its call log gives when it has one."""
    text = str(exc)
    first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    for line in reversed(text.splitlines()):
        for needle, template in _BLOCKERS:
            if needle in line:
                return f"{first.rstrip('.')}; " + template.format(line=line.strip(" -"))[:300]
    return first[:300]


def _browser_gone(exc: PlaywrightError) -> bool:
    text = str(exc)
    return any(s in text for s in (
        "Target page, context or browser has been closed", "Target crashed", "Page crashed",
        "Browser has been closed", "Connection closed", "browser has disconnected",
    ))


def browser_gone(exc: BaseException) -> bool:
    return isinstance(exc, PlaywrightError) and _browser_gone(exc)


def _ms(began: float) -> float:
    return round((time.perf_counter() - began) * 1000, 2)


__all__ = ["StepContext", "browser_gone", "explain", "goto", "perform"]
