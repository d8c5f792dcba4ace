"""What a locator matches on the page, in one round trip.

``probe(locator, action)`` runs one script over every element the locator matches and
returns, for the visible ones, a stable element id (so candidates that reach the same
element are recognised as one), whether the action can act on it (enabled; editable for a
fill), whether it lies inside the open modal dialog, and its fingerprint. The same call
reports the page's state: an open modal, a CAPTCHA, a known consent banner (those last two
only when asked: they scan the whole document).

A fingerprint is what healing compares when a stored locator stops matching:
tag, role, accessible-ish name, id, classes, text, a few attributes and the ancestor path.
``similarity(stored, current)`` scores two fingerprints between 0 and 1.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from importlib import resources
from typing import Any

from playwright.async_api import Locator, Page

from worker.agent.banners import PROBE_BANNERS

_LIB = resources.files("worker.agent").joinpath("probe.js").read_text(encoding="utf-8")
_KEY = "window[Symbol.for('runledger.agent')]"
# The banner list rides inside the library, not in every call's arguments.
_API = (f"(() => {{\nconst BANNERS = {json.dumps(PROBE_BANNERS)};\n{_LIB}\n"
        "return {probeElements, scanPage, pageState, settleState, namedElements,"
        " takeOpened};\n})()")


def _entry(params: str, call: str) -> tuple[str, str]:
    """The short script (the library is already on the page: a few bytes per call) and the
    full one that installs it first — sent once per document, when the short one says so."""
    short = f"({params}) => {{ const R = {_KEY}; return R ? R.{call} : null; }}"
    full = f"({params}) => {{ const R = {_KEY} || ({_KEY} = {_API}); return R.{call}; }}"
    return short, full


#: for ``BrowserContext.add_init_script``: every document starts with the library, so even a
#: page's first probe is a short call
INSTALL_JS = f"{_KEY} = {_KEY} || {_API};"
PROBE_JS = _entry("els, opts", "probeElements(els, opts)")
PROBE_ONE_JS = _entry("el, opts", "probeElements([el], opts)")
SCAN_JS = _entry("opts", "scanPage(opts)")
STATE_JS = _entry("opts", "pageState(opts)")
SETTLE_JS = _entry("opts", "settleState()")
OPENED_JS = _entry("opts", "takeOpened()")
NAMED_JS = _entry("opts", "namedElements(opts)")
#: a page counts as settled once its DOM and network have been quiet this long
QUIET_SECONDS = 0.5
#: a request open longer than this is a long poll or a stream, not the page still loading
LONG_REQUEST_SECONDS = 2.0


@dataclass(frozen=True)
class PageState:
    modal: bool = False
    captcha: str | None = None
    consent: str | None = None  # name of a visible known consent banner


@dataclass(frozen=True)
class Match:
    id: int
    ok: bool  # actionable for this action
    in_modal: bool
    fingerprint: dict[str, Any] = field(default_factory=dict)
    within: tuple[int, ...] = ()  # ids of other matches that contain this one


@dataclass(frozen=True)
class Probe:
    matches: tuple[Match, ...]
    hidden: int
    page: PageState

    def usable(self, *, modal_only: bool) -> tuple[Match, ...]:
        """The visible matches the search may pick from (inside the modal when one is open)."""
        return tuple(m for m in self.matches if m.in_modal or not modal_only)


def outermost(matches: tuple[Match, ...]) -> tuple[Match, ...]:
    """Nested matches count once — a link and the image it wraps are one target: the
    outer one, unless only the inner one can be acted on (an input in a wrapper)."""
    ids = {m.id for m in matches}
    outer = tuple(m for m in matches if not ids.intersection(m.within))
    if len(outer) == len(matches) or any(m.ok for m in outer):
        return outer
    inner = tuple(m for m in matches if m.ok)
    return inner or outer


def probe_options(action: str, fingerprints: bool = True) -> dict[str, Any]:
    return {
        "editable": action == "fill",
        "enabled": action not in ("verify", "wait_for", "hover"),
        "fingerprints": fingerprints,
        "state": True,
    }


async def probe(locator: Locator, options: dict[str, Any]) -> Probe:
    """``options["state"] = False`` skips the CAPTCHA and banner checks (the modal stays)."""
    raw = await locator.evaluate_all(PROBE_JS[0], options)
    if raw is None:
        raw = await locator.evaluate_all(PROBE_JS[1], options)
    return _probe_from(raw)


def _probe_from(raw: dict[str, Any]) -> Probe:
    matches = tuple(
        Match(m["id"], m["ok"], m["modal"], m["fp"] or {}, tuple(m["within"]))
        for m in raw["elements"]
    )
    return Probe(outermost(matches), raw["hidden"], PageState(**raw["page"]))


def same_state(state: PageState, page: PageState) -> PageState:
    """``page`` from a probe that skipped the banner and CAPTCHA checks, completed by
    ``state`` (the last full check)."""
    return PageState(page.modal, state.captcha, state.consent)


async def probe_one(locator: Locator, options: dict[str, Any], timeout_ms: float = 2000
                    ) -> Probe:
    """Like ``probe`` for a locator that names one element (``aria-ref=…``, which
    Playwright resolves for single-element calls only)."""
    raw = await locator.evaluate(PROBE_ONE_JS[0], options, timeout=timeout_ms)
    if raw is None:
        raw = await locator.evaluate(PROBE_ONE_JS[1], options, timeout=timeout_ms)
    return _probe_from(raw)


async def page_state(page: Page) -> PageState:
    return PageState(**await _evaluate(page, STATE_JS, {}))


async def _evaluate(page: Page, scripts: tuple[str, str], arg: Any) -> Any:
    result = await page.evaluate(scripts[0], arg)
    return result if result is not None else await page.evaluate(scripts[1], arg)


async def settled(page: Page, network: NetworkActivity) -> bool:
    """No navigation or request in flight, the document loaded, the DOM quiet a moment."""
    if network.busy():
        return False
    state = await _evaluate(page, SETTLE_JS, {})
    return bool(state["ready"]) and state["quiet_ms"] >= QUIET_SECONDS * 1000


async def window_calls(page: Page) -> tuple[int, bool]:
    """How many times the page called ``window.open`` since the last call, and whether it
    called ``window.close``."""
    found = await _evaluate(page, OPENED_JS, {}) or {}
    return int(found.get("opened") or 0), bool(found.get("closing"))


async def named_elements(page: Page, limit: int = 3000, scan: int = 20000
                         ) -> list[tuple[str, str, str]]:
    """Visible (role, name, text) rows of the page, for "closest candidates"."""
    raw = await _evaluate(page, NAMED_JS, {"limit": limit, "scan": scan})
    rows = await asyncio.to_thread(json.loads, raw)
    return [(str(r[0]), str(r[1]), str(r[2])) for r in rows]


class NetworkActivity:
    """Requests in flight and the last navigation of a page, from its events."""

    def __init__(self, page: Page) -> None:
        self._open: dict[Any, float] = {}
        self._last = time.monotonic()
        page.on("request", self._started)
        page.on("requestfinished", self._ended)
        page.on("requestfailed", self._ended)
        page.on("framenavigated", lambda _: self._touch())

    def _touch(self) -> None:
        self._last = time.monotonic()

    def _started(self, request: Any) -> None:
        self._open[request] = time.monotonic()
        self._touch()

    def _ended(self, request: Any) -> None:
        self._open.pop(request, None)
        self._touch()

    def busy(self) -> bool:
        now = time.monotonic()
        if now - self._last < QUIET_SECONDS:
            return True
        return any(now - began < LONG_REQUEST_SECONDS for began in self._open.values())


async def scan(page: Page, stored: dict[str, Any], action: str) -> list[Match]:
    """Visible elements of the stored fingerprint's tag or role (for fingerprint healing)."""
    tag = str(stored.get("tag") or "*")
    role = str(stored.get("role") or "")
    roles = [role] if role and role != "generic" else []
    selector = f"{tag}, [role={role}]" if roles else tag
    rows = await _evaluate(page, SCAN_JS, {
        "selector": selector, "roles": roles, "tags": [tag], "editable": action == "fill",
    })
    return [Match(r["id"], r["ok"], True, r["fp"]) for r in rows]


# -- similarity ------------------------------------------------------------------------------

_ATTRS = ("name", "type", "placeholder", "data-testid", "aria-label", "title", "alt", "href")


def _ratio(a: str, b: str) -> float:
    if a == b:
        return 1.0
    return SequenceMatcher(None, a.lower(), b.lower()).ratio()


def similarity(stored: dict[str, Any], current: dict[str, Any]) -> float:
    """How alike two fingerprints are (0..1), weighing what the stored one knows."""
    score = 0.0
    weight = 0.0

    def add(w: float, value: float) -> None:
        nonlocal score, weight
        score += w * value
        weight += w

    add(1.0, float(stored.get("tag") == current.get("tag")))
    add(2.0, float(stored.get("role") == current.get("role")))
    for key, w in (("name", 3.0), ("text", 2.0), ("id", 2.0), ("path", 1.0)):
        if stored.get(key) or current.get(key):
            add(w, _ratio(str(stored.get(key) or ""), str(current.get(key) or "")))
    old_classes = set(stored.get("classes") or ())
    new_classes = set(current.get("classes") or ())
    if old_classes or new_classes:
        add(1.0, len(old_classes & new_classes) / len(old_classes | new_classes))
    old_attrs = stored.get("attrs") or {}
    new_attrs = current.get("attrs") or {}
    for key in _ATTRS:
        if key in old_attrs:
            add(1.0, float(old_attrs[key] == new_attrs.get(key)))
    return round(score / weight, 3) if weight else 0.0
