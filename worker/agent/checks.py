"""Steps that check rather than act: ``verify``, ``wait_for`` and ``assert_url``.

What a ``verify`` checks is decided by ``ledger.verify.read_check`` (its ``state`` field, or
plain words; visible text by default); this module performs the checks. All waits are
web-first (they retry until the condition holds or ``VERIFY_TIMEOUT_SECONDS``, within the
step's budget, runs out). Ranking a page's text against a missing one is CPU work done in a
worker thread with a time budget, so a large page never stalls the worker's event loop.
"""

from __future__ import annotations

import asyncio
import difflib
import fnmatch
import re
import time
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from playwright.async_api import Error as PlaywrightError
from playwright.async_api import Locator, Page

from worker.agent.errors import AssertionFailed, StepFailed, StepTimedOut

POLL_SECONDS = 0.1
#: at most this long (in a worker thread) to rank a page's lines against a missing text
CLOSEST_BUDGET_SECONDS = 0.5
MAX_LINES = 5000


def url_matches(url: str, expected: str, *, contains: bool) -> bool:
    """Exact URL, path (``/x``), glob (``*``), or substring when the step says "contains"."""
    expected = expected.strip()
    if any(ch in expected for ch in "*?") and fnmatch.fnmatchcase(url, expected):
        return True
    if contains:
        return expected in url
    if url.rstrip("/") == expected.rstrip("/"):
        return True
    if expected.startswith("/"):
        parts = urlsplit(url)
        path = parts.path + (f"?{parts.query}" if "?" in expected else "")
        return path.rstrip("/") == expected.rstrip("/") or (parts.path or "/") == expected
    return False


async def until(condition: Callable[[], Awaitable[bool]], deadline: float) -> bool:
    """Poll ``condition`` until it holds (True) or ``deadline`` (monotonic) passes (False)."""
    while True:
        if await condition():
            return True
        if time.monotonic() + POLL_SECONDS >= deadline:
            return False
        await asyncio.sleep(POLL_SECONDS)


async def verify_url(page: Page, expected: str, instruction: str, deadline: float) -> None:
    contains = bool(re.search(r"\b(contains?|includes?|has)\b", instruction, re.I))

    async def ok() -> bool:
        return url_matches(page.url, expected, contains=contains)

    if not await until(ok, deadline):
        how = "contain" if contains else "match"
        raise AssertionFailed(f"expected the URL to {how} {expected!r}, but it is {page.url!r}")


async def verify_title(page: Page, expected: str, deadline: float) -> None:
    seen = ""

    async def ok() -> bool:
        nonlocal seen
        seen = await page.title()
        return expected.lower() in seen.lower()

    if not await until(ok, deadline):
        raise AssertionFailed(f"expected the page title to contain {expected!r}, got {seen!r}")


async def verify_text(page: Page, expected: str, *, negated: bool, deadline: float) -> None:
    """``expected`` visible as text (or, negated, nowhere visible) on the rendered page."""
    visible = page.get_by_text(expected).filter(visible=True)

    async def shown() -> bool:
        return await visible.count() > 0

    async def gone() -> bool:
        return await visible.count() == 0

    if negated:
        if not await until(gone, deadline):
            raise AssertionFailed(f"expected text {expected!r} not to be visible, but it is")
        return
    if await until(shown, deadline):
        return
    hint = await closest_text(page, expected)
    raise AssertionFailed(
        f"expected text {expected!r} is not visible on the page"
        + (f"; closest visible text: {hint!r}" if hint else "")
    )


async def closest_text(page: Page, expected: str) -> str | None:
    """The visible line most like ``expected``, to make a failed check easy to read."""
    text = await page.evaluate(
        "(n) => document.body ? document.body.innerText.slice(0, n) : ''", 400_000)
    lines = [line.strip() for line in text.splitlines() if line.strip()][:MAX_LINES]
    found = await asyncio.to_thread(closest, expected, lines, 1, CLOSEST_BUDGET_SECONDS)
    return found[0][:200] if found else None


def closest(wanted: str, options: list[str], n: int, budget: float,
            cutoff: float = 0.5) -> list[str]:
    """The ``n`` options most like ``wanted`` (similarity ≥ ``cutoff``), best first; stops
    after ``budget`` seconds with the best seen so far (runs in a worker thread)."""
    stop = time.monotonic() + budget
    matcher = difflib.SequenceMatcher()
    matcher.set_seq2(wanted.lower())
    scored: list[tuple[float, int, str]] = []
    for index, option in enumerate(options):
        if index % 64 == 0 and time.monotonic() > stop:
            break
        matcher.set_seq1(option.lower()[:400])
        if matcher.real_quick_ratio() < cutoff or matcher.quick_ratio() < cutoff:
            continue
        ratio = matcher.ratio()
        if ratio >= cutoff:
            scored.append((-ratio, index, option))
    return [option for _, _, option in sorted(scored)[:n]]


async def verify_state(locator: Locator, state: str, expected: str | None, deadline: float
                       ) -> None:
    timeout = max(0.0, deadline - time.monotonic()) * 1000
    checks = {
        "disabled": locator.is_disabled, "enabled": locator.is_enabled,
        "checked": locator.is_checked,
    }

    async def ok() -> bool:
        if state == "value":
            return (await locator.input_value(timeout=timeout)) == (expected or "")
        if state in ("checked", "unchecked"):
            return await _is_on(locator, timeout) == (state == "checked")
        return bool(await checks[state](timeout=timeout))

    try:
        if await until(ok, deadline):
            return
        actual = (await locator.input_value(timeout=1000)) if state == "value" else None
    except PlaywrightError as exc:
        raise StepFailed(f"could not read the element's {state} state: "
                         f"{str(exc).splitlines()[0]}") from exc
    if state == "value":
        raise AssertionFailed(f"expected the value {expected!r}, got {actual!r}")
    raise AssertionFailed(f"expected the element to be {state}, but it is not")


_ON_JS = """el => ['aria-selected', 'aria-pressed', 'aria-expanded']
  .some(a => el.getAttribute(a) === 'true')"""


async def _is_on(locator: Locator, timeout: float) -> bool:  # noqa: ASYNC109
    """Checked — or, for a tab, option or toggle button, selected / pressed."""
    try:
        return await locator.is_checked(timeout=timeout)
    except PlaywrightError as exc:
        if "Not a checkbox or radio button" not in str(exc):
            raise
        return bool(await locator.evaluate(_ON_JS, timeout=timeout))


async def verify_shown(page: Page, phrase: str, *, shown: bool, roles: tuple[str, ...],
                       deadline: float) -> None:
    """Something visible shows ``phrase`` (as text, accessible name, label …), or nothing
    does (``shown=False``)."""
    found = _anything(page, phrase, roles)

    async def visible() -> bool:
        return await found.count() > 0

    async def gone() -> bool:
        return await found.count() == 0

    if await until(visible if shown else gone, deadline):
        return
    if shown:
        raise AssertionFailed(f"expected {phrase!r} to be visible, but nothing visible shows it")
    raise AssertionFailed(f"expected {phrase!r} to be hidden, but it is visible")


async def verify_count(items: Locator, expected: int, what: str, deadline: float) -> None:
    """Exactly ``expected`` visible ``items``."""
    seen = -1

    async def ok() -> bool:
        nonlocal seen
        seen = await items.count()
        return seen == expected

    if not await until(ok, deadline):
        raise AssertionFailed(f"expected {expected} {what}, but {seen} are visible")


def _anything(page: Page, phrase: str, roles: tuple[str, ...]) -> Locator:
    found = (
        page.get_by_text(phrase)
        .or_(page.get_by_label(phrase))
        .or_(page.get_by_placeholder(phrase))
        .or_(page.get_by_alt_text(phrase))
        .or_(page.get_by_title(phrase))
    )
    for role in roles:
        found = found.or_(page.get_by_role(role, name=phrase))  # type: ignore[arg-type]
    return found.filter(visible=True)


async def wait_for_text(page: Page, target: str, *, negated: bool, deadline: float) -> None:
    """Some visible element shows ``target`` (as text, name, label …), or none does."""
    any_match = _anything(page, target, ())

    async def shown() -> bool:
        return await any_match.count() > 0

    async def gone() -> bool:
        return await any_match.count() == 0

    if not await until(gone if negated else shown, deadline):
        verb = "disappear" if negated else "appear"
        raise WaitTimedOut(f"{target!r} did not {verb} in time")


class WaitTimedOut(StepTimedOut):
    """A ``wait_for`` step waited its whole time: a timeout, whatever it waited for."""
