"""The ``Run`` aggregate: a test execution whose state is a fold over its events.

Pure domain: no I/O, no awaits, no environment. Commands check the lifecycle

    queued → started → step* → (completed | errored | timed-out | cancelled)

and emit events; ``apply`` methods only evolve state, so replaying stored events never
re-checks business rules (history is a fact, even if the rules change later).

Topics are explicit, registered names (``TOPIC``), never module paths: classes can move or
be renamed without breaking stored events.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar
from uuid import UUID

from eventsourcing.domain import Aggregate

from ledger.errors import InvalidTransition

QUEUED = "queued"
RUNNING = "running"
PASSED = "passed"
FAILED = "failed"
CANCELLED = "cancelled"

STEP_STATUSES = frozenset({PASSED, FAILED})
TIMEOUT_MESSAGE = "Execution timeout"


# Not slotted: the ``step`` event class inherits these fields (one definition of a step).
@dataclass(frozen=True)
class StepResult:
    """One finished step: what the executor reports and what a ``step`` event holds.

    The one public shape of a step: the ``step`` event's data, the ``run_steps`` row and
    the API's step document are built from these fields (``STEP_FIELDS``).
    """

    index: int
    action: str
    instruction: str
    status: str  # passed | failed
    strategy: str | None = None  # selector | memory | dom | llm
    healed: bool = False
    duration_ms: int = 0
    attempts: int = 1
    url: str | None = None
    error: str | None = None
    artifacts: list[dict[str, Any]] = field(default_factory=list)
    #: executor specifics: chosen locator, heal (old/new/score), dismissed popups …
    details: dict[str, Any] = field(default_factory=dict)

    def as_event_data(self) -> dict[str, Any]:
        """The fields as a ``step`` event stores them (fresh containers, ints as ints)."""
        data = {name: getattr(self, name) for name in STEP_FIELDS}
        data["duration_ms"] = int(self.duration_ms)
        data["artifacts"] = list(self.artifacts or ())
        data["details"] = dict(self.details or {})
        return data

    @classmethod
    def from_event_data(cls, data: dict[str, Any]) -> StepResult:
        """The step a ``step`` event's (decoded, upcast) data describes."""
        return cls(**{name: data[name] for name in STEP_FIELDS if name in data})


#: a step's fields, in the order events, rows and documents list them
STEP_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(StepResult))

#: Byte budgets of a ``step`` event's parts, counted as the event is serialised (UTF-8,
#: JSON escapes included). The executor cuts what it found on the page to its part's budget;
#: definition validation refuses a step whose own text could not fit in ``instruction``
#: (the instruction and its normalised copy in ``details.memory``). With
#: ``STEP_MARGIN_BYTES`` their sum stays within the ledger's 16 KiB event limit (a test
#: checks it against ``MAX_EVENT_BYTES``).
STEP_BUDGETS: dict[str, int] = {
    "envelope": 1024,  # event metadata, the fixed-size fields and their names
    "artifacts": 1024,  # at most a screenshot and a trace reference
    "url": 2048,
    "error": 2048,
    "details": 4096,  # page findings: locator, fingerprint, candidates, heal, popups …
    "instruction": 5120,
}
STEP_MARGIN_BYTES = 1024
#: a locator inside ``details`` (chosen, healed, remembered): an advanced selector is
#: recorded as the step's locator, so a definition's selector must fit whole
STEP_LOCATOR_BYTES = 1024

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")


#: what a character the ledger cannot store becomes (U+FFFD REPLACEMENT CHARACTER)
REPLACEMENT = "\ufffd"


def recordable(text: str) -> str:
    """``text`` as a step event may hold it: NUL and the other C0 controls except tab and
    newline become U+FFFD (``\\r\\n`` becomes ``\\n`` first), a lone surrogate becomes
    U+FFFD and a split surrogate pair its character. PostgreSQL refuses NUL in ``text`` and
    ``jsonb``, and a lone surrogate is not UTF-8 at all. The executor records page text
    through it; definition validation measures a step's text through it."""
    if _SURROGATE.search(text):
        # Through UTF-16: a split pair becomes its character, a lone half U+FFFD.
        text = text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    if "\r\n" in text:
        text = text.replace("\r\n", "\n")
    return _CONTROL.sub(REPLACEMENT, text)


class Run(Aggregate):
    """One execution of a browser test."""

    TOPIC = "runledger:Run"

    class Event(Aggregate.Event):
        TOPIC = "runledger:Run.Event"
        #: the public name shown by the API, SSE and Redis
        TYPE: ClassVar[str] = ""

    class Queued(Aggregate.Created):
        TOPIC = "runledger:Run.Queued"
        TYPE: ClassVar[str] = "queued"
        test_id: str
        test_name: str
        url: str
        steps: list[dict[str, Any]]
        attempt: int
        auto_handle_popups: bool
        #: how many more attempts a failed run of this test gets (``ledger.retries``), and
        #: the first attempt's run id (None on the first attempt itself)
        retries: int
        first_run_id: str | None

        class_version = 2

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state.setdefault("retries", 0)
            state.setdefault("first_run_id", None)

    class Started(Event):
        TOPIC = "runledger:Run.Started"
        TYPE: ClassVar[str] = "started"
        worker: str
        attempt: int
        browser: dict[str, Any]

        def apply(self, run: Run) -> None:
            run.status = RUNNING
            run.worker = self.worker
            run.started_at = self.timestamp

    class StepRecorded(StepResult, Event):
        """A step finished: its fields are ``StepResult``'s, defined once."""

        TOPIC = "runledger:Run.StepRecorded"
        TYPE: ClassVar[str] = "step"

        def apply(self, run: Run) -> None:
            run.last_step = self.index
            run.steps_recorded += 1
            if self.status == PASSED:
                run.steps_passed += 1
            else:
                run.steps_failed += 1

    class Ended(Event):
        """A terminal event: nothing follows it. The run ends with ``STATUS`` (None: the
        event's own ``status``) and the event's ``ERROR_FIELD`` as its error."""

        TOPIC = "runledger:Run.Ended"  # abstract: never stored, but every event class has one
        STATUS: ClassVar[str | None] = FAILED
        ERROR_FIELD: ClassVar[str] = "message"

        def apply(self, run: Run) -> None:
            status = self.STATUS or getattr(self, "status")  # noqa: B009  # Completed's field
            run._finish(status, self.TYPE, getattr(self, self.ERROR_FIELD))

    class Errored(Ended):
        TOPIC = "runledger:Run.Errored"
        TYPE: ClassVar[str] = "errored"
        message: str
        step: int | None
        kind: str

    class TimedOut(Ended):
        TOPIC = "runledger:Run.TimedOut"
        TYPE: ClassVar[str] = "timed-out"
        message: str
        timeout_seconds: float
        detected_by: str

    class Completed(Ended):
        TOPIC = "runledger:Run.Completed"
        TYPE: ClassVar[str] = "completed"
        STATUS = None
        ERROR_FIELD = "error"
        status: str
        duration_ms: int
        steps_completed: int
        error: str | None
        error_step: int | None

    class Cancelled(Ended):
        TOPIC = "runledger:Run.Cancelled"
        TYPE: ClassVar[str] = "cancelled"
        STATUS = CANCELLED
        ERROR_FIELD = "reason"
        reason: str

    def __init__(
        self,
        test_id: str,
        test_name: str,
        url: str,
        steps: list[dict[str, Any]],
        attempt: int,
        auto_handle_popups: bool,
        retries: int = 0,
        first_run_id: str | None = None,
    ) -> None:
        self.test_id = test_id
        self.retries = retries
        self.first_run_id = first_run_id
        self.test_name = test_name
        self.url = url
        self.steps = steps
        self.attempt = attempt
        self.auto_handle_popups = auto_handle_popups
        self.status = QUEUED
        self.worker: str | None = None
        self.started_at: Any = None
        self.last_step = -1
        self.steps_recorded = 0
        self.steps_passed = 0
        self.steps_failed = 0
        self.terminal_event: str | None = None
        self.error: str | None = None

    # -- commands -------------------------------------------------------------------------

    @classmethod
    def queue(
        cls,
        *,
        test_id: str,
        test_name: str,
        url: str,
        steps: list[dict[str, Any]],
        attempt: int = 1,
        auto_handle_popups: bool = True,
        run_id: UUID | None = None,
        retries: int = 0,
        first_run_id: UUID | None = None,
    ) -> Run:
        """Create a queued run of a test; ``steps`` is the definition snapshot it will execute.
        A retry names the first attempt's run (``first_run_id``) and its ``attempt`` number."""
        if attempt < 1:
            raise ValueError(f"attempt must be >= 1, got {attempt}")
        if first_run_id is not None and attempt < 2:
            raise ValueError("only a later attempt names its first run")
        return cls._create(
            cls.Queued,
            id=run_id or cls.create_id(),
            test_id=str(test_id),
            test_name=test_name,
            url=url,
            steps=steps,
            attempt=attempt,
            auto_handle_popups=auto_handle_popups,
            retries=retries,
            first_run_id=str(first_run_id) if first_run_id else None,
        )

    def start(self, *, worker: str, browser: dict[str, Any], attempt: int | None = None) -> None:
        self._require(self.status == QUEUED, Run.Started)
        self.trigger_event(
            Run.Started, worker=worker, attempt=attempt or self.attempt, browser=browser
        )

    def record_step(self, step: StepResult) -> None:
        """Record one finished step, as the executor reported it."""
        self._require(self.status == RUNNING, Run.StepRecorded)
        if step.index <= self.last_step:
            raise InvalidTransition(
                self.id, self.state_name, Run.StepRecorded.TYPE,
                f"step index {step.index} is not after the last recorded step {self.last_step}",
            )
        if step.status not in STEP_STATUSES:
            raise ValueError(f"step status must be passed or failed, got {step.status!r}")
        self.trigger_event(Run.StepRecorded, **step.as_event_data())

    def complete(
        self,
        *,
        status: str,
        duration_ms: int,
        error: str | None = None,
        error_step: int | None = None,
    ) -> None:
        self._require(self.status == RUNNING, Run.Completed)
        if status not in STEP_STATUSES:
            raise ValueError(f"completed status must be passed or failed, got {status!r}")
        self.trigger_event(
            Run.Completed, status=status, duration_ms=int(duration_ms),
            steps_completed=self.steps_recorded, error=error, error_step=error_step,
        )

    def fail(self, *, message: str, kind: str, step: int | None = None) -> None:
        """Record an infrastructure error (not a failing test): from queued or running."""
        self._require(self.status in (QUEUED, RUNNING), Run.Errored)
        self.trigger_event(Run.Errored, message=message, step=step, kind=kind)

    def time_out(
        self, *, timeout_seconds: float, detected_by: str, message: str = TIMEOUT_MESSAGE
    ) -> None:
        """End a running run that ran out of time, or whose worker was lost (``message``
        then names the worker: a crash must not read as a slow test)."""
        self._require(self.status == RUNNING, Run.TimedOut)
        self.trigger_event(
            Run.TimedOut, message=message, timeout_seconds=float(timeout_seconds),
            detected_by=detected_by,
        )

    def cancel(self, *, reason: str) -> None:
        self._require(self.status in (QUEUED, RUNNING), Run.Cancelled)
        self.trigger_event(Run.Cancelled, reason=reason)

    # -- state ----------------------------------------------------------------------------

    @property
    def is_finished(self) -> bool:
        return self.terminal_event is not None

    @property
    def state_name(self) -> str:
        """``queued``, ``running`` or ``finished (<terminal event>)``: used in error messages."""
        if self.terminal_event:
            return f"finished ({self.terminal_event})"
        return self.status

    def _finish(self, status: str, terminal_event: str, error: str | None) -> None:
        # Called only by terminal events' apply(): one place owns "what finished means".
        self.status = status
        self.terminal_event = terminal_event
        self.error = error

    def _require(self, allowed: bool, event_class: type[Run.Event] | type[Run.Queued]) -> None:
        if self.terminal_event is not None:
            raise InvalidTransition(
                self.id, self.state_name, event_class.TYPE, "a finished run takes no more events"
            )
        if not allowed:
            raise InvalidTransition(self.id, self.state_name, event_class.TYPE)


#: public type name → event class, for every event a run can have
EVENT_CLASSES: dict[str, type[Any]] = {
    cls.TYPE: cls
    for cls in (
        Run.Queued, Run.Started, Run.StepRecorded, Run.Errored,
        Run.TimedOut, Run.Completed, Run.Cancelled,
    )
}
#: the public types after which a run takes no more events
TERMINAL_TYPES = frozenset(
    name for name, cls in EVENT_CLASSES.items() if issubclass(cls, Run.Ended))
#: stored topic → public type name
TOPIC_TYPES: dict[str, str] = {cls.TOPIC: name for name, cls in EVENT_CLASSES.items()}


def event_type(event: Run.Event | Run.Queued) -> str:
    """The public type name (``queued``, ``step`` …) of a run event."""
    return event.TYPE
