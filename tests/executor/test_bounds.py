"""What the executor records from a page is cleaned and bounded in bytes (``worker.bounds``),
so a hostile page can neither put a NUL into the log nor make a ``step`` event too large."""

from __future__ import annotations

import orjson
import pytest

from ledger.codec import MAX_EVENT_BYTES
from ledger.definition import parse_steps, parse_test
from ledger.domain import STEP_BUDGETS, Run, StepResult, recordable
from ledger.errors import InvalidDefinition
from projections.locator_memory import normalise_instruction
from worker import bounds

from .sizes import POISON, encoded_event, encoded_step_event, worst_result

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("a\x00b", "a\ufffdb"),
        ("bell\x07 esc\x1b del\x7f", "bell\ufffd esc\ufffd del\x7f"),
        ("tab\tnew\nline", "tab\tnew\nline"),
        ("crlf\r\nlone\rcr", "crlf\nlone\ufffdcr"),
        ("lone \ud800 \udfff", "lone \ufffd \ufffd"),
        ("split pair \ud83d\ude00", "split pair 😀"),
        ("plain ✓ 😀", "plain ✓ 😀"),
    ],
)
def test_clean_replaces_controls_and_lone_surrogates(raw: str, clean: str) -> None:
    assert recordable(raw) == clean
    orjson.dumps(recordable(raw))  # valid UTF-8 now


@pytest.mark.parametrize("unit", ["a", "é", "李", "😀", '"', "\n", POISON])
def test_clip_counts_bytes_and_marks_the_cut(unit: str) -> None:
    text = unit * 5000
    clipped = bounds.clip(text, 1000)
    assert bounds.size(clipped) <= 1000
    assert "\x00" not in clipped
    assert clipped.endswith(" bytes]") and "… [truncated " in clipped
    cut = int(clipped.rsplit("truncated ", 1)[1].split()[0])
    kept = clipped[: clipped.index("… [truncated")]
    assert cut == len(recordable(text).encode()) - len(kept.encode())
    assert bounds.clip("short", 1000) == "short"


def test_findings_keep_the_locator_and_say_what_was_trimmed() -> None:
    big = POISON * 10_000
    found = bounds.details({
        "locator": "#ok", "error_kind": "ambiguous", "heal": {"old": "#a", "new": "#b"},
        "candidates": [[big, 100, 1]] * 50, "fingerprint": {"id": big, "attrs": {big: big}},
        "popups": [{"kind": "dialog", "message": big}] * 3,
    })
    assert bounds.size(found) <= STEP_BUDGETS["details"]
    assert found["locator"] == "#ok" and found["heal"] == {"old": "#a", "new": "#b"}
    assert found["trimmed"][0] == "candidates"
    assert "\\u0000" not in orjson.dumps(found).decode()


def test_the_worst_case_step_event_fits() -> None:
    # The longest instruction the definition allows in 4-byte characters, a 2,000-character
    # URL, and every page finding huge and poisoned.
    allowed = (STEP_BUDGETS["instruction"] - 4) // 8
    spec = parse_test({"name": "n", "url": "https://example.test/", "definition": {"steps": [
        {"action": "fill", "instruction": "😀" * allowed, "value": "x"}]}})
    step = spec.definition.steps[0]
    with pytest.raises(InvalidDefinition):
        parse_test({"name": "n", "url": "https://example.test/", "definition": {"steps": [
            {"action": "fill", "instruction": "😀" * (allowed + 1), "value": "x"}]}})
    result = worst_result(step, repeat=2_000)
    encoded = encoded_step_event(result)

    assert len(encoded) <= MAX_EVENT_BYTES
    assert b"\\u0000" not in encoded
    assert result.instruction == step.instruction  # the definition's text is whole
    assert result.details["memory"]["instruction"] == normalise_instruction(
        step.instruction, step.value)
    assert len(result.url or "") == 2000 and "… [truncated" in (result.error or "")


def test_an_old_snapshot_beyond_the_byte_rule_still_fits() -> None:
    # Queued before the rule: the executor cuts it, and memory does not learn from it.
    step = parse_steps([{"action": "click", "instruction": "😀" * 2000,
                         "advanced_selector": "#" + "é" * 999}])[0]
    result = worst_result(step, repeat=2_000)
    assert len(encoded_step_event(result)) <= MAX_EVENT_BYTES
    memory = result.details["memory"]
    assert "key" not in memory and "instruction" not in memory and memory["skipped"]
    assert "… [truncated" in result.instruction


def test_an_ordinary_step_is_recorded_unchanged() -> None:
    step = parse_steps([{"action": "click", "instruction": "Click 'Save'"}])[0]
    details = {"locator": 'get_by_role("button", name="Save", exact=True)',
               "memory": {"key": "k" * 64, "instruction": "click 'save'", "result": "none"},
               "timing": {"total_ms": 12.5}}
    result = StepResult(index=0, action="click", instruction=step.instruction,
                        status="passed", url="http://127.0.0.1/x", details=details)
    assert bounds.bound_step(result) == result


def test_an_errored_message_is_cleaned_and_bounded_too() -> None:
    # ``ExecutorError`` messages can quote the page (a URL, a browser error).
    from worker.consumer import _errored

    run = Run.queue(test_id="t", test_name="n", url="https://example.test/", steps=[])
    run.start(worker="w", browser={})
    _errored("could not open a page: " + POISON * 10_000, "browser")(run)
    encoded = encoded_event(run)
    assert len(encoded) <= STEP_BUDGETS["error"] + 512
    assert b"\\u0000" not in encoded and b"truncated" in encoded
