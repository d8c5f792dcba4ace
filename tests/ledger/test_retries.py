"""Which failures earn another attempt, and the attempts' run ids (pure)."""

from __future__ import annotations

import uuid

import pytest

from ledger.retries import attempt_id, retry_wanted

pytestmark = pytest.mark.unit


def test_which_failures_earn_another_attempt() -> None:
    failed = {"status": "failed"}
    assert retry_wanted("completed", failed, attempt=1, retries=1)
    assert not retry_wanted("completed", failed, attempt=2, retries=1)
    assert not retry_wanted("completed", {"status": "passed"}, attempt=1, retries=3)
    assert not retry_wanted("cancelled", {}, attempt=1, retries=3)
    assert retry_wanted("timed-out", {}, attempt=3, retries=3)
    assert not retry_wanted("completed", failed, attempt=4, retries=9)  # at most 3 retries
    assert not retry_wanted("completed", failed, attempt=1, retries=3,
                            failing_step_kind="navigation_blocked")
    assert not retry_wanted("errored", {"kind": "unknown_secret"}, attempt=1, retries=3)
    assert retry_wanted("errored", {"kind": "browser-crash"}, attempt=1, retries=3)


def test_attempt_ids_are_derived_from_the_first_run() -> None:
    first = uuid.uuid4()
    assert attempt_id(first, 2) == attempt_id(str(first), 2) != attempt_id(first, 3)
    with pytest.raises(ValueError, match="first attempt"):
        attempt_id(first, 1)
