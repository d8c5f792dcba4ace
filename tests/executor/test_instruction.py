"""Reading instructions (pure): target phrase, role hint, ordinal, scope, value, negation."""

from __future__ import annotations

from typing import Any

import pytest

from ledger.definition import Step
from worker.agent.instruction import Intent, Scope, parse

pytestmark = pytest.mark.unit


def intent(action: str, instruction: str, **fields: Any) -> Intent:
    if action == "verify":
        fields.setdefault("expected", "x")
    return parse(Step(action=action, instruction=instruction, **fields))


@pytest.mark.parametrize(
    ("action", "instruction", "fields", "target", "roles"),
    [
        ("click", "Click the 'Save' button", {}, "Save", ("button",)),
        ("click", "Click on the login button", {}, "login", ("button",)),
        ("click", "Tap “Continue”", {}, "Continue", ()),
        ("click", "Click the user's avatar", {}, "user's avatar", ()),
        ("fill", "Fill 'Email' with 'ada@example.com'", {"value": "ada@example.com"}, "Email",
         ()),
        ("fill", "Type 'hello' into the 'Search' box", {"value": "hello"}, "Search",
         ("textbox", "searchbox", "checkbox")),
        ("fill", "Enter ada@example.com in the email field", {"value": "ada@example.com"},
         "email", ("textbox", "searchbox", "spinbutton", "combobox")),
        ("fill", "Fill the first name field", {"value": "Ada"}, "first name",
         ("textbox", "searchbox", "spinbutton", "combobox")),
        ("fill", "Type the password", {"value": "s3cret", "target": "Password"}, "Password", ()),
        ("select", "Select 'Canada' from the 'Country' dropdown", {"value": "Canada"}, "Country",
         ("combobox",)),
        ("check", "Tick the remember me checkbox", {}, "remember me", ("checkbox",)),
        ("press", "Press Enter in the search box", {"value": "Enter"}, "search",
         ("searchbox", "textbox", "combobox")),
        ("press", "Press Enter", {"value": "Enter"}, None, ()),
        ("hover", "Hover over the Account menu", {}, "Account", ("button", "menuitem")),
        ("click", "Open the Actions menu", {}, "Actions", ("button", "menuitem")),
        ("click", "Click the settings icon", {}, "settings", ("button", "link", "img")),
    ],
)
def test_target_and_role(action: str, instruction: str, fields: dict[str, Any],
                         target: str | None, roles: tuple[str, ...]) -> None:
    parsed = intent(action, instruction, **fields)
    assert (parsed.target, parsed.roles) == (target, roles)


def test_a_role_hint_narrows_to_what_the_action_can_act_on() -> None:
    # "box" could be a checkbox, but one does not type into a checkbox.
    assert intent("fill", "Type 'x' into the 'Search' box", value="x").candidate_roles == (
        "textbox", "searchbox")
    assert intent("click", "Click 'Go'").candidate_roles[:2] == ("button", "link")


def test_ordinals_only_when_the_instruction_says_so() -> None:
    assert intent("click", "Click the second 'Delete' button").ordinal == 1
    assert intent("click", "Click the last link").ordinal == -1
    assert intent("click", "Click the 3rd 'Edit'").ordinal == 2
    assert intent("fill", "Fill the first name field", value="Ada").ordinal is None
    assert intent("click", "Click 'First steps'").ordinal is None


def test_scopes() -> None:
    assert intent("click", "Click 'Edit' in the row containing 'Grace'").scope == Scope(
        "row", "Grace")
    assert intent("click", "Click Edit in the row containing Grace Hopper").scope == Scope(
        "row", "Grace Hopper")
    parsed = intent("click", "Click 'Save' in the 'Settings' dialog")
    assert (parsed.target, parsed.scope) == ("Save", Scope("dialog", "Settings"))
    assert intent("click", "Click 'Pay' in the form 'Billing'").scope == Scope("form", "Billing")
    assert intent("click", "Click 'Save' in the toolbar").scope is None  # no name: no scope


def test_the_value_is_never_the_target() -> None:
    parsed = intent("fill", "Type 'Email' into the 'Subject' field", value="Email")
    assert parsed.target == "Subject"


@pytest.mark.parametrize(
    ("instruction", "negated"),
    [
        ("'Loading' is not visible", True),
        ("Wait for the spinner to disappear", True),
        ("The banner is no longer shown", True),
        ("The draft is gone", False),  # "gone" alone is too loose to flip a check
        ("Verify the welcome message", False),
    ],
)
def test_negation(instruction: str, negated: bool) -> None:
    assert intent("verify", instruction).negated is negated


@pytest.mark.parametrize(
    ("action", "instruction", "scope"),
    [
        ("check", "Tick the checkbox next to 'feed the cat'", Scope("near", "feed the cat")),
        ("click", "Click the Edit button for 'Ada'", Scope("near", "Ada")),
        ("click", "Click 'Remove' beside 'Milk'", Scope("near", "Milk")),
        ("fill", "Type 'x' into the Name field under the 'Form input' heading",
         Scope("heading", "Form input")),
        ("click", "Click 'Delete' in the 'buy milk' list item", Scope("listitem", "buy milk")),
        ("fill", "Fill 'Card number' in the 'Payment' frame", Scope("frame", "Payment")),
        ("fill", "Search for 'shoes'", None),
    ],
)
def test_scopes_people_write(action: str, instruction: str, scope: Scope | None) -> None:
    fields = {"value": "x"} if action == "fill" else {}
    if instruction.startswith("Search"):
        fields = {"value": "shoes", "target": "Search"}
    assert intent(action, instruction, **fields).scope == scope
