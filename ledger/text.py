"""Showing untrusted text safely: in one log line, in an error message.

Request paths, page text, Redis entries and driver errors reach log lines. Written as they
are, a newline forges a second log line and terminal controls act on whoever reads the log;
``escape`` shows them as ``\\xNN`` / ``\\uNNNN`` instead. ``EscapedLogRecords`` applies it to
every record a handler writes, so no call site can forget it.
"""

from __future__ import annotations

import logging
import re

# C0 controls, DEL, C1 controls (terminals act on them too) and lone surrogates.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def escape(text: str, limit: int | None = None) -> str:
    """``text`` safe for one log line or an error message: controls, DEL, C1 and lone
    surrogates as ``\\xNN`` / ``\\uNNNN``, cut to ``limit`` characters of input with ``…``
    marking the cut."""
    cut = text if limit is None or len(text) <= limit else text[:limit]
    shown = _UNSAFE.sub(_escaped, cut)
    return shown + "…" if cut is not text else shown


def _escaped(match: re.Match[str]) -> str:
    code = ord(match[0])
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


class EscapedLogRecords(logging.Filter):
    """A handler filter: each record's message is rendered once and escaped, so one record
    is one line whatever its arguments carried. (Tracebacks keep their own lines.)"""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if _UNSAFE.search(message):
            record.msg, record.args = escape(message), None
        return True


__all__ = ["EscapedLogRecords", "escape"]
