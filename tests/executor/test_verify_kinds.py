"""What a ``verify`` step checks: its ``state`` field, or the plain words of its instruction
(pure); validation refuses a check that reads two ways, naming both."""

from __future__ import annotations

from typing import Any

import pytest

from ledger.definition import Step, parse_test
from ledger.definition import place_named as place_in
from ledger.errors import InvalidDefinition
from ledger.verify import UnclearCheck, read_check
from worker.agent.actions import drop_phrase, key_chord, named_gesture
from worker.agent.instruction import parse

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("instruction", "kind"),
    [
        ("The URL contains /dashboard", "url"),
        ("The address bar shows /dashboard", "url"),
        ("The page title is Dashboard", "title"),
        ("The 'Email' field has value ada@example.com", "value"),
        ("The 'Pay' button is disabled", "disabled"),
        ("The 'Pay' button is enabled", "enabled"),
        ("'Remember me' is checked", "checked"),
        ("'Remember me' is not checked", "unchecked"),
        ("The dark mode switch is turned off", "unchecked"),
        ("Welcome message is shown", "visible"),
        ("'report-q2.pdf' is no longer displayed", "hidden"),
        ("The list shows 3 items", "count"),
        ("There are two rows in the table", "count"),
        # Words that used to flip a text check into a URL check no longer do.
        ("Confirm the address was added", "text"),
        ("We are redirected to the dashboard", "text"),
        ("The new location is listed", "text"),
        ("Welcome, Ada is on the page", "text"),
        # Words inside quotes name things; they never choose the check.
        ("Verify the 'Website URL' field has value 'https://a.example'", "value"),
        ("Verify the City field in the 'Billing Address' section has value 'Lyon'", "value"),
        ("'Is disabled' is shown", "visible"),
    ],
)
def test_kinds_from_plain_words(instruction: str, kind: str) -> None:
    assert read_check(instruction).kind == kind


def test_a_count_reads_its_number_and_what_it_counts() -> None:
    reading = read_check("The 'Todo' list shows 3 items")
    assert (reading.kind, reading.count, reading.count_roles) == ("count", 3, ("listitem",))
    assert read_check("the table has 2 rows").count_roles == ("row",)


def test_the_state_field_wins_over_words() -> None:
    assert read_check("The address bar looks fine", "value").kind == "value"
    assert read_check("Confirm it", "checked").explicit


@pytest.mark.parametrize(
    ("instruction", "kinds"),
    [
        ("The URL field has value 'x'", ["url", "value"]),
        ("'Pay' is visible and disabled", ["disabled", "visible"]),
    ],
)
def test_two_kinds_at_once_are_refused_naming_both(instruction: str, kinds: list[str]
                                                   ) -> None:
    with pytest.raises(UnclearCheck) as caught:
        read_check(instruction)
    assert sorted(caught.value.kinds) == sorted(kinds)
    for kind in kinds:
        assert f"a {kind} check" in str(caught.value)


def _test(step: dict[str, Any]) -> Any:
    return parse_test({"name": "t", "url": "http://shop.example/",
                       "definition": {"steps": [step]}})


def test_validation_reads_the_check_as_the_executor_does() -> None:
    with pytest.raises(InvalidDefinition) as caught:
        _test({"action": "verify", "instruction": "The URL field has value 'x'",
               "expected": "x"})
    assert caught.value.errors[0][0] == "definition.steps[0].instruction"
    assert "a url check or a value check" in caught.value.errors[0][1]
    # States need no expected value; text, value and count checks do (a count may say it).
    _test({"action": "verify", "instruction": "'Remember me' is checked"})
    _test({"action": "verify", "instruction": "Anything", "state": "disabled", "target": "Pay"})
    _test({"action": "verify", "instruction": "The list shows 3 items"})
    for step, field, message in [
        ({"action": "verify", "instruction": "Welcome"}, "expected", "text check"),
        ({"action": "verify", "instruction": "Items", "state": "count"}, "expected", "count"),
        ({"action": "verify", "instruction": "Items", "state": "count", "expected": "many"},
         "expected", "whole number"),
        ({"action": "click", "instruction": "Go", "state": "checked"}, "state", "verify"),
        ({"action": "click", "instruction": "Go", "to": "Done"}, "to", "drag"),
    ]:
        with pytest.raises(InvalidDefinition) as caught:
            _test(step)
        where, what = caught.value.errors[0]
        assert where == f"definition.steps[0].{field}" and message in what, what


@pytest.mark.parametrize(
    ("instruction", "gesture"),
    [("Double-click 'buy some cheese'", "double_click"),
     ("Now double click the row", "double_click"),
     ("Right-click the file", "right_click"),
     ("Hover over the menu", "hover"),
     ("Drag 'Card' to 'Done'", "drag"),
     ("Click 'Double-click me'", None),
     ("Click the hover card", None)],
)
def test_the_gesture_an_instruction_names(instruction: str, gesture: str | None) -> None:
    assert named_gesture(instruction) == gesture


def test_places_keys_and_drop_targets_from_words() -> None:
    assert place_in("Go to the About page at /about.html") == "/about.html"
    assert place_in("Open https://shop.example/cart.") == "https://shop.example/cart"
    assert place_in("Open 'the pricing page'") is None
    assert place_in("Open the sign-in page") is None
    assert key_chord("ctrl+a") == "Control+a" and key_chord("Shift + Tab") == "Shift+Tab"
    assert key_chord("Cmd-K") == "Meta+K" and key_chord("Enter") == "Enter"
    assert key_chord("esc") == "Escape"
    step = Step(action="drag", instruction="Drag 'Write docs' to 'Done'")
    assert drop_phrase(step.instruction, parse(step)) == "Done"
    assert drop_phrase("Drag the card onto the trash", parse(step)) is not None
