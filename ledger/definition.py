"""Test definitions: the value object shared by the API (validation) and the worker
(execution). A run snapshots its test's steps in its ``queued`` event, so editing a test
never changes a run that was already queued.

Validation errors name the step index and field, e.g. ``definition.steps[3].value``.

Lengths are counted in characters where users think in characters, and the size of what a
run will record is counted in **bytes**, where the ledger's limit is: a step's instruction
is copied into its ``step`` event twice (as written, and normalised for locator memory), so
a new definition is refused when that could not fit the event's byte budget
(``ledger.domain.STEP_BUDGETS``). Snapshots read back from ``queued`` events are not
re-judged: history is a fact, and the executor bounds what it records anyway.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any
from urllib.parse import urlsplit

import orjson
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from ledger import secret_refs
from ledger.codec import MAX_EVENT_BYTES
from ledger.domain import STEP_BUDGETS, STEP_LOCATOR_BYTES, STEP_MARGIN_BYTES, recordable
from ledger.errors import InvalidDefinition

MAX_STEPS = 200
#: how locator memory writes a step's value into its normalised instruction
_VALUE_PLACEHOLDER = "{value}"
#: Validation context for definitions already stored (a run's snapshot, a saved test): they
#: are not re-judged on the size rules, which may have tightened since they were accepted —
#: the executor's byte bounds keep their events within the limit.
STORED = {"snapshot": True}


class Action(StrEnum):
    NAVIGATE = "navigate"
    CLICK = "click"
    FILL = "fill"
    VERIFY = "verify"
    PRESS = "press"
    SELECT = "select"
    CHECK = "check"
    UNCHECK = "uncheck"
    HOVER = "hover"
    WAIT_FOR = "wait_for"
    ASSERT_URL = "assert_url"
    SCREENSHOT = "screenshot"


# Which optional field each action cannot do without.
_REQUIRED: dict[Action, str] = {
    Action.FILL: "value",
    Action.SELECT: "value",
    Action.PRESS: "value",
    Action.VERIFY: "expected",
    Action.ASSERT_URL: "expected",
}


def _check_http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("must be an absolute http:// or https:// URL")
    return value


class Step(BaseModel):
    """One step: what to do (``action``), described for humans (``instruction``)."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    action: Action
    instruction: Annotated[str, Field(min_length=1, max_length=2000)]
    advanced_selector: Annotated[str, Field(min_length=1, max_length=1000)] | None = None
    target: Annotated[str, Field(max_length=2048)] | None = None
    # validate_default: the check below must also run when the field is absent.
    value: Annotated[str | None, Field(max_length=10_000, validate_default=True)] = None
    expected: Annotated[str | None, Field(max_length=2000, validate_default=True)] = None

    @field_validator("value", "expected")
    @classmethod
    def _required_for_action(cls, value: str | None, info: ValidationInfo) -> str | None:
        action = info.data.get("action")
        if action is not None and _REQUIRED.get(action) == info.field_name:
            # Filling an empty string is meaningful (clearing a field); other values are not.
            if value is None or (value == "" and action != Action.FILL):
                raise ValueError(f"required for '{action.value}' steps")
        return value

    @field_validator("target")
    @classmethod
    def _navigate_target(cls, value: str | None, info: ValidationInfo) -> str | None:
        # A navigate target is an absolute URL or a path on the test's own site.
        if info.data.get("action") == Action.NAVIGATE and value and not value.startswith("/"):
            _check_http_url(value)
        return value

    @field_validator("value", "target")
    @classmethod
    def _secret_references(cls, value: str | None, info: ValidationInfo) -> str | None:
        secret_refs.check(value, url=info.field_name == "target")
        return value

    @field_validator("advanced_selector")
    @classmethod
    def _selector_fits(cls, value: str | None, info: ValidationInfo) -> str | None:
        # Recorded as the step's locator (and remembered): cut, it would no longer work.
        if value is None or info.context == STORED:
            return value
        if (size := json_bytes(value)) > STEP_LOCATOR_BYTES:
            raise ValueError(f"takes {size} bytes (UTF-8) in the step event, where a locator "
                             f"may take at most {STEP_LOCATOR_BYTES}")
        return value

    @model_validator(mode="after")
    def _fits_a_step_event(self, info: ValidationInfo) -> Step:
        if info.context == STORED:
            return self
        needed = instruction_bytes(self.instruction, self.value)
        budget = STEP_BUDGETS["instruction"]
        if needed <= budget:
            return self
        # The value only matters when its placeholders are what tips the balance.
        field = "value" if instruction_bytes(self.instruction, None) <= budget else "instruction"
        worst = needed + STEP_MARGIN_BYTES + sum(
            b for k, b in STEP_BUDGETS.items() if k != "instruction")
        raise ValidationError.from_exception_data(type(self).__name__, [InitErrorDetails(
            type=PydanticCustomError(
                "step_event_too_large",
                "too long for its step event: the instruction takes {needed} bytes (UTF-8) "
                "there, copied as written and normalised for locator memory"
                "{value_note}; at most {budget} bytes fit: the worst-case step event would "
                "take {worst} bytes, over the {limit}-byte limit — shorten the instruction",
                {"needed": needed, "budget": budget, "worst": worst, "limit": MAX_EVENT_BYTES,
                 "value_note": " (each occurrence of the value becomes '{value}')"
                 if field == "value" else ""},
            ),
            loc=(field,), input=getattr(self, field),
        )])


def json_bytes(text: str) -> int:
    """Bytes ``text`` takes in a step event: as the executor records it (``recordable``),
    serialised (UTF-8, quotes and JSON escapes included)."""
    return len(orjson.dumps(recordable(text)))


def instruction_bytes(instruction: str, value: str | None) -> int:
    """An upper bound of the bytes a step event spends on ``instruction``: as written, plus
    its copy in ``details.memory``, normalised as locator memory does it (whitespace runs
    collapsed, lower case, each occurrence of the value replaced by ``{value}``), both as
    the executor records them (``recordable``).

    The normalised copy is bounded, not recomputed (the normaliser lives in projections):
    collapsing only shrinks; lower case is measured; each replaced occurrence (at most as
    many as the value occurs in the collapsed text) removes at least one byte per character
    of the value and adds the placeholder's bytes.
    """
    text = recordable(instruction)
    total = len(orjson.dumps(text)) + len(orjson.dumps(text.lower()))
    seen = recordable(value) if value else ""
    growth = len(_VALUE_PLACEHOLDER) - len(seen)
    if seen and growth > 0:
        # ``str.split()`` and the normaliser's ``\s+`` agree on what whitespace is.
        total += " ".join(text.split()).count(seen) * growth
    return total


class Definition(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    steps: Annotated[list[Step], Field(min_length=1, max_length=MAX_STEPS)]


class TestSpec(BaseModel):
    """A browser test as users define it."""

    __test__ = False  # not a pytest test class, despite the name
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    name: Annotated[str, Field(min_length=1, max_length=200)]
    url: Annotated[str, Field(max_length=2048)]
    definition: Definition
    # Strict: `0` or "yes" is a mistake to name, not a boolean to guess.
    auto_handle_popups: Annotated[bool, Field(strict=True)] = True
    #: more attempts a failed run gets (``ledger.retries``: failed, not cancelled or blocked)
    retries: Annotated[int, Field(ge=0, le=3, strict=True)] = 0

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        secret_refs.check(value, url=True)
        return _check_http_url(value)

    def steps_snapshot(self) -> list[dict[str, Any]]:
        """The steps as stored in a ``queued`` event (JSON, unset fields omitted)."""
        return [step.model_dump(mode="json", exclude_none=True) for step in self.definition.steps]


def location(loc: tuple[int | str, ...]) -> str:
    """``("definition", "steps", 3, "value")`` → ``definition.steps[3].value``."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif not str(part).startswith("function-"):
            text += f".{part}" if text else str(part)
    return text or "body"


def parse_test(data: Any) -> TestSpec:
    """Validate raw data into a ``TestSpec``; ``InvalidDefinition`` lists every problem."""
    try:
        return TestSpec.model_validate(data)
    except ValidationError as exc:
        raise InvalidDefinition([
            (location(e["loc"]), e["msg"].removeprefix("Value error, ")) for e in exc.errors()
        ]) from None


def parse_steps(steps: list[dict[str, Any]]) -> list[Step]:
    """Steps from a ``queued`` event's snapshot."""
    return Definition.model_validate({"steps": steps}, context=STORED).steps
