"""Every legal and illegal transition of the Run aggregate (pure, no I/O)."""

from __future__ import annotations

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from ledger.domain import EVENT_CLASSES, TERMINAL_TYPES, Run, StepResult, event_type
from ledger.errors import InvalidTransition

pytestmark = pytest.mark.unit

BROWSER = {"name": "chromium", "version": "156"}


def queued() -> Run:
    return Run.queue(test_id="t-1", test_name="login", url="http://127.0.0.1/", steps=[])


def running() -> Run:
    run = queued()
    run.start(worker="w1", browser=BROWSER)
    return run


def step(run: Run, index: int, status: str = "passed") -> None:
    run.record_step(
        StepResult(index=index, action="click", instruction="Click 'Go'", status=status))


FINISHERS = {
    "completed": lambda r: r.complete(status="passed", duration_ms=5),
    "errored": lambda r: r.fail(message="boom", kind="infrastructure"),
    "timed-out": lambda r: r.time_out(timeout_seconds=600, detected_by="w2"),
    "cancelled": lambda r: r.cancel(reason="user"),
}
COMMANDS = {
    "started": lambda r: r.start(worker="w", browser=BROWSER),
    "step": lambda r: step(r, r.last_step + 1),
    **FINISHERS,
}


def test_happy_path_emits_versioned_public_events() -> None:
    run = running()
    step(run, 0)
    step(run, 2, "failed")
    run.complete(status="failed", duration_ms=10, error="nope", error_step=2)
    events = run.collect_events()
    assert [event_type(e) for e in events] == ["queued", "started", "step", "step", "completed"]
    assert [e.originator_version for e in events] == [1, 2, 3, 4, 5]
    assert run.status == "failed" and run.steps_passed == 1 and run.steps_failed == 1
    assert events[-1].steps_completed == 2


def test_public_type_names_cover_every_event() -> None:
    assert set(EVENT_CLASSES) == {
        "queued", "started", "step", "errored", "timed-out", "completed", "cancelled"
    }
    assert set(EVENT_CLASSES) >= TERMINAL_TYPES


@pytest.mark.parametrize("command", ["step", "completed", "timed-out"])
def test_queued_run_refuses(command: str) -> None:
    run = queued()
    with pytest.raises(InvalidTransition) as info:
        COMMANDS[command](run)
    assert str(run.id) in str(info.value) and "queued" in str(info.value)
    assert command in str(info.value)


@pytest.mark.parametrize("command", ["errored", "cancelled", "started"])
def test_queued_run_allows(command: str) -> None:
    run = queued()
    COMMANDS[command](run)
    assert event_type(run.collect_events()[-1]) == command


def test_running_run_refuses_second_start() -> None:
    with pytest.raises(InvalidTransition, match="is running; refused event 'started'"):
        running().start(worker="w2", browser=BROWSER)


@pytest.mark.parametrize("terminal", sorted(FINISHERS))
@pytest.mark.parametrize("then", sorted(COMMANDS))
def test_nothing_follows_a_terminal_event(terminal: str, then: str) -> None:
    run = running()
    FINISHERS[terminal](run)
    with pytest.raises(InvalidTransition, match=f"finished \\({terminal}\\); refused event"):
        COMMANDS[then](run)


def test_step_indexes_strictly_increase() -> None:
    run = running()
    step(run, 0)
    step(run, 3)
    for index in (3, 1):
        with pytest.raises(InvalidTransition, match=f"step index {index} is not after"):
            step(run, index)


def test_bad_status_values_are_refused() -> None:
    run = running()
    with pytest.raises(ValueError, match="step status"):
        run.record_step(StepResult(index=0, action="click", instruction="x", status="ok"))
    with pytest.raises(ValueError, match="completed status"):
        run.complete(status="weird", duration_ms=1)


def test_replaying_events_rebuilds_an_equal_run() -> None:
    run = running()
    step(run, 0)
    run.cancel(reason="user")
    events = run.collect_events()
    copy = None
    for event in events:
        copy = event.mutate(copy)
    assert copy is not None
    assert vars(copy) == vars(run)


class RunLifecycle(RuleBasedStateMachine):
    """Random command sequences: the aggregate accepts exactly the lifecycle's language."""

    def __init__(self) -> None:
        super().__init__()
        self.run = queued()
        self.model = "queued"  # queued | running | finished
        self.last = -1

    @rule(command=st.sampled_from(sorted(COMMANDS)), gap=st.integers(0, 2))
    def apply(self, command: str, gap: int) -> None:
        allowed = {
            "queued": {"started", "errored", "cancelled"},
            "running": {"step", "completed", "errored", "timed-out", "cancelled"},
            "finished": set(),
        }[self.model]
        before = self.run.version
        try:
            if command == "step":
                step(self.run, self.run.last_step + 1 + gap)
            else:
                COMMANDS[command](self.run)
        except InvalidTransition:
            assert command not in allowed
            assert self.run.version == before
            return
        assert command in allowed
        if command == "started":
            self.model = "running"
        elif command in TERMINAL_TYPES:
            self.model = "finished"

    @precondition(lambda self: self.model == "running")
    @rule()
    def stale_step_refused(self) -> None:
        if self.run.last_step >= 0:
            with pytest.raises(InvalidTransition):
                step(self.run, self.run.last_step)

    @invariant()
    def one_terminal_event_at_most(self) -> None:
        types = [event_type(e) for e in self.run.pending_events]
        assert sum(t in TERMINAL_TYPES for t in types) <= 1
        if any(t in TERMINAL_TYPES for t in types):
            assert types[-1] in TERMINAL_TYPES
        assert [e.originator_version for e in self.run.pending_events] == list(
            range(1, len(types) + 1)
        )


TestRunLifecycle = RunLifecycle.TestCase
TestRunLifecycle.settings = settings(max_examples=150, stateful_step_count=15, deadline=None)
