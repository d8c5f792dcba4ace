"""Reading a step's instruction: what to look for, where, and which one (pure).

``parse(step)`` turns "Click the second 'Delete' button in the row containing 'Ada'" into
an ``Intent``: target phrase ``Delete``, role hint ``button``, ordinal 1, scope (row, Ada).
The step's fields win over the prose: ``target`` (for element actions) is the phrase, and
``value`` is never mistaken for the target.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ledger.definition import Step
from ledger.verify import QUOTED, predicate_start

# Roles each action looks for when the instruction names none.
DEFAULT_ROLES: dict[str, tuple[str, ...]] = {
    "click": ("button", "link", "menuitem", "tab", "checkbox", "radio", "option"),
    "hover": ("button", "link", "menuitem", "tab", "img"),
    "fill": ("textbox", "searchbox", "combobox", "spinbutton"),
    "press": ("textbox", "searchbox", "combobox", "spinbutton", "button", "link"),
    "select": ("combobox", "listbox"),
    "check": ("checkbox", "radio", "switch"),
    "uncheck": ("checkbox", "switch"),
    "wait_for": (),
    "verify": (),
    "double_click": ("button", "link", "menuitem", "tab", "option", "row", "listitem",
                     "gridcell", "cell"),
    "right_click": ("button", "link", "menuitem", "tab", "option", "row", "listitem",
                    "gridcell", "cell", "img"),
    "drag": ("listitem", "button", "link", "img", "option", "row"),
    "scroll": (),
    "upload": ("button", "link"),
}

# Actions that can only act on certain roles: a role noun contradicting them ("Enter the
# paper title") is part of the name, not a hint.
_STRICT_ACTIONS = {"fill", "select", "check", "uncheck"}

# Role nouns, longest first so "radio button" beats "button".
_ROLE_NOUNS: list[tuple[str, tuple[str, ...]]] = [
    ("radio button", ("radio",)),
    ("menu item", ("menuitem",)),
    ("search box", ("searchbox", "textbox", "combobox")),
    ("search field", ("searchbox", "textbox", "combobox")),
    ("text field", ("textbox",)),
    ("text box", ("textbox",)),
    ("text area", ("textbox",)),
    ("input field", ("textbox", "searchbox", "spinbutton")),
    ("check box", ("checkbox",)),
    ("drop down", ("combobox",)),
    ("button", ("button",)),
    ("btn", ("button",)),
    ("link", ("link",)),
    ("checkbox", ("checkbox",)),
    ("radio", ("radio",)),
    ("tab", ("tab",)),
    ("menuitem", ("menuitem",)),
    ("option", ("option",)),
    ("dropdown", ("combobox",)),
    ("combobox", ("combobox",)),
    ("select", ("combobox", "listbox")),
    ("listbox", ("listbox",)),
    ("textbox", ("textbox",)),
    ("textarea", ("textbox",)),
    ("searchbox", ("searchbox",)),
    ("field", ("textbox", "searchbox", "spinbutton", "combobox")),
    ("input", ("textbox", "searchbox", "spinbutton")),
    ("box", ("textbox", "searchbox", "checkbox")),
    ("heading", ("heading",)),
    ("header", ("heading",)),
    ("title", ("heading",)),
    ("image", ("img",)),
    ("picture", ("img",)),
    ("logo", ("img", "link")),
    ("icon", ("button", "link", "img")),
    ("switch", ("switch", "checkbox")),
    ("toggle", ("switch", "checkbox", "button")),
    ("dialog", ("dialog",)),
    ("modal", ("dialog",)),
    # "Open the Actions menu": the button that opens the menu (or a menu item by that name).
    ("menu button", ("button",)),
    ("menu", ("button", "menuitem")),
    ("row", ("row",)),
]

# Containers a scope phrase may name.
_SCOPE_NOUNS = {
    "row": "row", "form": "form", "dialog": "dialog", "modal": "dialog", "popup": "dialog",
    "section": "region", "panel": "region", "card": "region", "region": "region",
    "table": "table", "list": "list", "menu": "menu", "navigation": "navigation",
    "nav": "navigation", "sidebar": "complementary", "header": "banner",
    "footer": "contentinfo", "group": "group", "fieldset": "group", "toolbar": "toolbar",
    "item": "listitem", "list item": "listitem", "entry": "listitem", "tile": "region",
    "heading": "heading", "frame": "frame",
}
_ORDINALS = {
    "first": 0, "1st": 0, "second": 1, "2nd": 1, "third": 2, "3rd": 2, "fourth": 3,
    "4th": 3, "fifth": 4, "5th": 4, "last": -1,
}
_VERBS = (
    "click on", "click", "tap on", "tap", "press on", "press", "hit", "push", "choose",
    "select", "pick", "open", "follow", "fill in", "fill out", "fill", "enter", "type in",
    "type", "input", "put", "write", "set", "populate", "complete", "provide", "tick",
    "untick", "uncheck", "check", "hover over", "hover on", "hover", "mouse over",
    "move to", "wait for", "wait until", "wait", "verify that", "verify", "assert that",
    "assert", "ensure that", "ensure", "confirm that", "confirm", "expect", "see that",
    "make sure that", "make sure", "go back to", "go to", "go", "navigate to", "visit",
    "focus on", "focus", "toggle", "turn on", "turn off", "switch on", "switch off",
    "enable", "disable", "expand", "collapse", "activate", "give", "double-click on",
    "double-click", "double click on", "double click", "right-click on", "right-click",
    "right click on", "right click", "drag and drop", "drag", "drop", "scroll down to",
    "scroll up to", "scroll to", "scroll down", "scroll up", "scroll", "mark", "reload",
    "refresh", "switch to", "upload",
)

_TRAILING_FILLER = {"please", "then", "and", "now", "here", "there", "page", "screen", "view",
                    "the", "a", "an", "of", "with", "for", "that", "its", "it"}

# Verbs that only say what to do: never part of an element's name ("Open", "Skip", "Book"
# or "Reject" often are).
_ACTION_VERBS = {
    "click", "tap", "press", "hit", "push", "fill", "enter", "type", "input", "put", "write",
    "set", "populate", "complete", "provide", "tick", "untick", "uncheck", "check", "hover",
    "mouse", "move", "wait", "verify", "assert", "ensure", "confirm", "expect", "see", "make",
    "select", "choose", "pick", "focus", "give", "double-click", "right-click", "drag",
    "scroll", "mark",
}
# Words that frame a phrase without naming anything, dropped at its edges only ("Save the
# contact details" keeps its inner "the" for pages that say it).
_EDGE_FILLER = {
    "the", "a", "an", "on", "in", "into", "at", "to", "of", "please", "then", "and", "with",
    "from", "for", "onto", "inside", "within", "labelled", "labeled", "named", "called",
    "titled", "that", "says", "saying", "reads", "element", "it", "as", "your", "my", "our",
    "this", "now", "page", "screen", "view", "here", "there", "its",
}

_QUOTED = QUOTED
_ROW_SCOPE = re.compile(
    r"\b(?:in|within|inside|on)\s+the\s+row\s+(?:containing|with|for|that\s+contains|of)\s+"
    r"(?P<text>\x00\d+\x00|[^,;\x00]+?)(?=\s*(?:$|[,;.]|\bthen\b))",
    re.I,
)
_NAMED_SCOPE = re.compile(
    r"\b(?:in|within|inside|on|under|below|from)\s+the\s+(?:(?P<q1>\x00\d+\x00)\s+"
    r"(?P<n1>list\s+item|\w+)|(?P<n2>list\s+item|\w+)\s+(?:named\s+|called\s+|titled\s+|"
    r"for\s+|of\s+)?(?P<q2>\x00\d+\x00))",
    re.I,
)
# "the checkbox next to 'feed the cat'", "the Edit button for 'Ada'": the element of the
# wanted role that shares the smallest container with that text, before or after it.
_NEAR_SCOPE = re.compile(
    r"\b(?:next\s+to|beside|besides|alongside|near|by|for)\s+(?:the\s+)?"
    r"(?P<q>\x00\d+\x00)",
    re.I,
)
# "the second 'Delete' button", "the first delete button" — but "the first name field" is a
# field called "First name", not the first of the name fields.
_ORDINAL = re.compile(
    r"\bthe\s+(?P<ord>first|second|third|fourth|fifth|last|1st|2nd|3rd|4th|5th)\s+"
    r"(?!name\b)(?=(?:[\w'-]+\s+){0,2}(?:\x00\d+\x00|(?:"
    + "|".join(re.escape(n) for n, _ in _ROLE_NOUNS) + r")s?\b))",
    re.I,
)
_FILL_FIRST = re.compile(r"^\s*(?:fill|set|populate|complete|update|change)\b", re.I)
_TOKEN = re.compile(r"\x00(\d+)\x00")


@dataclass(frozen=True)
class Scope:
    role: str  # the container's ARIA role (row, form, dialog, region …)
    text: str  # its name, or text it contains (rows)


@dataclass(frozen=True)
class Intent:
    action: str
    target: str | None  # the phrase T
    roles: tuple[str, ...]  # role hint from a role noun; empty: the action's defaults
    ordinal: int | None = None  # 0-based, -1 = last; only when the instruction says so
    scope: Scope | None = None
    value: str | None = None
    quoted: tuple[str, ...] = ()
    negated: bool = False  # "… is not visible", "wait for … to disappear"
    #: other readings of an unquoted phrase (with its leading verb: "Book a demo")
    alternates: tuple[str, ...] = ()
    #: the instruction's words without the value, for matching names word by word
    prose: str = ""
    #: a check's element: found whether or not it is enabled or editable
    lenient: bool = False

    @property
    def candidate_roles(self) -> tuple[str, ...]:
        """The role hint, narrowed to what the action can act on ("box" for a fill is a
        textbox, not a checkbox); the action's default roles without a hint."""
        defaults = DEFAULT_ROLES.get(self.action, ())
        if not self.roles:
            return defaults
        return tuple(r for r in self.roles if r in defaults) or self.roles

    @property
    def looks_like_id(self) -> bool:
        t = self.target or ""
        return bool(re.fullmatch(r"[A-Za-z][\w:.-]*[-_][\w:.-]+|[a-z]+[A-Z]\w*", t))


# Only explicit wording flips a check: "the draft is gone" still means "verify the text".
_NEGATION = re.compile(
    r"\b(not\s+(?:be\s+)?(?:visible|shown|displayed|present|on\s+the\s+page)|"
    r"disappear\w*|vanish\w*|hidden|no\s+longer\s+(?:visible|shown|displayed|present|there))\b",
    re.I,
)


def parse(step: Step) -> Intent:
    """The intent of ``step`` (its ``action`` is authoritative; the prose fills in the rest)."""
    action = step.action.value
    text, quoted = _tokenise(step.instruction)
    scope, text = _scope(text, quoted, step.value)
    ordinal, text = _ordinal(text)
    roles = _roles(text)
    value = step.value
    keep_noun = False
    if action in _STRICT_ACTIONS and roles and not set(roles) & set(DEFAULT_ROLES[action]):
        roles, keep_noun = (), True
    negated = bool(_NEGATION.search(_TOKEN.sub(" ", text)))
    explicit = step.target if step.target and action != "navigate" else None
    target = explicit or _target(action, step.instruction, text, quoted, value, scope,
                                 keep_noun)
    alternates: tuple[str, ...] = ()
    if not explicit and target and not _tokens_in(text, quoted):
        whole = _phrase(text, value, keep_verb=True)
        first = whole.split(" ", 1)[0].lower()
        if whole and whole.lower() != target.lower() and first not in _ACTION_VERBS:
            alternates = (whole,)
    prose = _untoken(text, [q for q in quoted])
    if value:
        prose = prose.replace(value, " ")
    return Intent(
        action=action, target=target, roles=roles, ordinal=ordinal, scope=scope,
        value=value, quoted=tuple(quoted), negated=negated, alternates=alternates,
        prose=" ".join(prose.split()),
    )


def check_subject(step: Step, action: str) -> Intent:
    """The element a ``verify`` step checks: named before the words of the check ("the
    'Email' field in the 'Billing' section | has value 'x'"), found as ``action`` would find
    it but whether or not it is enabled."""
    text, quoted = _tokenise(step.instruction)
    cut = predicate_start(text)
    head = text[:cut] if cut is not None else text
    scope, head = _scope(head, quoted)
    ordinal, head = _ordinal(head)
    roles = _roles(head)
    names = [q for q in _tokens_in(head, quoted)
             if q != step.expected and (scope is None or q != scope.text)]
    target = step.target or (names[0] if names else _phrase(head, None) or None)
    return Intent(action=action, target=target, roles=roles, ordinal=ordinal, scope=scope,
                  quoted=tuple(quoted), lenient=True,
                  prose=" ".join(_untoken(head, quoted).split()))


def _tokenise(instruction: str) -> tuple[str, list[str]]:
    """Replace quoted strings by ``\\x00N\\x00`` tokens; return the text and the strings."""
    quoted: list[str] = []

    def keep(match: re.Match[str]) -> str:
        inner = match.group(2) or match.group(3) or match.group(4) or ""
        quoted.append(inner.strip())
        return f"\x00{len(quoted) - 1}\x00"

    return _QUOTED.sub(keep, instruction.strip()), quoted


def _scope(text: str, quoted: list[str], value: str | None = None
           ) -> tuple[Scope | None, str]:
    row = _ROW_SCOPE.search(text)
    if row:
        return Scope("row", _untoken(row.group("text"), quoted)), _cut(text, row)
    named = _NAMED_SCOPE.search(text)
    if named:
        noun = " ".join((named.group("n1") or named.group("n2") or "").lower().split())
        token = named.group("q1") or named.group("q2")
        if noun in _SCOPE_NOUNS and token:
            return Scope(_SCOPE_NOUNS[noun], _untoken(token, quoted)), _cut(text, named)
    for near in _NEAR_SCOPE.finditer(text):
        label = _untoken(near.group("q"), quoted)
        others = [q for q in _tokens_in(text, quoted) if q not in (label, value)]
        # "Search for 'shoes'" names a value; "for 'Ada'" is a place only beside a target.
        if label != value and (others or _roles(text[: near.start()])):
            return Scope("near", label), _cut(text, near)
    return None, text


def _ordinal(text: str) -> tuple[int | None, str]:
    match = _ORDINAL.search(text)
    if not match:
        return None, text
    return _ORDINALS[match.group("ord").lower()], text[: match.start("ord")] + text[
        match.end("ord"):
    ]


def _roles(text: str) -> tuple[str, ...]:
    plain = _TOKEN.sub(" ", text).lower()
    best: tuple[int, int, tuple[str, ...]] | None = None
    for noun, roles in _ROLE_NOUNS:
        for match in re.finditer(rf"\b{re.escape(noun)}s?\b", plain):
            # The last role noun wins ("the Save button" is the norm); of nouns ending at
            # the same place the longest ("search box" over "box").
            rank = (match.end(), match.end() - match.start())
            if best is None or rank > best[:2]:
                best = (*rank, roles)
    return best[2] if best else ()


def _target(
    action: str, instruction: str, text: str, quoted: list[str], value: str | None,
    scope: Scope | None, keep_noun: bool = False,
) -> str | None:
    used = {scope.text} if scope else set()
    remaining = [q for q in _tokens_in(text, quoted) if q not in used]
    if value is not None:
        without_value = [q for q in remaining if q != value]
        if len(without_value) < len(remaining):
            remaining = without_value
        elif len(remaining) >= 2:
            # "fill X with Y" names the target first; "type Y into X" names it last.
            remaining = remaining[:1] if _FILL_FIRST.match(instruction) else remaining[-1:]
    if remaining:
        return remaining[0]
    return _phrase(text, value, keep_noun=keep_noun) or None


def _tokens_in(text: str, quoted: list[str]) -> list[str]:
    return [quoted[int(n)] for n in _TOKEN.findall(text)]


def _phrase(text: str, value: str | None, *, keep_verb: bool = False, keep_noun: bool = False
            ) -> str:
    """The unquoted words that name the target: no verb (unless ``keep_verb``), no framing
    words at the edges, no trailing role noun, no value."""
    plain = _TOKEN.sub(" ", text)
    if value:
        plain = re.sub(rf"(?<!\w){re.escape(value)}(?!\w)", " ", plain)
    plain = _NEGATION.sub(" ", plain)
    plain = re.sub(r"\b(is|are|be|to be|appears?|visible|shown|displayed|present)\s*$", " ",
                   plain.strip(" .!?"), flags=re.I)
    words = [w for w in re.split(r"[\s,;:!?]+", plain.strip(" .")) if w]
    if not keep_verb:
        words = _without_verb(words)
    words = _trim(words)
    nouns = set() if keep_noun else {noun for noun, _ in _ROLE_NOUNS}
    while words and nouns and (" ".join(words[-2:]).lower() in nouns or words[-1].lower() in nouns
                     or words[-1].lower().rstrip("s") in nouns):
        pair = " ".join(words[-2:]).lower()
        if pair in ("search box", "search field"):
            words = words[:-1]  # "the search box" is most likely named "Search …"
            break
        words = words[:-2] if pair in nouns else words[:-1]
        words = _trim(words)
    return " ".join(words).strip()


def _without_verb(words: list[str]) -> list[str]:
    lowered = " ".join(words).lower()
    for verb in sorted(_VERBS, key=len, reverse=True):
        if lowered == verb or lowered.startswith(verb + " "):
            return words[len(verb.split()):]
    return words


def _trim(words: list[str]) -> list[str]:
    while words and words[0].lower() in _EDGE_FILLER:
        words = words[1:]
    # At the end only words that never finish a name: "Sign in", "Log on", "Opt out" keep
    # their particle.
    while words and words[-1].lower() in _TRAILING_FILLER:
        words = words[:-1]
    return words


def _untoken(fragment: str, quoted: list[str]) -> str:
    return _TOKEN.sub(lambda m: quoted[int(m.group(1))], fragment).strip()


def _cut(text: str, match: re.Match[str]) -> str:
    return (text[: match.start()] + " " + text[match.end():]).strip()
