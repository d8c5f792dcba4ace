"""Request and response bodies, as the OpenAPI document shows them. Test definitions are
the ledger's own ``TestSpec`` (validated once, in one place); everything here is shape."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal, get_type_hints
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, create_model

from ledger.definition import Definition
from ledger.domain import STEP_FIELDS, StepResult

RunStatus = Literal["queued", "running", "passed", "failed", "cancelled"]


class Strict(BaseModel):
    """Unknown fields are refused with 422, naming them."""

    model_config = ConfigDict(extra="forbid")


# -- tests ------------------------------------------------------------------------------------

class TestOut(BaseModel):
    __test__ = False  # not a pytest test class, despite the name

    id: UUID
    name: str
    url: str
    definition: Definition
    auto_handle_popups: bool
    retries: int = Field(0, description="More attempts a failed run gets (0 to 3)")
    version: int = Field(description="Bumped by every update; sent as the `ETag`")
    created_at: datetime
    updated_at: datetime


class TestPage(BaseModel):
    __test__ = False

    items: list[TestOut]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page")


# -- runs -------------------------------------------------------------------------------------

class QueueRun(Strict):
    test_id: UUID


class RunQueued(BaseModel):
    run_id: UUID
    status: Literal["queued"] = "queued"
    version: int


class CancelRun(Strict):
    reason: Annotated[str, Field(min_length=1, max_length=500)] = "cancelled by API request"


class RunCancelled(BaseModel):
    run_id: UUID
    status: Literal["cancelled"] = "cancelled"
    version: int


class Artifact(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: str
    kind: str | None = None
    content_type: str | None = None
    size: int | None = None
    sha256: str | None = None
    href: str = Field(description="Where to download it: the artifact route")


def _step_fields() -> dict[str, Any]:
    """``StepResult``'s fields (the one definition of a step), each required in a response;
    artifact references gain their download link."""
    hints = get_type_hints(StepResult)
    fields: dict[str, Any] = {name: (hints[name], ...) for name in STEP_FIELDS}
    fields["artifacts"] = (list[Artifact], ...)
    return fields


#: A recorded step, as ``run_steps`` holds it and the run document lists it.
StepOut = create_model("StepOut", **_step_fields())


class RunSummary(BaseModel):
    id: UUID
    test_id: str
    test_name: str
    status: RunStatus
    attempt: int
    created_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    duration_ms: int | None
    steps_passed: int
    steps_failed: int
    error: str | None
    error_step: int | None
    worker: str | None
    last_event_at: datetime | None
    version: int


class RunOut(RunSummary):
    steps: list[StepOut]


class RunPage(BaseModel):
    items: list[RunSummary]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page")


class EventOut(BaseModel):
    run_id: UUID
    version: int
    type: str
    timestamp: str
    data: dict[str, Any]


class EventPage(BaseModel):
    items: list[EventOut]
    next_after: int | None = Field(
        description="Pass as `after` for the next page; null when this page reached the end"
    )


# -- operations -------------------------------------------------------------------------------

class Health(BaseModel):
    status: Literal["healthy", "degraded"]
    database: Literal["ok", "unavailable"]
    redis: Literal["ok", "unavailable"]


# -- compatibility ----------------------------------------------------------------------------

class LegacyRunRequest(BaseModel):
    # Old clients may send fields this API has no use for: ignored, not refused.
    model_config = ConfigDict(extra="ignore")

    test_id: UUID


class LegacyRunStarted(BaseModel):
    run_id: UUID


class LegacyScreenshot(BaseModel):
    step: int
    url: str
    timestamp: str


class LegacyLog(BaseModel):
    timestamp: str
    step: int | None
    message: str
    status: str
    duration_ms: int | None


class LegacyStepResult(BaseModel):
    step: int
    status: str
    strategy: str | None
    self_healed: bool
    duration_ms: int | None
    attempts: int
    error: str | None


class LegacyResult(BaseModel):
    id: UUID
    test_id: str
    status: RunStatus
    started_at: datetime | None
    completed_at: datetime | None
    duration_ms: int | None
    screenshots: list[LegacyScreenshot]
    logs: list[LegacyLog]
    step_results: list[LegacyStepResult]
    self_healed: bool
    llm_calls: int
    cost_usd: float
    error: str | None
    error_step: int | None
    created_at: datetime
