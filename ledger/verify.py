"""What a ``verify`` step checks, read from its fields and plain words (pure).

A ``verify`` step checks visible text unless it says otherwise: its ``state`` field
(explicit), or a plain form in its instruction — "the Email field has value 'x'",
"'Remember me' is checked", "'Pay' is disabled", "'Saved' is visible", "the list shows 3
items", "the page title is …", "the URL contains …". Only words outside quotes count, so a
field or section called "Billing Address" or "Website URL" never changes the check; a URL
check needs the word "URL" or "address bar" (an "address" alone is text). An instruction
that reads as two kinds at once is refused naming both, never settled by a guess.

Shared by validation (``ledger.definition``: a new test is refused with 422) and the
executor (``worker.agent.checks``), so both read an instruction the same way.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# A quote opens after start/space/bracket and closes before end/space/punctuation, so
# apostrophes inside words ("user's") are not quotes.
QUOTED = re.compile(
    r"""(?:(?<=^)|(?<=[\s(\[:,=]))(['"])(.+?)\1(?=$|[\s.,;:!?)\]])"""
    r"|\u201c(.+?)\u201d|\u2018(.+?)\u2019"
)

_NUMBERS = {"no": 0, "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5,
            "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10}
#: what a count counts: the noun → the ARIA roles of the things counted
COUNT_NOUNS: dict[str, tuple[str, ...]] = {
    "item": ("listitem",), "entry": ("listitem", "row"), "entrie": ("listitem", "row"),
    "todo": ("listitem",), "task": ("listitem",), "result": ("listitem", "row"),
    "row": ("row",), "record": ("row",), "line": ("row", "listitem"),
    "option": ("option",), "link": ("link",), "button": ("button",), "tab": ("tab",),
    "checkboxe": ("checkbox",), "checkbox": ("checkbox",), "card": ("article", "listitem"),
    "message": ("listitem", "article"), "product": ("listitem", "article"),
    "heading": ("heading",), "image": ("img",), "menu item": ("menuitem",),
}
_COUNT = re.compile(
    r"\b(?:shows?|showing|has|have|lists?|listing|contains?|containing|displays?|with|"
    r"there\s+(?:are|is)|counts?|exactly|only|is|are)\s+(?:exactly\s+|only\s+)?"
    r"(?P<n>\d+|no|zero|one|two|three|four|five|six|seven|eight|nine|ten)\s+"
    r"(?:\w+\s+)?(?P<noun>menu\s+items?|items?|entry|entries|todos?|tasks?|results?|rows?|"
    r"records?|lines?|options?|links?|buttons?|tabs?|checkbox(?:es)?|cards?|messages?|"
    r"products?|headings?|images?)\b",
    re.I,
)
# Kinds read from plain words, each by its own pattern.
_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("url", re.compile(r"\b(?:url|urls|address\s+bar)\b", re.I)),
    ("title", re.compile(r"\b(?:page\s+title|title\s+of\s+the\s+page|tab\s+title)\b", re.I)),
    ("value", re.compile(
        r"\b(?:has|have|with|contains?|shows?|holds?)\s+(?:the\s+)?value\b|\bvalue\s+"
        r"(?:is|of|equals?|should\s+be)\b|\b(?:is|are|be)\s+(?:still\s+)?(?:filled|prefilled|"
        r"pre-filled|populated)\s+with\b", re.I)),
    ("disabled", re.compile(
        r"\b(?:is|be|are|and|but)\s+(?:still\s+)?(?:not\s+enabled|disabled|greyed\s+out|grayed\s+out|"
        r"inactive)\b", re.I)),
    ("enabled", re.compile(
        r"\b(?:is|be|are|and|but)\s+(?:still\s+)?(?:enabled|not\s+disabled|clickable)\b", re.I)),
    ("unchecked", re.compile(
        r"\b(?:is|be|are)\s+(?:still\s+)?(?:not\s+(?:checked|ticked|selected)|unchecked|"
        r"unticked|unselected|cleared)\b|\b(?:is|be|are)\s+(?:switched\s+|turned\s+)?off"
        r"\s*[.!]?\s*$", re.I)),
    ("checked", re.compile(
        r"\b(?:is|be|are|and|but)\s+(?:still\s+)?(?:checked|ticked|selected)\b|\b(?:is|be|are)\s+"
        r"(?:switched\s+|turned\s+)?on\s*[.!]?\s*$", re.I)),
    ("hidden", re.compile(
        r"\b(?:is|are|be)\s+(?:still\s+)?(?:not\s+(?:visible|shown|displayed)|hidden|"
        r"invisible)\b|\bno\s+longer\s+(?:visible|shown|displayed)\b", re.I)),
    ("visible", re.compile(
        r"\b(?:is|are|be)\s+(?:still\s+)?(?:visible|shown|displayed)\b", re.I)),
)
#: kinds whose check needs an ``expected`` value (a count can take its number from the words)
NEEDS_EXPECTED = frozenset({"text", "value", "url", "title"})


class UnclearCheck(ValueError):
    """The instruction reads as more than one kind of check."""

    def __init__(self, kinds: list[str]) -> None:
        self.kinds = kinds
        listed = " or ".join(f"a {k} check" for k in kinds)
        super().__init__(
            f"the instruction could mean {listed}; say which with the step's 'state' field "
            f"(or use 'assert_url' for the URL)" if "url" in kinds else
            f"the instruction could mean {listed}; say which with the step's 'state' field")


@dataclass(frozen=True)
class CheckReading:
    kind: str  # text | value | checked | unchecked | enabled | disabled | visible | hidden
    #          # | count | title | url
    explicit: bool  # from the step's ``state`` field
    count: int | None = None  # the number a plain count form names
    count_roles: tuple[str, ...] = ()  # what it counts
    #: where the words naming the check begin in the unquoted text (its subject is before)
    at: int | None = None


def unquoted(instruction: str) -> str:
    """The instruction with each quoted string replaced by ``'…'``: words only."""
    return QUOTED.sub(" '…' ", instruction)


def read_check(instruction: str, state: str | None = None) -> CheckReading:
    """The check a ``verify`` step means; ``UnclearCheck`` when its words mean two."""
    text = unquoted(instruction)
    count = _COUNT.search(text)
    if state is not None:
        roles = _count_roles(count.group("noun")) if count and state == "count" else ()
        number = _number(count.group("n")) if count and state == "count" else None
        return CheckReading(state, True, number, roles)
    found: dict[str, int] = {}
    for kind, pattern in _PATTERNS:
        match = pattern.search(text)
        if match:
            found.setdefault(kind, match.start())
    if count:
        found["count"] = count.start()
        found.pop("visible", None)  # "3 items are shown" is a count
    if {"checked", "unchecked"} <= set(found):
        found.pop("checked")  # "is not checked" also reads "checked" further on
    if len(found) > 1:
        raise UnclearCheck(sorted(found, key=lambda k: found[k]))
    if not found:
        return CheckReading("text", False)
    kind, at = next(iter(found.items()))
    if kind == "count" and count:
        return CheckReading("count", False, _number(count.group("n")),
                            _count_roles(count.group("noun")), at)
    return CheckReading(kind, False, at=at)


def predicate_start(text: str) -> int | None:
    """Where the words naming the check begin in ``text`` (its subject comes before)."""
    starts = [m.start() for _, p in _PATTERNS if (m := p.search(text))]
    if (count := _COUNT.search(text)) is not None:
        starts.append(count.start())
    return min(starts) if starts else None


def _number(word: str) -> int:
    return int(word) if word.isdigit() else _NUMBERS[word.lower()]


def _count_roles(noun: str) -> tuple[str, ...]:
    key = " ".join(noun.lower().split())
    if key.endswith("s") and key not in COUNT_NOUNS:
        key = key[:-1]
    return COUNT_NOUNS.get(key, ("listitem",))
