"""Why a step fails: the executor's branch of the worker's exception tree.

    worker.errors.WorkerError
    ├── worker.errors.ExecutorError     infrastructure (browser crash, no browser): ``errored``
    └── StepFailed                      the test failed at this step: ``completed(failed)``
        ├── TargetNotFound              no rung of the ladder found exactly one element
        ├── AmbiguousTarget             close candidates point at different elements
        ├── HealRefused                 ``HEALING=strict`` and the stored locator went stale
        ├── AssertionFailed             a ``verify`` / ``assert_url`` condition did not hold
        ├── ActionFailed                Playwright could not perform the action on the element
        ├── CaptchaDetected             a CAPTCHA blocks the page; it is never attempted
        └── StepTimedOut                ``STEP_TIMEOUT_SECONDS`` or ``RUN_TIMEOUT_SECONDS`` hit

``StepFailed`` never leaves ``worker.agent``: the executor turns it into a failed ``step``
event and an ``Outcome(status="failed")``. Playwright's own errors are translated at the
seam (``worker.agent.session``) into one of these or into ``ExecutorError``.
"""

from __future__ import annotations

from typing import Any

from worker.errors import WorkerError


class StepFailed(WorkerError):
    """The step did not do what the test asked. ``kind`` goes into the step's details."""

    kind = "failed"

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.details = details or {}


class TargetNotFound(StepFailed):
    kind = "not-found"


class AmbiguousTarget(StepFailed):
    kind = "ambiguous"


class HealRefused(StepFailed):
    kind = "heal-refused"


class AssertionFailed(StepFailed):
    kind = "assertion"


class ActionFailed(StepFailed):
    kind = "action"


class CaptchaDetected(StepFailed):
    kind = "captcha"


class StepTimedOut(StepFailed):
    kind = "timeout"
