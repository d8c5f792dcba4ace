"""Test definitions: validation names the step index and the field."""

from __future__ import annotations

from typing import Any

import pytest

from ledger.definition import MAX_STEPS, Action, parse_steps, parse_test
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
             "verify": {"expected": "Welcome"}, "assert_url": {"expected": "/home"}}
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
