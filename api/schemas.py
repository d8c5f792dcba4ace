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

    id: UUID = Field(description="The test's id")
    name: str = Field(description="A name people recognise the test by")
    url: str = Field(description="The absolute http(s) URL the test starts at")
    definition: Definition = Field(description="What the test does: its steps")
    auto_handle_popups: bool = Field(
        description="Dismiss cookie banners and pop-ups that cover the page")
    retries: int = Field(0, description="More attempts a failed run gets (0 to 3)")
    version: int = Field(description="Bumped by every update; sent as the `ETag`")
    created_at: datetime = Field(description="When the test was created")
    updated_at: datetime = Field(description="When the test was last changed")


class TestResult(BaseModel):
    """One finished run of a test, as its statistics count it."""

    __test__ = False

    run_id: UUID = Field(description="The run's id")
    status: Literal["passed", "failed"] = Field(description="How the run ended")
    duration_ms: int | None = Field(description="How long it ran, in milliseconds")
    finished_at: datetime = Field(description="When it ended")


class TestStats(BaseModel):
    """A test's results from the `test_stats` read model: cancelled runs are not results;
    the window is the last 30 results, in the order the runs finished."""

    __test__ = False

    test_id: str = Field(description="The test's id")
    runs: int = Field(description="Finished runs (passed or failed) since the first")
    passed: int = Field(description="Of those, how many passed")
    window: int = Field(description="Results in the window (at most 30)")
    window_passed: int = Field(description="Passed results in the window")
    pass_rate: float | None = Field(
        description="Share of the window that passed, 0 to 1; null without results")
    flips: int = Field(description="Consecutive results in the window that differ")
    flip_rate: float | None = Field(
        description="Flakiness: flips per consecutive pair in the window, 0 to 1; null with "
                    "fewer than two results")
    flaky: bool = Field(description="Flipped at least twice in the window (one flip is a "
                                    "change of state, not flakiness)")
    recent: list[TestResult] = Field(description="The window's results, newest first")


class TestSummary(TestOut):
    __test__ = False

    stats: TestStats = Field(description="Its results and flakiness (`GET /tests/{id}/stats`)")


class TestPage(BaseModel):
    __test__ = False

    items: list[TestSummary] = Field(description="Tests, oldest first, with their statistics")
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page")


# -- runs -------------------------------------------------------------------------------------

class QueueRun(Strict):
    test_id: UUID = Field(description="The test to run")


class RunQueued(BaseModel):
    run_id: UUID = Field(description="The new run's id")
    status: Literal["queued"] = Field("queued", description="Always `queued`")
    version: int = Field(description="The run's version after its `queued` event")


class CancelRun(Strict):
    reason: Annotated[str, Field(min_length=1, max_length=500,
                                 description="Why, as the run's error")] = \
        "cancelled by API request"


class RunCancelled(BaseModel):
    run_id: UUID = Field(description="The run's id")
    status: Literal["cancelled"] = Field("cancelled", description="Always `cancelled`")
    version: int = Field(description="The run's version after its `cancelled` event")


class Artifact(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: str = Field(description="The artifact's id (its sha256)")
    kind: str | None = Field(None, description="`screenshot` or `trace`")
    content_type: str | None = Field(
        None, description="Its media type (`image/png`, `application/zip`)")
    size: int | None = Field(None, description="Its size in bytes")
    sha256: str | None = Field(None, description="Its SHA-256, hex")
    href: str = Field(description="Where to download it: the artifact route")


class ArtifactLink(BaseModel):
    url: str = Field(description="A signed link to the artifact, usable without a key (in an "
                                 "`<img>` or a download) until it expires")
    expires_at: datetime = Field(description="When the link stops working")


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
    id: UUID = Field(description="The run's id")
    test_id: str = Field(description="The test it runs")
    test_name: str = Field(description="The test's name when the run was queued")
    status: RunStatus = Field(description="queued, running, passed, failed or cancelled")
    attempt: int = Field(description="Which attempt of the run this is, from 1")
    created_at: datetime = Field(description="When it was queued")
    started_at: datetime | None = Field(description="When a worker started it")
    completed_at: datetime | None = Field(description="When it ended")
    duration_ms: int | None = Field(description="How long it ran, in milliseconds")
    steps_passed: int = Field(description="Steps that passed so far")
    steps_failed: int = Field(description="Steps that failed so far")
    error: str | None = Field(description="Why it failed or was cancelled")
    error_step: int | None = Field(description="The index of the step it failed at")
    worker: str | None = Field(description="The worker that ran it")
    last_event_at: datetime | None = Field(description="When its latest event was recorded")
    version: int = Field(description="How many events it has")


class RunOut(RunSummary):
    steps: list[StepOut] = Field(description="Its recorded steps, in order")


class AttemptOut(BaseModel):
    run_id: UUID = Field(description="The attempt's run id")
    attempt: int = Field(description="Its number, from 1 (the first run)")
    status: RunStatus = Field(description="queued, running, passed, failed or cancelled")


class RunAttempts(BaseModel):
    items: list[AttemptOut] = Field(
        description="The test run's attempts queued so far, first to last")
    flaky: bool = Field(
        description="The last attempt passed after an earlier one failed")


class AssetOut(BaseModel):
    id: str = Field(description="The file's id, the sha256 of its bytes: name it in an "
                                "`upload` step's `files` as `{id, name, content_type}`")
    size: int = Field(description="Its size in bytes")
    content_type: str = Field(description="The media type it was sent with")


class RunPage(BaseModel):
    items: list[RunSummary] = Field(description="Runs, newest first")
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page")


class EventOut(BaseModel):
    run_id: UUID = Field(description="The run's id")
    version: int = Field(description="The event's position in the run, from 1")
    type: str = Field(
        description="queued, started, step, completed, errored, timed-out or cancelled")
    timestamp: str = Field(description="When it was recorded (ISO 8601)")
    data: dict[str, Any] = Field(description="The event's fields")


class EventPage(BaseModel):
    items: list[EventOut] = Field(description="Events in version order")
    next_after: int | None = Field(
        description="Pass as `after` for the next page; null when this page reached the end"
    )


# -- operations -------------------------------------------------------------------------------

class Health(BaseModel):
    status: Literal["healthy", "degraded"] = Field(
        description="`healthy`, or `degraded` when a dependency is unavailable")
    database: Literal["ok", "unavailable"] = Field(description="PostgreSQL's state")
    redis: Literal["ok", "unavailable"] = Field(description="Redis's state")


# -- compatibility ----------------------------------------------------------------------------

class LegacyRunRequest(BaseModel):
    # Old clients may send fields this API has no use for: ignored, not refused.
    model_config = ConfigDict(extra="ignore")

    test_id: UUID = Field(description="The test to run")


class LegacyRunStarted(BaseModel):
    run_id: UUID = Field(description="The new run's id")


class LegacyScreenshot(BaseModel):
    step: int = Field(description="The step's index")
    url: str = Field(description="Where to download the screenshot")
    timestamp: str = Field(description="When it was taken")


class LegacyLog(BaseModel):
    timestamp: str = Field(description="When it happened")
    step: int | None = Field(description="The step's index, if any")
    message: str = Field(description="What happened")
    status: str = Field(description="The step's or run's status")
    duration_ms: int | None = Field(description="How long it took, in milliseconds")


class LegacyStepResult(BaseModel):
    step: int = Field(description="The step's index")
    status: str = Field(description="passed or failed")
    strategy: str | None = Field(description="How the element was found")
    self_healed: bool = Field(description="Whether another locator was used")
    duration_ms: int | None = Field(description="How long the step took, in milliseconds")
    attempts: int = Field(description="How many times the step was tried")
    error: str | None = Field(description="Why it failed")


class LegacyResult(BaseModel):
    id: UUID = Field(description="The run's id")
    test_id: str = Field(description="The test it runs")
    status: RunStatus = Field(description="queued, running, passed, failed or cancelled")
    started_at: datetime | None = Field(description="When it started")
    completed_at: datetime | None = Field(description="When it ended")
    duration_ms: int | None = Field(description="How long it ran, in milliseconds")
    screenshots: list[LegacyScreenshot] = Field(description="Its screenshots")
    logs: list[LegacyLog] = Field(description="What happened, in order")
    step_results: list[LegacyStepResult] = Field(description="Each step's result")
    self_healed: bool = Field(description="Whether any step used another locator")
    llm_calls: int = Field(description="LLM calls made")
    cost_usd: float = Field(description="What the LLM calls cost")
    error: str | None = Field(description="Why it failed")
    error_step: int | None = Field(description="The step it failed at")
    created_at: datetime = Field(description="When it was queued")
