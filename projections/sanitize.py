"""What a read model writes must be something PostgreSQL accepts: the last line of defence.

The edges (API, executor) refuse or neutralise bad text before it becomes an event, but the
log is immutable and older events, or a new edge's gap, still reach the followers. PostgreSQL
refuses NUL in ``text`` (SQLSTATE 22021) and ``\\u0000`` in ``jsonb`` (22P05), and asyncpg
cannot even encode a lone surrogate as UTF-8; either would stop a follower at that event.
So every string headed for a text or jsonb column passes through here: NUL and surrogates
become U+FFFD. Integers headed for a ``bigint`` are clamped to its range.

The happy path must stay cheap (rebuild folds ~100k events a second): an ASCII string —
``isascii`` is O(1) in CPython — is only scanned for NUL (a ``memchr``), and JSON is dumped
once and searched for the ``\\u0000`` escape; only a string that needs it is rewritten.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from ledger.domain import REPLACEMENT

BIGINT_MAX = 2**63 - 1
BIGINT_MIN = -(2**63)

# NUL and every UTF-16 surrogate: in a Python str a surrogate is always unpaired (a valid
# pair would have been decoded into one code point), and UTF-8 cannot encode it.
_REFUSED = re.compile("[\x00\ud800-\udfff]")
_JSON_NUL = "\\u0000"


def text(value: str) -> str:
    """``value`` with NUL and unpaired surrogates replaced by U+FFFD."""
    if value.isascii():
        return value.replace("\x00", REPLACEMENT) if "\x00" in value else value
    return _REFUSED.sub(REPLACEMENT, value)


def optional_text(value: str | None) -> str | None:
    return None if value is None else text(value)


def json_value(value: Any) -> Any:
    """``value`` (JSON-native) with every string in it, keys included, passed through
    ``text``."""
    if isinstance(value, str):
        return text(value)
    if isinstance(value, dict):
        return {text(k) if isinstance(k, str) else k: json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_value(v) for v in value]
    return value


def json_text(value: Any) -> str:
    """``value`` as JSON text that ``jsonb`` accepts."""
    try:
        dumped = orjson.dumps(value).decode()
    except orjson.JSONEncodeError:
        # orjson refuses lone surrogates; anything else wrong is a real error, raised below.
        return orjson.dumps(json_value(value)).decode()
    if _JSON_NUL in dumped:
        return orjson.dumps(json_value(value)).decode()
    return dumped


def text_column(values: list[Any]) -> list[Any]:
    """A column of ``str | None`` with each string passed through ``text``; one scan of the
    joined column decides whether any needs it (the common answer: none)."""
    joined = "".join(filter(None, values))
    if joined.isascii() and "\x00" not in joined:
        return values
    if _REFUSED.search(joined) is None:
        return values
    return [None if v is None else text(v) for v in values]


def json_column(values: list[str]) -> list[str]:
    """A column of JSON texts (orjson output) with any ``\\u0000`` made acceptable."""
    if _JSON_NUL not in "".join(values):
        return values
    return [json_text(orjson.loads(v)) if _JSON_NUL in v else v for v in values]


def bigint_column(values: list[Any]) -> list[Any]:
    """A column of ``int | None`` clamped to ``bigint``."""
    present = [v for v in values if v is not None]
    if not present or (BIGINT_MIN <= min(present) and max(present) <= BIGINT_MAX):
        return values
    return [bigint(v) for v in values]


def bigint(value: int | None) -> int | None:
    """``value`` clamped to PostgreSQL's ``bigint`` range."""
    if value is None or BIGINT_MIN <= value <= BIGINT_MAX:
        return value
    return BIGINT_MAX if value > 0 else BIGINT_MIN


__all__ = ["BIGINT_MAX", "REPLACEMENT", "bigint", "bigint_column", "json_column",
           "json_text", "json_value", "optional_text", "text", "text_column"]
