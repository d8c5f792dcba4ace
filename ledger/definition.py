"""Test definitions: the value object shared by the API (validation) and the worker
(execution). A run snapshots its test's steps in its ``queued`` event, so editing a test
never changes a run that was already queued.

Validation errors name the step index and field, e.g. ``definition.steps[3].value``.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from ledger.errors import InvalidDefinition

MAX_STEPS = 200


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
    auto_handle_popups: bool = True

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
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
    return Definition.model_validate({"steps": steps}).steps
