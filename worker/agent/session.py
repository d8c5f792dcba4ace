"""One run in its own browser context: steps in order, each timed, evidenced and recorded.

For each step: resolve and act (``actions.perform``) within the step's budget — the
smaller of ``STEP_TIMEOUT_SECONDS`` and what is left of the run's — then a screenshot
(per ``SCREENSHOTS``), then ``sink.record``. The first failing step stops the run. The
Playwright trace has one group per step; it is stopped before the last step is recorded
so that step's event can reference it.

The seam with Playwright: a crashed page or a disconnected browser ends the run with
``ExecutorError`` (the consumer records ``errored`` and keeps the steps already recorded);
any other Playwright error fails the step with its explanation.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import tempfile
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from playwright.async_api import BrowserContext, Page
from playwright.async_api import Error as PlaywrightError

from ledger.artifacts import ArtifactOwner, ArtifactStore
from ledger.definition import Step
from ledger.domain import recordable
from projections.locator_memory import MemoryEntry, memory_key, normalise_instruction
from worker import bounds
from worker.agent.actions import StepContext, browser_gone, explain, goto, perform
from worker.agent.browser import Lease
from worker.agent.checks import until
from worker.agent.egress import EgressProxy, NavigationWatch
from worker.agent.errors import ActionFailed, StepFailed, StepTimedOut
from worker.agent.instruction import parse
from worker.agent.llm import LocatorAdvisor
from worker.agent.popups import PopupGuard
from worker.agent.probe import INSTALL_JS, window_calls
from worker.agent.resolver import Resolution, Resolver
from worker.agent.secrets import RedactingAdvisor, RunSecrets
from worker.agent.settings import ExecutorConfig
from worker.agent.untraced import untraced
from worker.errors import ExecutorError
from worker.ports import Outcome, RunJob, StepResult, StepSink

log = logging.getLogger(__name__)

#: actions after which a new tab or popup may open (the next step then acts on it)
OPENERS = {"click", "double_click", "press", "check", "select"}
#: actions whose gesture may make its own page close (``window.close()`` in a handler)
CLOSERS = OPENERS | {"right_click", "uncheck", "drag"}
CLOSE_WAIT_SECONDS = 1.0
TAB_WAIT_SECONDS = 5.0
NO_TARGET = {"navigate", "assert_url", "screenshot", "wait_for", "go_back", "reload",
             "switch_tab"}
SCREENSHOT_TIMEOUT_MS = 5000
# The consumer enforces RUN_TIMEOUT_SECONDS too (appending ``timed-out``); the executor
# stops a little earlier so that the run fails with the step and limit named instead.
MAX_POPUPS = 20
RUN_SAFETY_FRACTION = 0.05
RUN_SAFETY_MAX_SECONDS = 5.0


@dataclass(eq=False)
class _Tab:
    """A page the run can act on, with its own popup guard and resolver."""

    page: Page
    popups: PopupGuard
    resolver: Resolver
    #: the tab the run was on before this one (where it returns when this one closes)
    previous: _Tab | None = None


@dataclass(eq=False)
class RunSession:
    """Executes one job in ``context`` (owned by the caller, who closes it)."""

    job: RunJob
    context: BrowserContext
    lease: Lease
    config: ExecutorConfig
    artifacts: ArtifactStore
    memory: dict[str, MemoryEntry]
    advisor: LocatorAdvisor | None
    egress: EgressProxy | None = None
    _owner: ArtifactOwner = field(init=False)
    # Set when the page crashes or the browser goes away: the run is over.
    _broken_kind: str | None = field(default=None, init=False)
    _broken: asyncio.Event = field(default_factory=asyncio.Event, init=False)
    _tracing: bool = field(init=False)
    _switch_to: Page | None = field(default=None, init=False)
    _tab_expected: bool = field(default=False, init=False)
    _advisor: LocatorAdvisor | None = field(default=None, init=False)
    _secrets: RunSecrets = field(init=False)
    _watch: NavigationWatch = field(init=False)
    #: why the run has no trace though TRACES asks for one (secrets, a password)
    _trace_note: str | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self._owner = ArtifactOwner(self.job.test_id, str(self.job.run_id), datetime.now(UTC))
        self._tracing = self.config.traces != "off"
        self._secrets = RunSecrets(self.config.secret_values)
        self._watch = NavigationWatch(self.egress)
        used = self._secrets.referenced(
            self.job.url, *(t for s in self.job.steps for t in (s.value, s.target)))
        if used and self._tracing:
            # A trace records typed values in its DOM snapshots: no trace at all.
            self._tracing = False
            self._trace_note = ("not recorded: the run types secrets "
                                f"({', '.join(used)}) and traces record typed values")

    async def run(self, sink: StepSink, began: float) -> Outcome:
        """Run every step; ``began`` is the run's ``time.monotonic()`` start."""
        safety = min(RUN_SAFETY_MAX_SECONDS, self.config.run_timeout_seconds * RUN_SAFETY_FRACTION)
        run_deadline = began + self.config.run_timeout_seconds - safety
        page, popups = await self._open()
        self._advisor = RedactingAdvisor(self.advisor, self._secrets) if self.advisor else None
        tab = self._tab(page, popups)
        tabs = [tab]
        opened: list[Page] = []
        self.context.on("page", lambda new: opened.append(new))
        last = len(self.job.steps) - 1
        for index, step in enumerate(self.job.steps):
            tab, followed = await self._follow(tab, tabs, opened, index)
            result = await self._step(index, step, tab.page, tab.popups, tab.resolver,
                                      run_deadline, [t.page for t in tabs], followed)
            if self._switch_to is not None:
                chosen = next(t for t in tabs if t.page is self._switch_to)
                if chosen is not tab:
                    chosen.previous, tab = tab, chosen
                self._switch_to = None
            final = result.status == "failed" or index == last
            if final:
                result = await self._with_trace(result)
            await sink.record(result)
            if result.status == "failed":
                return Outcome("failed", _elapsed_ms(began), result.error, index)
        return Outcome("passed", _elapsed_ms(began))

    def _tab(self, page: Page, popups: PopupGuard) -> _Tab:
        resolver = Resolver(page, popups, strict=self.config.healing == "strict",
                            advisor=self._advisor,
                            not_found_seconds=self.config.not_found_seconds)
        return _Tab(page, popups, resolver)

    async def _follow(self, tab: _Tab, tabs: list[_Tab], opened: list[Page], index: int
                      ) -> tuple[_Tab, dict[str, Any] | None]:
        """Before a step: a tab or popup that the last step opened becomes the page the run
        acts on; a page that closed itself hands back to the tab before it."""
        followed: dict[str, Any] | None = None
        if self._tab_expected:
            # The last step clicked a target=_blank link or called window.open: the new
            # page's event may still be on its way.
            self._tab_expected = False
            await until(lambda: _truthy(opened), time.monotonic() + TAB_WAIT_SECONDS)
        while opened:
            page = opened.pop(0)
            if page.is_closed():
                continue
            page.on("crash", lambda _: self._break("page-crash"))
            popups = PopupGuard(page, auto_handle=self.job.auto_handle_popups)
            try:
                await popups.install()
                await page.wait_for_load_state("load", timeout=SCREENSHOT_TIMEOUT_MS)
            except PlaywrightError as exc:
                log.info("a new tab before step %d did not load: %s", index, explain(exc))
            new = self._tab(page, popups)
            new.previous, tab = tab, new
            tabs.append(tab)
            followed = {"followed": "new tab", "url": page.url}
        while tab.page.is_closed():
            tabs.remove(tab)
            if not tabs:
                raise ExecutorError(f"every tab was closed before step {index}",
                                    kind="page-closed", step=index)
            back = tab.previous
            tab = back if back is not None and back in tabs else tabs[-1]
            followed = {"followed": "back (the tab closed)", "url": tab.page.url}
        return tab, followed

    async def _open(self) -> tuple[Page, PopupGuard]:
        try:
            if self._tracing:
                await self.context.tracing.start(screenshots=True, snapshots=True,
                                                  title=self.job.test_name[:100])
            await self.context.add_init_script(script=INSTALL_JS)
            page = await self.context.new_page()
            page.on("crash", lambda _: self._break("page-crash"))
            self._watch.watch(page)
            popups = PopupGuard(page, auto_handle=self.job.auto_handle_popups)
            await popups.install()
        except PlaywrightError as exc:
            raise ExecutorError(f"could not open a page: {explain(exc)}",
                                kind=self._gone() or "browser", step=0) from exc
        return page, popups

    def _break(self, kind: str) -> None:
        if self._broken_kind is None:
            self._broken_kind = kind
            self._broken.set()

    def _gone(self) -> str | None:
        """Why the run cannot go on (page crash, browser gone), or None."""
        if self._broken_kind is None and self.lease.disconnected.is_set():
            self._broken_kind = "browser-crash"
        return self._broken_kind

    # -- one step -----------------------------------------------------------------------------

    async def _step(
        self, index: int, step: Step, page: Page, popups: PopupGuard, resolver: Resolver,
        run_deadline: float, pages: list[Page] | None = None,
        followed: dict[str, Any] | None = None,
    ) -> StepResult:
        began = time.perf_counter()
        now = time.monotonic()
        budget = min(self.config.step_timeout_seconds, run_deadline - now)
        if self._gone():
            raise self._infrastructure(index)
        intent = parse(step)
        ctx = StepContext(
            page=page, step=step, intent=intent, test_url=self.job.url,
            deadline=now + max(budget, 0.0), verify_seconds=self.config.verify_timeout_seconds,
            resolver=resolver, memory=None, memory_info=None, artifacts=self.artifacts,
            tabs=pages or [page],
        )
        if followed:
            ctx.details["tab"] = followed
        ctx.prepare = lambda element, value: self._prepare(ctx, element, value)
        if self._tracing:
            try:
                await self.context.tracing.group(f"{index}: {step.action.value} — "
                                                  f"{step.instruction[:80]}")
            except PlaywrightError as exc:
                # The browser can die between steps before its disconnect is delivered:
                # the trace call is then the first to meet it.
                if browser_gone(exc) or self._gone():
                    raise self._infrastructure(index) from exc
                raise
        try:
            error = await self._attempt(index, ctx, budget, run_deadline)
        finally:
            if self._tracing:
                with contextlib.suppress(PlaywrightError):
                    await self.context.tracing.group_end()
        error = self._watch.judge(error, ctx.details)
        status = "failed" if error else "passed"
        self._switch_to = ctx.switch_to
        if not error and step.action.value in OPENERS:
            self._tab_expected = await _opens_a_tab(ctx)
        artifacts = await self._screenshots(ctx, failed=bool(error))
        ctx.timing["total_ms"] = _ms_since_float(began)
        details = self._details(ctx, popups, error)
        redact = self._secrets.redact
        return step_result(
            index, step, status=status, duration_ms=_ms_since(began),
            strategy=details.pop("strategy", None), healed=bool(ctx.details.get("heal")),
            url=redact(ctx.resolved_url or page.url), error=redact(str(error)) if error else None,
            artifacts=artifacts, details=redact(details), redact=redact,
        )

    async def _prepare(self, ctx: StepContext, element: Resolution | None, value: str) -> str:
        """A value as the browser gets it: secrets revealed (``UnknownSecret`` for one the
        worker lacks); a literal typed into a password field masked from now on, with a
        warning. (Its trace is kept: the value is in the test definition already, which
        is what the warning says to fix.)"""
        revealed = self._secrets.reveal(value, url=element is None)
        if element is None or revealed != value or not value or not await _is_password(element):
            return revealed
        self._secrets.mask(value)
        ctx.details.setdefault("warnings", []).append(
            "a password was typed without a {{secrets.NAME}} reference: its value lives in "
            "the test definition; it is masked in what the run records")
        return revealed

    async def _attempt(self, index: int, ctx: StepContext, budget: float, run_deadline: float
                       ) -> StepFailed | None:
        """Run the step; the failure (None when it passed). Raises ``ExecutorError``."""
        if budget <= 0:
            return StepTimedOut(self._run_limit_message(index, ctx.step))
        try:
            async with asyncio.timeout(budget + 1.0):
                await self._guarded(self._perform(index, ctx))
        except StepFailed as exc:
            if time.monotonic() < ctx.deadline - 0.1:
                return exc
            # It gave up because the step's time ran out: say which limit did it. What was
            # decided (not found, ambiguous, blocked …) keeps its kind; a wait or an action
            # that only ran out of time is a timeout.
            limit = self._limit_message(index, ctx, run_deadline)
            if isinstance(exc, StepTimedOut) or type(exc) is ActionFailed:
                timed_out = StepTimedOut(f"{limit}: {exc}", details=exc.details)
                timed_out.details.setdefault("cause", exc.kind)
                return timed_out
            exc.args = (f"{limit}: {exc}",)
            return exc
        except TimeoutError:
            return StepTimedOut(self._limit_message(index, ctx, run_deadline))
        except PlaywrightError as exc:
            if browser_gone(exc) and not self._gone() and await self._closed_by_step(ctx):
                # The gesture made its page close itself (an "Allow" button in a sign-in
                # popup calls window.close()): Playwright's pending call fails as if the
                # browser were gone, but the gesture was done. The next step follows the
                # tab before it.
                ctx.details["page_closed"] = True
                return None
            if browser_gone(exc) or self._gone():
                raise self._infrastructure(index) from exc
            return ActionFailed(explain(exc))
        if self._gone():
            raise self._infrastructure(index)
        return None

    async def _perform(self, index: int, ctx: StepContext) -> None:
        action = ctx.intent.action
        if index == 0 and action != "navigate":
            # A test starts on its URL even when its first step does something else.
            await goto(ctx, await ctx.typed(None, self.job.url))
        if action not in NO_TARGET:
            ctx.memory_info = memory_info(ctx.step, ctx.intent.action,
                                          self._secrets.redact(ctx.page.url))
            ctx.memory = self.memory.get(ctx.memory_info["key"])
        await perform(ctx)

    async def _guarded(self, work: Coroutine[Any, Any, None]) -> None:
        """Await ``work`` unless the page crashes or the browser dies first (a crashed
        renderer can leave Playwright's pending calls waiting out their timeouts)."""
        name = f"run-{self.job.run_id}"
        task = asyncio.create_task(work, name=f"{name}-step")
        watchers = [
            asyncio.create_task(self._broken.wait(), name=f"{name}-crash-watch"),
            asyncio.create_task(self.lease.disconnected.wait(), name=f"{name}-browser-watch"),
        ]
        try:
            await asyncio.wait({task, *watchers}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for watcher in watchers:
                watcher.cancel()
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, PlaywrightError, StepFailed):
                    await task
            await asyncio.gather(*watchers, return_exceptions=True)
        if task.cancelled():
            raise PlaywrightError(f"Target crashed ({self._gone()})")
        task.result()

    async def _closed_by_step(self, ctx: StepContext) -> bool:
        """Whether the step's own gesture closed its page while the browser lives on: the
        closed-page error came out of the gesture (not out of finding the element, nor out
        of loading the page), the page is closed (its close event may trail the failed call
        a moment) and the browser still answers (a killed browser closes its pages too, and
        its disconnect may trail as well)."""
        if ctx.intent.action not in CLOSERS or ctx.closed_during is None:
            return False

        async def closed_and_answering() -> None:
            if not ctx.page.is_closed():
                await ctx.page.wait_for_event("close")
            await self.context.cookies()  # (untraced: a trace would record the cookies)

        try:
            async with asyncio.timeout(CLOSE_WAIT_SECONDS):
                await untraced(closed_and_answering)
        except (PlaywrightError, TimeoutError):
            return False
        return ctx.page.is_closed() and not self._gone()

    def _infrastructure(self, index: int) -> ExecutorError:
        kind = self._broken_kind or "browser-crash"
        what = "the page crashed" if kind == "page-crash" else "the browser went away"
        return ExecutorError(f"{what} during step {index}", kind=kind, step=index)

    def _limit_message(self, index: int, ctx: StepContext, run_deadline: float) -> str:
        if ctx.deadline >= run_deadline - 0.01:
            return self._run_limit_message(index, ctx.step)
        return (f"step {index} ({ctx.step.action.value}) exceeded STEP_TIMEOUT_SECONDS="
                f"{self.config.step_timeout_seconds:g}")

    def _run_limit_message(self, index: int, step: Step) -> str:
        return (f"the run exceeded RUN_TIMEOUT_SECONDS={self.config.run_timeout_seconds:g} "
                f"during step {index} ({step.action.value})")

    # -- evidence -----------------------------------------------------------------------------

    def _details(self, ctx: StepContext, popups: PopupGuard, error: StepFailed | None
                 ) -> dict[str, Any]:
        details = dict(ctx.details)
        if ctx.intent.target:
            details["target"] = ctx.intent.target[:200]
        if ctx.memory_info is not None and ("locator" not in details and
                                            ctx.memory_info["result"] in ("none", "unreliable")):
            ctx.memory_info = None  # nothing was resolved or tried: nothing for memory
        if ctx.memory_info is not None:
            if ctx.memory is not None:
                ctx.memory_info["locator"] = ctx.memory.locator
                ctx.memory_info["reliability"] = round(ctx.memory.reliability, 3)
            details["memory"] = ctx.memory_info
        dismissed = popups.take()
        if dismissed:
            details["popups"] = dismissed[:MAX_POPUPS]
            if len(dismissed) > MAX_POPUPS:
                details["popups_more"] = len(dismissed) - MAX_POPUPS
        if error is not None:
            details["error_kind"] = error.kind
            for key, value in error.details.items():
                details.setdefault(key, value)
        if ctx.timing:
            details["timing"] = ctx.timing
        return details

    async def _screenshots(self, ctx: StepContext, *, failed: bool) -> list[dict[str, Any]]:
        refs: list[dict[str, Any]] = []
        if ctx.page.is_closed():
            return refs  # a page its step closed has nothing left to show
        if self._secrets.active and await self._shows_secret(ctx.page):
            ctx.screenshot = None
            ctx.details["screenshot"] = "withheld: the page shows a secret or masked value"
            return refs
        if ctx.screenshot is not None:
            refs.append(await self._store(ctx.screenshot, "screenshot", "image/png"))
        wanted = self.config.screenshots == "all" or (
            self.config.screenshots == "failures" and failed)
        if not wanted or self._gone() or ctx.screenshot is not None:
            return refs
        began = time.perf_counter()
        try:
            shot = await self._capture(ctx.page)
        except PlaywrightError as exc:
            log.warning("screenshot failed run_id=%s: %s", self.job.run_id,
                        self._secrets.redact(explain(exc)))
            return refs
        ctx.timing["screenshot_ms"] = _ms_since_float(began)
        refs.append(await self._store(shot, "screenshot", "image/png"))
        return refs

    @staticmethod
    async def _capture(page: Page) -> bytes:
        try:
            return await page.screenshot(type="png", timeout=SCREENSHOT_TIMEOUT_MS)
        except PlaywrightError:
            # A click that started a navigation leaves nothing to capture for a moment.
            await page.wait_for_load_state("load", timeout=SCREENSHOT_TIMEOUT_MS)
            return await page.screenshot(type="png", timeout=SCREENSHOT_TIMEOUT_MS)

    async def _store(self, data: bytes, kind: str, content_type: str) -> dict[str, Any]:
        ref = await self.artifacts.put(data, kind=kind, content_type=content_type,
                                        owner=self._owner)
        return ref.as_dict()

    async def _shows_secret(self, page: Page) -> bool:
        """Whether a frame's text or a (non-password) field shows a value to keep out of
        screenshots; when the page cannot say, assume it does."""
        for frame in page.frames:
            try:
                if await untraced(partial(frame.evaluate, SHOWS_VALUE_JS, self._secrets.values)):
                    return True
            except PlaywrightError:
                return True
        return False

    async def _with_trace(self, result: StepResult) -> StepResult:
        if self._trace_note is not None:
            result = replace(result, details={**result.details, "trace": self._trace_note})
        if not self._tracing or self._gone():
            return result
        self._tracing = False
        keep = self.config.traces == "all" or result.status == "failed"
        with tempfile.TemporaryDirectory(prefix="runledger-trace-") as tmp:
            path = Path(tmp) / "trace.zip"
            try:
                await self.context.tracing.stop(path=str(path) if keep else None)
            except PlaywrightError as exc:
                log.warning("could not save the trace run_id=%s: %s", self.job.run_id,
                            explain(exc))
                return result
            if not keep:
                return result
            data = await asyncio.to_thread(path.read_bytes)
        ref = await self._store(data, "trace", "application/zip")
        return replace(result, artifacts=[*result.artifacts, ref])


async def _opens_a_tab(ctx: StepContext) -> bool:
    """Whether the step opened a tab (a target=_blank link, ``window.open``); a popup that
    closed itself (``window.close``) is waited for until it is gone."""
    attrs = (ctx.details.get("fingerprint") or {}).get("attrs") or {}
    try:
        opened, closing = await untraced(lambda: window_calls(ctx.page))
    except PlaywrightError:
        return False  # the page navigated or closed: nothing to wait for
    if closing and not ctx.page.is_closed():
        with contextlib.suppress(PlaywrightError):
            await ctx.page.wait_for_event("close", timeout=TAB_WAIT_SECONDS * 1000)
    return attrs.get("target") == "_blank" or opened > 0


async def _truthy(items: list[Page]) -> bool:
    return bool(items)


def step_result(
    index: int, step: Step, *, status: str, duration_ms: int, strategy: str | None,
    healed: bool, url: str | None, error: str | None, artifacts: list[dict[str, Any]],
    details: dict[str, Any], redact: Callable[[str], str] = str,
) -> StepResult:
    """The step's result as it is recorded: the one place where what the executor took from
    the page (url, error, details) is cleaned and bounded (``worker.bounds``)."""
    return bounds.bound_step(StepResult(
        index=index, action=step.action.value, instruction=redact(step.instruction),
        status=status,
        duration_ms=duration_ms, strategy=strategy, healed=healed, url=url, error=error,
        artifacts=artifacts, details=details,
    ))


def memory_info(step: Step, action: str, url: str) -> dict[str, Any]:
    """What ``details.memory`` starts as: the key the step is remembered under, and its
    instruction as memory stores it (the reader looks entries up by it, ``recall_texts``)."""
    instruction, value = recall_texts(step)
    return {"key": memory_key(recordable(url), action, instruction, value),
            "instruction": normalise_instruction(instruction, value), "result": "none"}


def recall_texts(step: Step) -> tuple[str, str | None]:
    """The step's instruction and value as locator memory sees them: cleaned, so that a
    control character or lone surrogate can neither break the key nor reach PostgreSQL."""
    return recordable(step.instruction), recordable(step.value) if step.value else step.value


#: The raw text of every text node besides ``innerText``, which reports CSS
#: ``text-transform``'s result (an upper-cased secret would not match); and every open shadow
#: root, which neither reaches from the document (a web component previewing a password
#: field). Scripts and styles are not shown: a page's own script may hold the value.
SHOWS_VALUE_JS = """values => {
  const seen = [document.title,
                document.documentElement ? document.documentElement.innerText : ''];
  const hidden = new Set(['SCRIPT', 'STYLE', 'NOSCRIPT', 'TEMPLATE']);
  const visit = scope => {
    const walker = document.createTreeWalker(scope, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode())
      if (!hidden.has(node.parentNode && node.parentNode.nodeName)) seen.push(node.data);
    for (const e of scope.querySelectorAll('*')) {
      if (e.shadowRoot) visit(e.shadowRoot);
      if (['INPUT', 'TEXTAREA', 'SELECT'].includes(e.tagName) && e.type !== 'password')
        seen.push(e.value || '');
    }
  };
  visit(document);
  const text = seen.join('\\n');
  return values.some(v => text.includes(v));
}"""


async def _is_password(element: Resolution) -> bool:
    """Whether ``element`` is a password field: from the fingerprint its resolution already
    brought back (no round trip), or asked of the page when it brought none (a search with
    many matches skips fingerprints)."""
    fingerprint = element.match.fingerprint
    if fingerprint.get("tag"):
        kind = str((fingerprint.get("attrs") or {}).get("type") or "")
        return fingerprint["tag"] == "input" and kind.lower() == "password"
    try:
        return bool(await element.locator.evaluate("e => e.type === 'password'", timeout=2000))
    except PlaywrightError:
        return False


def _ms_since(began: float) -> int:
    return int((time.perf_counter() - began) * 1000)


def _elapsed_ms(began_monotonic: float) -> int:
    return int((time.monotonic() - began_monotonic) * 1000)


def _ms_since_float(began: float) -> float:
    return round((time.perf_counter() - began) * 1000, 2)
