"""``ledger.aio.Signals``: a signal delivered twice in quick succession is one request."""

from __future__ import annotations

import signal

import pytest

from ledger.aio import Signals

pytestmark = pytest.mark.unit


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_the_same_signal_twice_within_a_second_is_one_request() -> None:
    # A terminal's Ctrl-C reaches `uv run` and its child; uv forwards its copy.
    clock = Clock()
    signals = Signals(clock=clock)
    signals(signal.SIGINT)
    clock.now += 0.01
    signals(signal.SIGINT)
    assert (signals.stop.is_set(), signals.force_stop.is_set()) == (True, False)
    assert signals.exit_code == 0


async def test_the_same_signal_a_second_later_forces_the_stop() -> None:
    clock = Clock()
    signals = Signals(clock=clock)
    signals(signal.SIGINT)
    clock.now += 0.5
    signals(signal.SIGINT)  # a duplicate: the window counts from the delivery that counted
    clock.now += 0.6
    signals(signal.SIGINT)
    assert signals.force_stop.is_set()
    assert signals.exit_code == 128 + signal.SIGINT


async def test_another_signal_at_once_forces_the_stop() -> None:
    clock = Clock()
    signals = Signals(clock=clock)
    signals(signal.SIGTERM)
    signals(signal.SIGINT)
    assert signals.force_stop.is_set()
    assert signals.forced_by == signal.SIGINT
