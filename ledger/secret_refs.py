"""``{{secrets.NAME}}`` references: where a test says to type a secret it does not contain.

Pure text handling shared by the API (which validates references and stores them as
written) and the worker (which alone substitutes values, ``worker.agent.secrets``). Names
are letters, digits and underscores, not starting with a digit, compared in upper case:
``{{ secrets.api_token }}`` is ``RUNLEDGER_SECRET_API_TOKEN``.
"""

from __future__ import annotations

import re
from collections.abc import Callable

#: a well-formed reference; group 1 is the name
REFERENCE = re.compile(r"\{\{\s*secrets\.([A-Za-z_][A-Za-z0-9_]{0,99})\s*\}\}")
#: anything that starts like a reference, well-formed or not
_ATTEMPT = re.compile(r"\{\{\s*secrets\b[^}]*\}?\}?")


def reference(name: str) -> str:
    """How a secret is shown wherever its value must not be: ``{{secrets.NAME}}``."""
    return "{{secrets.%s}}" % name.upper()  # noqa: UP031  (braces would need doubling)


def names(text: str | None) -> list[str]:
    """The secrets ``text`` refers to, upper case, in order of first appearance."""
    found: list[str] = []
    for match in REFERENCE.finditer(text or ""):
        name = match.group(1).upper()
        if name not in found:
            found.append(name)
    return found


def malformed(text: str | None) -> str | None:
    """The first ``{{secrets…}}`` in ``text`` that is not a valid reference, or None."""
    for match in _ATTEMPT.finditer(text or ""):
        if not REFERENCE.fullmatch(match.group(0)):
            return match.group(0)
    return None


def substitute(text: str, value_of: Callable[[str], str]) -> str:
    """``text`` with each reference replaced by ``value_of(NAME)``."""
    return REFERENCE.sub(lambda m: value_of(m.group(1).upper()), text)


def check(text: str | None, *, url: bool = False) -> None:
    """Raise ``ValueError`` for a malformed reference, or (``url``) a reference outside a
    URL's query string, where it would change where the browser goes."""
    bad = malformed(text)
    if bad is not None:
        raise ValueError(f"{bad!r} is not a secret reference: write {{{{secrets.NAME}}}} "
                         "(letters, digits and underscores)")
    if url and text and REFERENCE.search(text.split("?", 1)[0]):
        raise ValueError("a {{secrets.NAME}} reference may only appear in the URL's query "
                         "string")
