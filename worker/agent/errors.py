"""Why a step fails: the executor's branch of the worker's exception tree.

    worker.errors.WorkerError
    ├── worker.errors.ExecutorError     infrastructure (browser crash, no browser): ``errored``
    └── StepFailed                      the test failed at this step: ``completed(failed)``
        ├── TargetNotFound              no rung of the ladder found exactly one element
        ├── AmbiguousTarget             close candidates point at different elements
        ├── HealRefused                 ``HEALING=strict`` and the stored locator went stale
        ├── AssertionFailed             a ``verify`` / ``assert_url`` condition did not hold
        ├── ActionFailed                Playwright could not perform the action on the element
        │   └── Blocked                 another element covers it (an overlay, a banner)
        ├── CaptchaDetected             a CAPTCHA blocks the page; it is never attempted
        ├── UnclearStep                 the instruction reads two ways (two kinds of check)
        ├── GestureMismatch             the instruction names another gesture than the action
        ├── NavigationBlocked           ``NAVIGATION_POLICY`` refused the page's address
        ├── UnknownSecret               ``{{secrets.NAME}}`` names a secret the worker lacks
        └── StepTimedOut                ``STEP_TIMEOUT_SECONDS`` or ``RUN_TIMEOUT_SECONDS`` hit

Each class has one ``kind`` (``details.error_kind``), the same whatever the timing: a target
that is not there is ``not_found`` whether the page settled early or changed until the
step's time ran out.

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

    def __init_subclass__(cls, *, kind: str | None = None, **kwargs: Any) -> None:
        # ``class TargetNotFound(StepFailed, kind="not_found")``: the kind is declared with
        # the class; a subclass without one keeps its parent's.
        super().__init_subclass__(**kwargs)
        if kind is not None:
            cls.kind = kind

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.details = details or {}


class TargetNotFound(StepFailed, kind="not_found"):
    """No rung of the ladder found exactly one element for the step's target."""


class AmbiguousTarget(StepFailed, kind="ambiguous"):
    """Close candidates point at different elements: guessing could act on the wrong one."""


class HealRefused(StepFailed, kind="heal_refused"):
    """``HEALING=strict`` and the stored locator went stale."""


class AssertionFailed(StepFailed, kind="assertion"):
    """A ``verify`` / ``assert_url`` condition did not hold within its time."""


class ActionFailed(StepFailed, kind="action"):
    """Playwright could not perform the action on the element it found."""


class Blocked(ActionFailed, kind="blocked"):
    """Another element receives the pointer events meant for the target."""


class UnclearStep(StepFailed, kind="unclear"):
    """The instruction could mean two different things (two kinds of check)."""


class GestureMismatch(StepFailed, kind="gesture"):
    """The instruction names a gesture (double-click, right-click, hover, drag) other than
    the step's action: performing either would be a guess."""


class CaptchaDetected(StepFailed, kind="captcha"):
    """A CAPTCHA blocks the page; it is never attempted."""


class NavigationBlocked(StepFailed, kind="navigation_blocked"):
    """The step navigated somewhere ``NAVIGATION_POLICY`` blocks; the target never saw it."""


class UnknownSecret(StepFailed, kind="unknown_secret"):
    """A step refers to a secret this worker does not have; the reference is never typed."""


class StepTimedOut(StepFailed, kind="timeout"):
    """``STEP_TIMEOUT_SECONDS`` or ``RUN_TIMEOUT_SECONDS`` ran out during the step."""
