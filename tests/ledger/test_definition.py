"""Test definitions: validation names the step index and the field."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from ledger.codec import MAX_EVENT_BYTES
from ledger.definition import (
    MAX_STEPS,
    Action,
    instruction_bytes,
    json_bytes,
    parse_steps,
    parse_test,
)
from ledger.domain import STEP_BUDGETS, STEP_LOCATOR_BYTES, STEP_MARGIN_BYTES
from ledger.errors import InvalidDefinition

pytestmark = pytest.mark.unit


def spec(*steps: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"name": "login", "url": "http://127.0.0.1:8000/", "definition": {"steps": list(steps)},
            **extra}


def errors_of(data: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(InvalidDefinition) as info:
        parse_test(data)
    return dict(info.value.errors)


def test_every_action_is_accepted_with_its_fields() -> None:
    needs = {"fill": {"value": "a"}, "select": {"value": "b"}, "press": {"value": "Enter"},
             "verify": {"expected": "Welcome"}, "assert_url": {"expected": "/home"},
             "upload": {"files": [{"id": "a" * 64, "name": "cv.pdf"}]}}
    steps = [{"action": a.value, "instruction": f"do {a.value}", **needs.get(a.value, {})}
             for a in Action]
    test = parse_test(spec(*steps))
    assert [s.action for s in test.definition.steps] == list(Action)
    assert test.auto_handle_popups is True
    snapshot = test.steps_snapshot()
    assert snapshot[0] == {"action": "navigate", "instruction": "do navigate"}
    assert [s.action for s in parse_steps(snapshot)] == list(Action)


@pytest.mark.parametrize(
    ("step", "where", "message"),
    [
        ({"action": "jump", "instruction": "x"}, "definition.steps[1].action", "Input should be"),
        ({"action": "fill", "instruction": "Fill email"}, "definition.steps[1].value",
         "required for 'fill'"),
        ({"action": "verify", "instruction": "v"}, "definition.steps[1].expected",
         "required for 'verify'"),
        ({"action": "verify", "instruction": "v", "expected": ""}, "definition.steps[1].expected",
         "required"),
        ({"action": "click", "instruction": "x" * 2001}, "definition.steps[1].instruction",
         "at most 2000"),
        ({"action": "click", "instruction": ""}, "definition.steps[1].instruction", "at least 1"),
        ({"action": "click", "instruction": "c", "colour": "red"}, "definition.steps[1].colour",
         "Extra inputs"),
        ({"action": "navigate", "instruction": "go", "target": "ftp://x"},
         "definition.steps[1].target", "http"),
    ],
)
def test_bad_step_names_index_and_field(step: dict[str, Any], where: str, message: str) -> None:
    problems = errors_of(spec({"action": "navigate", "instruction": "open"}, step))
    assert where in problems and message in problems[where]


def test_empty_and_oversized_step_lists() -> None:
    assert "definition.steps" in errors_of(spec())
    many = [{"action": "click", "instruction": "c"}] * (MAX_STEPS + 1)
    assert "at most 200" in errors_of(spec(*many))["definition.steps"]


def test_fill_may_clear_a_field_with_an_empty_value() -> None:
    test = parse_test(spec({"action": "fill", "instruction": "Clear search", "value": ""}))
    assert test.definition.steps[0].value == ""


def test_test_level_fields() -> None:
    problems = errors_of({"name": "", "url": "javascript:alert(1)", "definition": {"steps": []},
                          "auto_handle_popups": "maybe"})
    assert {"name", "url", "definition.steps", "auto_handle_popups"} <= set(problems)


# -- the size of what a run will record, in bytes ---------------------------------------------


def test_the_size_rule_counts_bytes_and_names_step_and_field() -> None:
    # 2000 characters: within the length limit, but 8000 bytes, copied twice into the event.
    problems = errors_of(spec({"action": "navigate", "instruction": "open"},
                              {"action": "click", "instruction": "😀" * 2000}))
    message = problems["definition.steps[1].instruction"]
    assert "16004 bytes (UTF-8)" in message and "16384-byte limit" in message


def test_ordinary_and_long_ascii_instructions_are_accepted() -> None:
    test = parse_test(spec({"action": "click", "instruction": "x" * 2000},
                           {"action": "fill", "instruction": "Fill 'Name' with 'Zoë 李'",
                            "value": "Zoë 李", "advanced_selector": "#name" + "x" * 990},
                           {"action": "verify", "instruction": "李" * 800, "expected": "李"}))
    assert len(test.definition.steps) == 3


def test_a_value_whose_placeholders_overflow_is_named() -> None:
    # Locator memory writes each occurrence of the value as '{value}': 1 byte becomes 7.
    problems = errors_of(spec({"action": "fill", "instruction": ", " * 900 + ",", "value": ","}))
    assert "'{value}'" in problems["definition.steps[0].value"]


def test_an_advanced_selector_must_fit_whole_as_the_recorded_locator() -> None:
    problems = errors_of(spec({"action": "click", "instruction": "c",
                               "advanced_selector": "#" + "é" * 999}))
    assert "at most 1024" in problems["definition.steps[0].advanced_selector"]


def test_snapshots_of_queued_runs_are_not_re_judged_on_size() -> None:
    # History is a fact: a run queued before the byte rule still runs (the executor bounds it).
    steps = parse_steps([{"action": "click", "instruction": "😀" * 2000,
                          "advanced_selector": "#" + "é" * 999}])
    assert len(steps[0].instruction) == 2000


def test_the_step_budgets_fit_the_event_limit() -> None:
    assert sum(STEP_BUDGETS.values()) + STEP_MARGIN_BYTES <= MAX_EVENT_BYTES
    assert STEP_LOCATOR_BYTES < STEP_BUDGETS["details"]


def test_json_bytes_counts_what_the_event_stores() -> None:
    for text in ("abc", "😀é", 'q"\\', "\n\t"):
        assert json_bytes(text) == len(orjson.dumps(text))
    # What the executor records instead: U+FFFD.
    for text in ("\ud800", "\x00", "\r", "\x08"):
        assert json_bytes(text) == 2 + len("\ufffd".encode())
    assert instruction_bytes("Ab", None) == 8
    assert instruction_bytes("a,a", "a") == 5 + 5 + 2 * 6
    assert instruction_bytes("a  ,  a", "a ,") == 9 + 9 + 1 * 4
