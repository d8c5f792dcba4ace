"""Untrusted text in log lines: one record stays one line, controls are shown escaped."""

from __future__ import annotations

import io
import logging

import pytest

from ledger.text import EscapedLogRecords, escape

pytestmark = pytest.mark.unit


def test_escape_shows_controls_and_cuts() -> None:
    assert escape("a\nb\x00c\x85\ud800") == "a\\x0ab\\x00c\\x85\\ud800"
    assert escape("abcdef", 3) == "abc…"
    assert escape("ünïcödé 😀") == "ünïcödé 😀"


def test_a_record_with_a_forged_line_stays_one_line() -> None:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.addFilter(EscapedLogRecords())
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    log = logging.getLogger("test.escaped")
    log.addHandler(handler)
    log.propagate = False
    try:
        log.warning("step failed: %s", "Click\nINFO forged line\x1b[2J")
        log.warning("plain %s", "text")
    finally:
        log.removeHandler(handler)
    assert out.getvalue().splitlines() == [
        "WARNING step failed: Click\\x0aINFO forged line\\x1b[2J",
        "WARNING plain text",
    ]
