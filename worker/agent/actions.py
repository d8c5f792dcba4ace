"""Doing what one step says, on a page: resolve the target (if any), act, check.

``perform(ctx)`` dispatches on the action. It raises ``StepFailed`` subclasses for test
failures and lets Playwright errors it cannot explain escape to the session, which decides
whether the browser died (``ExecutorError``) or the action failed.
"""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any, Literal
from urllib.parse import urljoin

from playwright.async_api import Error as PlaywrightError
from playwright.async_api import FilePayload, Locator, Page

from ledger.artifacts import ArtifactNotFound, ArtifactStore
from ledger.definition import Step, navigate_place
from ledger.verify import UnclearCheck, read_check
from projections.locator_memory import MemoryEntry
from worker.agent import checks
from worker.agent.candidates import scope_specs
from worker.agent.errors import (
    ActionFailed,
    AmbiguousTarget,
    AssertionFailed,
    Blocked,
    GestureMismatch,
    StepFailed,
    TargetNotFound,
    UnclearStep,
)
from worker.agent.instruction import DEFAULT_ROLES, Intent, Scope, check_subject
from worker.agent.locators import LocatorSpec
from worker.agent.resolver import Resolution, Resolver
from worker.agent.untraced import untraced

_STATE_WORDS = {"disabled", "enabled", "checked", "unchecked"}
# The element a state check looks at is found the way this action would find it.
_CHECK_ACTION = {"value": "fill", "checked": "check", "unchecked": "check",
                 "enabled": "click", "disabled": "click"}
# Gestures an instruction may name, by the first words that say what to do.
_GESTURES = (
    ("double_click", re.compile(r"^(?:double[\s-]?(?:click|tap)|dbl[\s-]?click)", re.I)),
    ("right_click", re.compile(r"^(?:right[\s-]?click|secondary[\s-]click)", re.I)),
    ("hover", re.compile(r"^(?:hover|mouse[\s-]?over)\b", re.I)),
    ("drag", re.compile(r"^drag\b", re.I)),
)
_LEAD = re.compile(r"^(?:(?:now|then|please|next|and|first|finally)[\s,]+)+", re.I)
_URL_IN_TEXT = re.compile(r"https?://[^\s'\"<>]+|(?<![\w/])/[\w\-./?=&%#~+:@]*", re.I)
_KEY_NAMES = {"ctrl": "Control", "control": "Control", "cmd": "Meta", "command": "Meta",
              "meta": "Meta", "win": "Meta", "option": "Alt", "alt": "Alt", "shift": "Shift",
              "esc": "Escape", "escape": "Escape", "return": "Enter", "enter": "Enter",
              "del": "Delete", "delete": "Delete", "tab": "Tab", "space": "Space",
              "backspace": "Backspace", "up": "ArrowUp", "down": "ArrowDown",
              "left": "ArrowLeft", "right": "ArrowRight", "pgup": "PageUp",
              "pgdn": "PageDown", "home": "Home", "end": "End"}


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
    artifacts: ArtifactStore | None = None  # where an upload step's files are stored
    #: the run's open pages, oldest first (``switch_tab`` picks one: ``switch_to``)
    tabs: list[Page] = field(default_factory=list)
    switch_to: Page | None = None
    resolved_url: str | None = None  # the page's URL when the target was resolved
    screenshot: bytes | None = None  # an explicit ``screenshot`` step's capture
    #: what the session does to a value before the browser gets it (reveals secrets, masks
    #: passwords: ``worker.agent.secrets``); unset, the value as written
    prepare: Callable[[Resolution | None, str], Awaitable[str]] | None = None
    #: the gesture during which the page or browser went away ("Target … closed"), if any:
    #: the session tells a page its own gesture closed from a browser that died
    closed_during: str | None = None

    async def typed(self, element: Resolution | None, value: str) -> str:
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

    async def act(self, what: str, action: Callable[[], Awaitable[Any]], *,
                  gesture: bool = True) -> Any:
        """Run Playwright's action, timing it and explaining its failure. ``gesture``:
        something done to the page (not a navigation), which may make the page close."""
        began = time.perf_counter()
        try:
            return await action()
        except PlaywrightError as exc:
            if _browser_gone(exc):
                if gesture:
                    self.closed_during = what
                raise
            if "intercepts pointer events" in str(exc):
                raise Blocked(f"{what} failed: {explain(exc)}") from exc
            raise ActionFailed(f"{what} failed: {explain(exc)}") from exc
        finally:
            self.timing["action_ms"] = self.timing.get("action_ms", 0.0) + _ms(began)


async def perform(ctx: StepContext) -> Resolution | None:
    """Execute ``ctx.step``; the resolution when it acted on an element."""
    handler = _HANDLERS[ctx.intent.action]
    named = named_gesture(ctx.step.instruction)
    if named is not None and named != ctx.intent.action:
        raise GestureMismatch(
            f"the instruction asks for a {named.replace('_', '-')} but the step's action is "
            f"'{ctx.intent.action}': runledger never performs one gesture in place of another "
            f"— set the action to '{named}' or reword the instruction",
            details={"gesture": named})
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


async def _double_click(ctx: StepContext) -> Resolution:
    found = await ctx.resolve()
    await ctx.act(f"double-click on {found.spec}",
                  lambda: found.locator.dblclick(timeout=ctx.remaining_ms))
    return found


async def _right_click(ctx: StepContext) -> Resolution:
    found = await ctx.resolve()
    await ctx.act(f"right-click on {found.spec}",
                  lambda: found.locator.click(button="right", timeout=ctx.remaining_ms))
    return found


async def _drag(ctx: StepContext) -> Resolution:
    goal = ctx.step.to or drop_phrase(ctx.step.instruction, ctx.intent)
    if not goal:
        raise StepFailed("a drag needs somewhere to drop: name it in the instruction "
                         "(\"Drag 'A' to 'B'\") or in the step's 'to' field")
    found = await ctx.resolve()
    onto = Intent(action="drag", target=goal, roles=(), lenient=True)
    target = await ctx.resolve(onto, record=False)
    await ctx.act(f"drag {found.spec} to {target.spec}",
                  lambda: found.locator.drag_to(target.locator, timeout=ctx.remaining_ms))
    ctx.details["drop"] = str(target.spec)
    return found


async def _scroll(ctx: StepContext) -> Resolution | None:
    words = ctx.step.instruction.lower()
    edge = re.search(r"\b(bottom|end|top|start)\b", words) and not ctx.intent.quoted
    if not ctx.step.advanced_selector and (not ctx.intent.target or edge):
        up = bool(re.search(r"\b(top|start|up)\b", words))
        await ctx.act("scroll", lambda: ctx.page.evaluate(
            "(up) => window.scrollTo(0, up ? 0 : document.documentElement.scrollHeight)", up))
        return None
    found = await ctx.resolve()
    await ctx.act(f"scroll to {found.spec}",
                  lambda: found.locator.scroll_into_view_if_needed(timeout=ctx.remaining_ms))
    return found


async def _upload(ctx: StepContext) -> Resolution:
    files = await _stored_files(ctx)
    found = await ctx.resolve()
    if found.match.fingerprint.get("tag") == "input" and (
            (found.match.fingerprint.get("attrs") or {}).get("type") == "file"):
        await ctx.act(f"choose files in {found.spec}",
                      lambda: found.locator.set_input_files(files, timeout=ctx.remaining_ms))
        return found

    async def choose() -> None:
        # A styled button or drop zone: click it and answer the file chooser it opens.
        async with ctx.page.expect_file_chooser(timeout=ctx.remaining_ms) as chooser:
            await found.locator.click(timeout=ctx.remaining_ms)
        await (await chooser.value).set_files(files, timeout=ctx.remaining_ms)

    await ctx.act(f"choose files through {found.spec}", choose)
    return found


async def _stored_files(ctx: StepContext) -> list[FilePayload]:
    if ctx.artifacts is None:
        raise StepFailed("uploads need the artifact store, which this executor has not got")
    payloads: list[FilePayload] = []
    for file in ctx.step.files or []:
        try:
            data = await ctx.artifacts.get(file.id)
        except ArtifactNotFound:
            raise StepFailed(f"the file {file.name!r} ({file.id[:12]}…) is not stored: upload "
                             "it with the test before running it") from None
        payloads.append({"name": file.name, "mimeType": file.content_type, "buffer": data})
    return payloads


async def _fill(ctx: StepContext) -> Resolution:
    found = await ctx.resolve()
    value = await ctx.typed(found, ctx.step.value or "")
    await ctx.act(f"fill {found.spec}", lambda: found.locator.fill(value, timeout=ctx.remaining_ms))
    return found


async def _check(ctx: StepContext) -> Resolution:
    found = await ctx.resolve()
    wanted = ctx.intent.action == "check"
    verb = "check" if wanted else "uncheck"
    if await _covered_by_its_label(found.locator):
        # Styled kits hide the real input under its label's drawing: click the label, as a
        # person does, then make sure the state is the one asked for.
        label = found.locator.locator(_LABEL_OF)

        async def by_label() -> None:
            if await found.locator.is_checked() != wanted:
                await label.click(timeout=ctx.remaining_ms)
            if await found.locator.is_checked() != wanted:
                raise ActionFailed(f"clicking its label did not {verb} {found.spec}")

        await ctx.act(f"{verb} {found.spec} through its label", by_label)
        return found
    if wanted:
        await ctx.act(f"check {found.spec}", lambda: found.locator.check(timeout=ctx.remaining_ms))
    else:
        await ctx.act(f"uncheck {found.spec}",
                      lambda: found.locator.uncheck(timeout=ctx.remaining_ms))
    return found


_LABEL_OF = "xpath=ancestor::label[1]"
_COVERED_JS = """el => {
  const centre = (r) => [r.x + r.width / 2, r.y + r.height / 2];
  let [x, y] = centre(el.getBoundingClientRect());
  if (x < 0 || y < 0 || x >= innerWidth || y >= innerHeight) {
    // 'instant': a page's smooth scrolling would move it only after this reads the point
    el.scrollIntoView({block: 'center', inline: 'center', behavior: 'instant'});
    [x, y] = centre(el.getBoundingClientRect());
  }
  const hit = document.elementFromPoint(x, y);
  if (!hit || hit === el || el.contains(hit)) return false;
  const labels = el.labels ? [...el.labels] : [];
  return labels.some(l => l.closest('label') === l && l.contains(el) && l.getClientRects().length);
}"""


async def _covered_by_its_label(locator: Locator) -> bool:
    """Whether the control's centre is covered (a styled checkbox drawn over it) while a
    visible label wraps it. One round trip: the script scrolls the control into view itself
    when its centre is outside the viewport (``elementFromPoint`` sees only the viewport)."""
    try:
        return bool(await untraced(lambda: locator.evaluate(_COVERED_JS, timeout=2000)))
    except PlaywrightError:
        return False


async def _press(ctx: StepContext) -> Resolution | None:
    key = key_chord(ctx.step.value or "")
    if not (ctx.intent.target or ctx.step.advanced_selector):
        await ctx.act(f"press {key}", lambda: ctx.page.keyboard.press(key))
        return None
    found = await ctx.resolve()
    await ctx.act(f"press {key} in {found.spec}",
                  lambda: found.locator.press(key, timeout=ctx.remaining_ms))
    return found


async def _select(ctx: StepContext) -> Resolution:
    found = await ctx.resolve()
    value = await ctx.typed(found, ctx.step.value or "")
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
    place = navigate_place(ctx.step)
    url = urljoin(ctx.test_url, place) if place else ctx.test_url
    await goto(ctx, await ctx.typed(None, url))


async def _go_back(ctx: StepContext) -> None:
    response = await ctx.act("go back", lambda: ctx.page.go_back(timeout=ctx.remaining_ms,
                                                                   wait_until="load"))
    if response is None and ctx.page.url in ("about:blank", ""):
        raise ActionFailed("there is no page to go back to")


async def _switch_tab(ctx: StepContext) -> None:
    """"Switch to the 'Docs' tab" (by title or address), "… back to the first tab", "… to
    the new tab"; with two tabs open, "the other one"."""
    open_tabs = [page for page in ctx.tabs if not page.is_closed()]
    others = [page for page in open_tabs if page is not ctx.page]
    words = ctx.step.instruction.lower()
    chosen: list[Page]
    if ctx.intent.quoted:
        wanted = ctx.intent.quoted[0].lower()
        chosen = []
        for page in open_tabs:
            title = (await page.title()).lower()
            if wanted in title or wanted in page.url.lower():
                chosen.append(page)
    elif re.search(r"\b(first|original|main|initial|opening)\b", words):
        chosen = open_tabs[:1]
    elif re.search(r"\b(new|newest|latest|last|popup|other)\b", words) and others:
        chosen = others[-1:]
    elif re.search(r"\b(previous|back)\b", words) and others:
        chosen = others[-1:]
    else:
        chosen = others if len(others) == 1 else []
    if len(chosen) != 1:
        listed = "; ".join(p.url for p in open_tabs)
        raise (AmbiguousTarget if chosen else TargetNotFound)(
            f"{'several' if chosen else 'no'} open tab(s) fit the instruction; open tabs: "
            f"{listed} — name the tab's title in quotes, or say first / new / previous")
    page = chosen[0]
    await ctx.act("switch tab", page.bring_to_front)
    ctx.page = ctx.switch_to = page


async def _reload(ctx: StepContext) -> None:
    await ctx.act("reload", lambda: ctx.page.reload(timeout=ctx.remaining_ms, wait_until="load"),
                  gesture=False)


async def goto(ctx: StepContext, url: str) -> None:
    response = await ctx.act(
        f"navigate to {url}",
        lambda: ctx.page.goto(url, timeout=ctx.remaining_ms, wait_until="load"),
        gesture=False,
    )
    if response is not None and response.status >= 400:
        raise ActionFailed(f"navigate to {url} returned HTTP {response.status}")


async def _verify(ctx: StepContext) -> Resolution | None:
    step = ctx.step
    expected = step.expected or ""
    try:
        reading = read_check(step.instruction, step.state.value if step.state else None)
    except UnclearCheck as exc:
        raise UnclearStep(str(exc), details={"kinds": exc.kinds}) from None
    kind = reading.kind
    ctx.details["check"] = kind
    if kind == "url":
        await checks.verify_url(ctx.page, expected, step.instruction, ctx.check_deadline)
        return None
    if kind == "title":
        await checks.verify_title(ctx.page, expected, ctx.check_deadline)
        return None
    if kind == "text":
        try:
            await checks.verify_text(ctx.page, expected, negated=ctx.intent.negated,
                                     deadline=ctx.check_deadline)
        except AssertionFailed as exc:
            if _URL_IN_TEXT.fullmatch(expected.strip()):
                exc.args = (f"{exc} (a text check: to check the address, use 'assert_url' or "
                            "say 'URL')",)
            raise
        return None
    subject = check_subject(step, _CHECK_ACTION.get(kind, "verify"))
    if kind in ("visible", "hidden"):
        # Words name what to look for; an expected text, when the step gives one, is it.
        phrase = (step.target or subject.target or expected) if reading.explicit else (
            expected or subject.target)
        if not phrase:
            raise StepFailed(f"the instruction names nothing to check as {kind}")
        await checks.verify_shown(ctx.page, phrase, shown=kind == "visible",
                                  roles=subject.roles, deadline=ctx.check_deadline)
        return None
    if kind == "count":
        wanted = int(expected) if expected.strip().isdigit() else reading.count or 0
        await _verify_count(ctx, subject, reading.count_roles or ("listitem",), wanted)
        return None
    # A check on an element: found whether or not it is enabled.
    if not subject.target and kind in _STATE_WORDS and expected.lower() not in _STATE_WORDS:
        subject = replace(subject, target=expected or None)
    if not subject.target and not subject.roles and not step.advanced_selector:
        raise StepFailed(f"the instruction names no element to check as {kind}")
    if kind in ("enabled", "disabled") and not subject.roles:
        subject = replace(subject, roles=(*DEFAULT_ROLES["click"], *DEFAULT_ROLES["fill"]))
    found = await ctx.resolve(subject)
    await checks.verify_state(found.locator, kind, expected, ctx.check_deadline)
    return found


async def _verify_count(ctx: StepContext, subject: Intent, roles: tuple[str, ...],
                        expected: int) -> None:
    """``expected`` visible things of ``roles``, in the container the subject names (a
    scope, or "the 'Todo' list") or on the whole page."""
    root: Any = ctx.page
    container = subject.scope
    noun = re.sub(r"[^a-z ]", "", (subject.target or "").lower()).strip()
    if container is None and subject.target and noun not in _CONTAINER_WORDS:
        container = Scope(_container_role(subject.prose), subject.target)
    if container is not None:
        for spec in [*scope_specs(container), *_slug_specs(container.text)]:
            located = spec.build(ctx.page).filter(visible=True)
            if await located.count() == 1:
                root = located
                break
        else:
            raise TargetNotFound(f"found no single {container.role} for {container.text!r} "
                                 "to count in")
    items: Any = None
    for role in roles:
        found = root.get_by_role(role)
        if role == "row":
            found = found.filter(has=ctx.page.get_by_role("cell"))  # not the header row
        items = found if items is None else items.or_(found)
    await checks.verify_count(items.filter(visible=True), expected, "/".join(roles),
                              ctx.check_deadline)


_CONTAINER_WORDS = {"", "list", "table", "page", "grid", "menu", "results", "items"}


def _slug_specs(name: str) -> list[Any]:
    """"the todo list" → the element with id or class ``todo-list`` / ``todo_list``."""
    words = re.findall(r"[a-z0-9]+", name.lower())
    slugs = dict.fromkeys(("-".join(words), "_".join(words)))
    return [LocatorSpec.css(f'[id="{slug}"], [class~="{slug}"]') for slug in slugs if slug]


def _container_role(prose: str) -> str:
    words = prose.lower().split()
    for noun, role in (("table", "table"), ("grid", "grid"), ("list", "list"),
                       ("menu", "menu"), ("form", "form")):
        if noun in words:
            return role
    return "region"


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
    "double_click": _double_click,
    "right_click": _right_click,
    "drag": _drag,
    "scroll": _scroll,
    "go_back": _go_back,
    "reload": _reload,
    "upload": _upload,
    "switch_tab": _switch_tab,
}


def named_gesture(instruction: str) -> str | None:
    """The gesture the instruction's first words ask for (double_click, right_click, hover,
    drag), or None when it names none of them."""
    text = _LEAD.sub("", instruction.strip())
    return next((name for name, pattern in _GESTURES if pattern.match(text)), None)


def drop_phrase(instruction: str, intent: Intent) -> str | None:
    """Where "Drag 'A' to 'B'" drops: its last quoted string, else the words after to/onto."""
    if len(intent.quoted) >= 2:
        return intent.quoted[-1]
    match = re.search(r"\b(?:to|onto|into|on|over)\s+(?:the\s+)?(.+?)\s*[.!]?$",
                      instruction, re.I)
    return match.group(1).strip(" '\"") if match else None


def key_chord(keys: str) -> str:
    """"ctrl+a", "Ctrl-A", "Shift + Tab" → Playwright's "Control+a", "Shift+Tab"."""
    text = keys.strip()
    if len(text) <= 1:
        return text
    parts = [p for p in re.split(r"\s*\+\s*|(?<=\w)-(?=\w)", text) if p.strip()]
    return "+".join(_KEY_NAMES.get(p.lower(), p) for p in parts)


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
