"""Candidate locators for an intent, scored the way Playwright's codegen ranks them.

Lower is better. A test id beats a role and accessible name, which beats a label or
placeholder, then alt text and visible text, then the input next to a text, then slugs of
the phrase as ``#id`` / ``[name=…]``. Exact variants come just before their substring
variants. The ARIA-snapshot candidates are built separately (``fuzzy_candidates``), only
when the probes above found nothing or only loose, ambiguous matches: the snapshot is the
costly part, and CPU work: callers run it in a worker thread with a time budget.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, replace
from difflib import SequenceMatcher

from worker.agent.instruction import Intent, Scope
from worker.agent.locators import LocatorSpec, whole_text

FUZZY_THRESHOLD = 0.8
ALTERNATE_PENALTY = 3
_STOPWORDS = {
    "the", "a", "an", "to", "for", "of", "in", "on", "at", "and", "or", "my", "your", "our",
    "this", "that", "it", "its", "is", "be", "please", "with", "from", "into", "click",
    "tap", "press", "fill", "enter", "type", "select", "choose", "pick", "check", "tick",
    "hover", "button", "link", "field", "box", "page",
}
_FIELD_ACTIONS = {"fill", "press", "select"}
_LABELLED_ACTIONS = {"fill", "press", "select", "check", "uncheck", "click", "double_click",
                     "upload"}
_TEXT_ACTIONS = {"click", "hover", "wait_for", "verify", "double_click", "right_click", "drag",
                 "scroll", "upload"}
_TOGGLES = {"check", "uncheck"}
_ARIA_LINE = re.compile(r'^\s*- (?P<role>[a-z]+) "(?P<name>(?:[^"\\]|\\.)*)"')
_INPUTS = "xpath=following::*[self::input or self::textarea or self::select][1]"


@dataclass(frozen=True)
class Candidate:
    spec: LocatorSpec
    score: float
    source: str  # testid | role | label | placeholder | alt | title | text | near | fuzzy | slug
    exact: bool = True
    #: a role candidate over several roles at once: probed as one ``or_`` locator, then
    #: narrowed to the winner's role (``spec`` is the first role's, for display)
    roles: tuple[str, ...] = ()


def candidates(intent: Intent) -> list[Candidate]:
    """Every candidate for ``intent`` (unscoped), best first; other readings of an unquoted
    phrase ("Book a demo" with its verb) a little behind the main one."""
    found = _for_phrase(intent, intent.target)
    for alternate in intent.alternates:
        found += [replace(c, score=c.score + ALTERNATE_PENALTY)
                  for c in _for_phrase(intent, alternate) if c.source != "testid"]
    return sorted(found, key=lambda c: c.score)


def _for_phrase(intent: Intent, t: str | None) -> list[Candidate]:
    found: list[Candidate] = []
    if not t:
        # "Click the last link": only a role, picked by ordinal or by being the only one.
        roles = intent.roles or intent.candidate_roles
        if roles:
            found.append(Candidate(LocatorSpec.of("get_by_role", roles[0]), 300, "role",
                                   True, roles))
        return found
    if intent.looks_like_id:
        found.append(Candidate(LocatorSpec.of("get_by_test_id", t), 1, "testid"))
    roles = intent.candidate_roles
    if roles:
        found.append(Candidate(LocatorSpec.of("get_by_role", roles[0], name=t, exact=True),
                               100, "role", True, roles))
        found.append(Candidate(LocatorSpec.of("get_by_role", roles[0], name=t),
                               105, "role", False, roles))
    if intent.action in _FIELD_ACTIONS:
        found += _pair("get_by_placeholder", t, 120, "placeholder")
    if intent.action in _LABELLED_ACTIONS:
        found += _pair("get_by_label", t, 140, "label")
    if intent.action not in _FIELD_ACTIONS:
        found += _pair("get_by_alt_text", t, 160, "alt")
    if intent.action in _TEXT_ACTIONS:
        found += _pair("get_by_text", t, 180, "text")
    found += _pair("get_by_title", t, 200, "title")
    if intent.action in _FIELD_ACTIONS:
        near = LocatorSpec.of("get_by_text", t, exact=True).then("locator", _INPUTS)
        found.append(Candidate(near, 220, "near"))
        loose = LocatorSpec.of("get_by_text", whole_text(t)).then("locator", _INPUTS)
        found.append(Candidate(loose, 223, "near", exact=False))
    if intent.action in _TOGGLES or set(roles) & {"checkbox", "radio", "switch"}:
        # An unlabelled checkbox beside its text ("Mark 'buy milk' as done"), either side.
        toggles = tuple(r for r in roles if r in ("checkbox", "radio", "switch")) or (
            "checkbox",)
        up = f"xpath=ancestor-or-self::*[{_contains(toggles)}][1]"
        for exact, text in ((True, t), (False, whole_text(t))):
            spec = (LocatorSpec.of("get_by_text", text, exact=True) if exact else
                    LocatorSpec.of("get_by_text", text)).then("locator", up)
            found.append(Candidate(spec.then("get_by_role", toggles[0]), 220 + (not exact) * 3,
                                   "near", exact))
    found += _slugs(t)
    return found


def _pair(method: str, t: str, score: float, source: str) -> list[Candidate]:
    return [
        Candidate(LocatorSpec.of(method, t, exact=True), score, source),
        Candidate(LocatorSpec.of(method, t), score + 5, source, exact=False),
    ]


def _slugs(t: str) -> list[Candidate]:
    words = re.findall(r"[A-Za-z0-9]+", t)
    if not words or len(words) > 4:
        return []
    out: list[Candidate] = []
    seen: set[str] = set()
    for slug in ("-".join(words).lower(), "_".join(words).lower(),
                 words[0].lower() + "".join(w.title() for w in words[1:])):
        if slug in seen:
            continue
        seen.add(slug)
        # [id=…] rather than #…: an id may start with a digit ("15th"), which CSS refuses.
        out.append(Candidate(LocatorSpec.css(f'[id="{slug}"]'), 500, "slug"))
        out.append(Candidate(LocatorSpec.css(f'[name="{slug}"]'), 505, "slug"))
    return out


def fuzzy_candidates(intent: Intent, snapshot: str, budget: float | None = None
                     ) -> list[Candidate]:
    """Candidates read off the page's ARIA snapshot (role and accessible name per line):

    * the name *is* the phrase once case, emoji, prices and punctuation are ignored
      ("🔒 Pay 42.00 €" for "Pay") — 104, as good as an exact match;
    * the name is close to the phrase (similarity ≥ 0.8) — 250+;
    * every word of the name appears in the instruction ("Reject" for "Reject cookies",
      "Skip for now" for "Skip this step for now") — 300+, fewer words covered is worse.
    """
    phrases = [p for p in (intent.target, *intent.alternates) if p]
    if not phrases:
        return []
    roles = set(intent.candidate_roles)
    prose = _words(intent.prose or phrases[0])
    best: dict[tuple[str, str], tuple[float, bool]] = {}
    stop = None if budget is None else time.monotonic() + budget
    for index, (role, name) in enumerate(_aria_names(snapshot)):
        if stop is not None and index % 64 == 0 and time.monotonic() > stop:
            break  # the best so far: a huge page's names are read for a bounded time
        if roles and role not in roles:
            continue
        score = _snapshot_score(phrases, prose, name)
        if score is not None and score[0] < best.get((role, name), (float("inf"), False))[0]:
            best[(role, name)] = score
    return sorted(
        (Candidate(LocatorSpec.of("get_by_role", role, name=name, exact=True), score,
                   "snapshot", exact)
         for (role, name), (score, exact) in best.items()),
        key=lambda c: c.score,
    )


def _aria_names(snapshot: str) -> list[tuple[str, str]]:
    found = []
    for line in snapshot.splitlines():
        match = _ARIA_LINE.match(line)
        if match:
            found.append((match.group("role"), match.group("name").replace('\\"', '"')))
    return found


def _snapshot_score(phrases: list[str], prose: list[str], name: str
                    ) -> tuple[float, bool] | None:
    name_words = _words(name, numbers=False)
    for phrase in phrases:
        wanted = _words(phrase, numbers=False)
        if wanted and name_words == wanted:
            return 104.0, True
    ratio = max((_closeness(p.lower(), name.lower()) for p in phrases
                 if not _negated_variant(_words(p, numbers=False), name_words)), default=0.0)
    if ratio >= FUZZY_THRESHOLD:
        return 250 + round((1 - ratio) * 100, 1), False
    content = [w for w in _words(name) if w not in _STOPWORDS]
    spoken = {w for w in prose if w not in _STOPWORDS}
    if content and set(content) <= spoken:
        return 300.0 + 25 * (len(spoken) - len(set(content))), False
    return None


# Prefixes that turn a word into its opposite or another action: "Unsubscribe" is 0.9 similar
# to "Subscribe" and "Deselect all" to "Select all", yet clicking one for the other is the
# worst wrong action there is. A fuzzy match never bridges them (an exact one still works).
_TURNING_PREFIXES = ("un", "de", "dis", "non", "in", "im", "ir", "il", "re", "anti", "pre",
                     "mis", "counter")


def opposite_of(phrase: str, name: str) -> bool:
    """Whether ``name`` is the phrase's action turned round ("Unsubscribe" for "Subscribe",
    "Select all" for "Deselect all"): the element must not be acted on for it."""
    return _negated_variant(_words(phrase, numbers=False), _words(name, numbers=False))


def _negated_variant(wanted: list[str], name_words: list[str]) -> bool:
    """Whether a word of the phrase and a word of the name differ by such a prefix."""
    for a in wanted:
        for b in name_words:
            short, long = (a, b) if len(a) < len(b) else (b, a)
            if len(short) >= 3 and long != short and long.endswith(short) \
                    and long[: len(long) - len(short)] in _TURNING_PREFIXES:
                return True
    return False


def _words(text: str, *, numbers: bool = True) -> list[str]:
    words = re.findall(r"[^\W_]+", text.lower())
    return [w for w in words if numbers or not w.isdigit()]


def _closeness(phrase: str, name: str) -> float:
    """Similarity of the phrase to a name, or to the name's best-matching word window."""
    whole = SequenceMatcher(None, phrase, name).ratio()
    words = name.split()
    span = len(phrase.split())
    if len(words) <= span:
        return whole
    windows = (" ".join(words[i:i + span]) for i in range(len(words) - span + 1))
    # A phrase found inside a longer name is weaker than the name itself.
    return max(whole, max(SequenceMatcher(None, phrase, w).ratio() for w in windows) - 0.05)


_INPUT_TEXT = ("not(@type) or @type='text' or @type='email' or @type='search' or "
               "@type='number' or @type='tel' or @type='url' or @type='password' or "
               "@type='date'")
# What "contains an element of role R" is in XPath 1.0 (the near-text scopes).
_ROLE_XPATH = {
    "checkbox": ".//input[@type='checkbox'] or .//*[@role='checkbox']",
    "radio": ".//input[@type='radio'] or .//*[@role='radio']",
    "switch": ".//*[@role='switch'] or .//input[@type='checkbox']",
    "button": ".//button or .//input[@type='button' or @type='submit' or @type='reset'] or "
              ".//*[@role='button']",
    "link": ".//a[@href] or .//*[@role='link']",
    "textbox": f".//textarea or .//input[{_INPUT_TEXT}] or .//*[@role='textbox'] or "
               ".//*[@contenteditable='true']",
    "searchbox": ".//input[@type='search'] or .//*[@role='searchbox']",
    "spinbutton": ".//input[@type='number'] or .//*[@role='spinbutton']",
    "combobox": ".//select or .//*[@role='combobox']",
    "listbox": ".//select or .//*[@role='listbox']",
    "img": ".//img or .//*[@role='img']",
}
_ANY_CONTROL = ("|".join(("button", "link", "textbox", "checkbox", "radio", "combobox")))


def _contains(roles: tuple[str, ...]) -> str:
    chosen = roles or tuple(_ANY_CONTROL.split("|"))
    return " or ".join(_ROLE_XPATH.get(r, f".//*[@role='{r}']") for r in chosen)


def scope_specs(scope: Scope, roles: tuple[str, ...] = ()) -> list[LocatorSpec]:
    """Ways to find the container a scope phrase names, most specific first. ``roles``:
    what the step looks for (a near-text scope is the smallest container holding both the
    text and such an element, on either side of the text)."""
    if scope.role in ("near", "heading"):
        up = f"xpath=ancestor-or-self::*[{_contains(roles)}][1]"
        if scope.role == "heading":
            return [LocatorSpec.of("get_by_role", "heading", name=scope.text, exact=True)
                    .then("locator", up),
                    LocatorSpec.of("get_by_role", "heading", name=scope.text).then("locator", up)]
        return [LocatorSpec.of("get_by_text", scope.text, exact=True).then("locator", up),
                LocatorSpec.of("get_by_text", whole_text(scope.text)).then("locator", up),
                LocatorSpec.of("get_by_label", scope.text, exact=True).then("locator", up)]
    if scope.role == "frame":
        name = scope.text.replace('"', '\\"')
        return [LocatorSpec.css(f'iframe[title="{name}" i], iframe[name="{name}" i], '
                                f'iframe[aria-label="{name}" i]')]
    if scope.role == "row":
        # Table rows first; lists are rows too for most people ("the row with Message 7").
        return [LocatorSpec.of("get_by_role", "row").then("filter", has_text=scope.text),
                LocatorSpec.css("li, [role=listitem]").then("filter", has_text=scope.text)]
    if scope.role == "listitem":
        return [LocatorSpec.css("li, [role=listitem]").then("filter", has_text=scope.text)
                .then("last")]
    containers = "form, section, fieldset, dialog, [role=dialog], article, aside, nav, div"
    return [
        LocatorSpec.of("get_by_role", scope.role, name=scope.text, exact=True),
        LocatorSpec.of("get_by_role", scope.role, name=scope.text),
        LocatorSpec.css(containers).then(
            "filter", has_text=scope.text
        ).then("last"),
    ]
