"""The seam between the queue consumer and whatever executes a run's steps.

The consumer owns the run's lifecycle events (``started``, ``completed``, ``errored``,
``timed-out``) and the job's acknowledgement; an ``Executor`` only drives the steps and
reports each one through the ``StepSink`` the consumer hands it, as a ``StepResult``
(``ledger.domain``'s one shape of a step, which ``Run.record_step`` takes as it is). The
Playwright ``AgentExecutor`` and the tests' scripted executor both implement this contract.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol
from uuid import UUID

from ledger.definition import Step
from ledger.domain import StepResult


@dataclass(frozen=True)
class RunJob:
    """What an executor needs to run: the snapshot taken when the run was queued."""

    run_id: UUID
    test_id: str
    test_name: str
    url: str
    steps: list[Step]
    auto_handle_popups: bool
    attempt: int


@dataclass(frozen=True)
class Outcome:
    """How the steps ended (becomes the ``completed`` event)."""

    status: str  # passed | failed
    duration_ms: int
    error: str | None = None
    error_step: int | None = None


class StepSink(Protocol):
    """Given to the executor by the consumer for one run."""

    async def record(self, result: StepResult) -> None:
        """Append the step's event. Raises ``RunCancelled`` when the run was cancelled
        meanwhile: the executor must stop, close what it opened for the run, and re-raise."""
        ...


class Executor(Protocol):
    """Runs test steps. ``open``/``close`` bracket the process's lifetime (e.g. a browser);
    ``execute`` runs one job and may be called concurrently for different jobs."""

    @property
    def browser(self) -> dict[str, Any]:
        """``{name, version}`` recorded in the ``started`` event."""
        ...

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def execute(self, job: RunJob, sink: StepSink) -> Outcome:
        """Run every step in order, recording each; stop at the first failing step.

        Raise ``ExecutorError`` for infrastructure failures (browser crash, no browser):
        the consumer records ``errored``, keeping the events recorded before it."""
        ...


__all__ = ["Executor", "Outcome", "RunJob", "StepResult", "StepSink"]
