"""Steps that check rather than act: ``verify``, ``wait_for`` and ``assert_url``.

``verify`` reads its instruction for what kind of check is meant — "URL contains X", "the
'Email' field has value X", "the 'Pay' button is disabled / enabled / checked", "X is not
visible" — and otherwise checks that ``expected`` is visible as text on the rendered page
(what a user sees, not the HTML source). All waits are web-first (they retry until the
condition holds or ``VERIFY_TIMEOUT_SECONDS``, within the step's budget, runs out).
"""

from __future__ import annotations

import asyncio
import difflib
import fnmatch
import re
import time
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from playwright.async_api import Locator, Page
from playwright.async_api import TimeoutError as PlaywrightTimeout

from worker.agent.errors import AssertionFailed, StepFailed

POLL_SECONDS = 0.1
_URL = re.compile(r"\b(url|address|redirect\w*|location|navigated)\b", re.I)
_VALUE = re.compile(r"\b(has|have|with|contains?|shows?)\s+(the\s+)?value\b|\bvalue\s+(is|of)\b",
                    re.I)
_STATES = (
    (re.compile(r"\b(is|be|are)\s+(not\s+enabled|disabled|greyed out|grayed out)\b", re.I),
     "disabled"),
    (re.compile(r"\b(is|be|are)\s+(enabled|not\s+disabled|clickable)\b", re.I), "enabled"),
    (re.compile(r"\b(is|be|are)\s+(not\s+checked|unchecked|unticked|off)\b", re.I), "unchecked"),
    (re.compile(r"\b(is|be|are)\s+(checked|ticked|selected|on)\b", re.I), "checked"),
)
_TITLE = re.compile(r"\b(page\s+title|title\s+of\s+the\s+page|tab\s+title)\b", re.I)
# The first pattern the instruction matches names the check, so the order is the precedence:
# "the page title has value X" is a title check, "the 'Pay' button is not checked" unchecked.
_KINDS = ((_URL, "url"), (_TITLE, "title"), (_VALUE, "value"), *_STATES)


def check_kind(instruction: str) -> str:
    """``url`` | ``title`` | ``value`` | a state | ``text`` (the default)."""
    return next((kind for pattern, kind in _KINDS if pattern.search(instruction)), "text")


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
    text = await page.evaluate("() => document.body ? document.body.innerText : ''")
    lines = [line.strip() for line in text.splitlines() if line.strip()][:2000]
    found = difflib.get_close_matches(expected, lines, n=1, cutoff=0.5)
    return found[0][:200] if found else None


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
        if state == "unchecked":
            return not await locator.is_checked(timeout=timeout)
        return bool(await checks[state](timeout=timeout))

    try:
        if await until(ok, deadline):
            return
        actual = (await locator.input_value(timeout=1000)) if state == "value" else None
    except PlaywrightTimeout as exc:
        raise StepFailed(f"could not read the element's state: {str(exc).splitlines()[0]}"
                         ) from exc
    if state == "value":
        raise AssertionFailed(f"expected the value {expected!r}, got {actual!r}")
    raise AssertionFailed(f"expected the element to be {state}, but it is not")


async def wait_for_text(page: Page, target: str, *, negated: bool, deadline: float) -> None:
    """Some visible element shows ``target`` (as text, name, label …), or none does."""
    any_match = (
        page.get_by_text(target)
        .or_(page.get_by_label(target))
        .or_(page.get_by_placeholder(target))
        .or_(page.get_by_alt_text(target))
        .or_(page.get_by_title(target))
        .filter(visible=True)
    )

    async def shown() -> bool:
        return await any_match.count() > 0

    async def gone() -> bool:
        return await any_match.count() == 0

    if not await until(gone if negated else shown, deadline):
        verb = "disappear" if negated else "appear"
        raise AssertionFailed(f"{target!r} did not {verb} in time")
