"""What the API refuses at its edge, and how request text is shown in logs and errors.

PostgreSQL refuses NUL in ``text`` and ``jsonb``, and an unpaired surrogate cannot even be
encoded as UTF-8: a request carrying either would be appended to the log and then stop the
followers that cannot store it, for good (the log is immutable). So every string of every
request — body members at any depth, query and path parameters — is checked here, once,
before any route sees it: NUL, the other C0 controls, DEL and unpaired surrogates get a 422
naming the field and showing the value (escaped, truncated). Tab, newline and carriage
return are ordinary in free text (an instruction, a reason), never in a name, id or URL.

``refuse_control_characters`` is a dependency of the whole app (``api.app``): new routes
and new fields are covered without anyone remembering to.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError

from ledger.text import escape

#: members whose values are prose written by people, where line breaks and tabs belong
FREE_TEXT = frozenset({"instruction", "description", "reason", "value", "expected"})
_WHITESPACE = "\t\n\r"
# Refused: C0 controls, DEL and surrogates (a decoded str holds one only when it was
# unpaired: JSON's escaped pairs decode to one character); free text keeps tab, LF and CR.
_REFUSED = re.compile("[\x00-\x1f\x7f\ud800-\udfff]")
_REFUSED_IN_TEXT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
SHOWN_CHARS = 60

Loc = tuple[str | int, ...]


def refused_character(value: str, *, free_text: bool) -> str | None:
    """What is wrong with ``value``, or None when it may be stored."""
    found = (_REFUSED_IN_TEXT if free_text else _REFUSED).search(value)
    if found is None:
        return None
    char = found[0]
    if "\ud800" <= char <= "\udfff":
        what = f"an unpaired surrogate (U+{ord(char):04X})"
    elif char in _WHITESPACE:
        what = f"a line break or tab (U+{ord(char):04X}), not allowed in this field"
    else:
        what = f"a control character (U+{ord(char):04X})"
    start = max(0, found.start() - SHOWN_CHARS // 2)
    excerpt = ("…" if start else "") + escape(value[start:], SHOWN_CHARS)
    return f"contains {what} at position {found.start()}: '{excerpt}'"


def strings(value: Any, loc: Loc = ()) -> Iterator[tuple[Loc, str]]:
    """Every string in a decoded JSON value (object keys too), with its location."""
    if isinstance(value, str):
        yield loc, value
    elif isinstance(value, dict):
        for key, member in value.items():
            if isinstance(key, str):
                yield (*loc, key), key
            yield from strings(member, (*loc, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from strings(item, (*loc, index))


def _is_free_text(loc: Loc) -> bool:
    return bool(loc) and loc[-1] in FREE_TEXT


def errors_in(where: str, value: Any) -> list[dict[str, Any]]:
    """Validation errors (FastAPI's shape) for each refused string in ``value``."""
    errors = []
    for loc, text in strings(value):
        problem = refused_character(text, free_text=_is_free_text(loc))
        if problem is not None:
            errors.append({"type": "refused_character", "loc": (where, *loc), "msg": problem,
                           "input": escape(text, SHOWN_CHARS)})
    return errors


async def _json_body(request: Request) -> Any:
    if not await request.body():
        return None
    try:
        # Starlette caches the parsed body: the route's own parsing does not repeat it.
        return await request.json()
    except ValueError:
        return None  # not JSON: the route's validation names the body


async def refuse_control_characters(request: Request) -> None:
    """App-wide dependency: 422 naming every field whose string the ledger cannot take."""
    errors = errors_in("path", dict(request.path_params))
    for name, value in request.query_params.multi_items():
        errors += errors_in("query", {name: value})
    if request.method in ("POST", "PUT", "PATCH"):
        errors += errors_in("body", await _json_body(request))
    if errors:
        raise RequestValidationError(errors)
