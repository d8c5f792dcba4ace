"""Retries of failed runs: which failures earn another attempt, and the attempts' run ids.

A test may set ``retries`` (0 to 3). Its runs carry it in their ``queued`` event; when a run
ends failed — ``completed`` with status failed, ``errored`` or ``timed-out``, but not
``cancelled`` and not a failure that another attempt cannot change (the navigation policy
blocked the page, a secret is unknown, a CAPTCHA) — and attempts are left, the next attempt
is queued as a new run of the same snapshot. Every attempt is its own run in the ledger;
its ``queued`` event names the first attempt (``first_run_id``) and its ``attempt`` number.

The id of attempt *n* is derived from the first run's id (``attempt_id``): queuing it twice
appends to the same aggregate and the second append conflicts, so the process manager that
queues retries (``projections.retries``) is idempotent, and a client that saw attempt *n*
fail knows which run to follow next without asking.

Pure: no I/O.
"""

from __future__ import annotations

import uuid
from typing import Any
from uuid import UUID

MAX_RETRIES = 3
#: failing-step kinds (``details.error_kind`` of the step) that no retry can change
FINAL_KINDS = frozenset({"navigation_blocked", "unknown_secret", "captcha"})
_NAMESPACE = uuid.UUID("8d1f4a52-6f0e-4a0e-9a55-2a7f9b6b1c3e")


def attempt_id(first_run_id: UUID | str, attempt: int) -> UUID:
    """The run id of ``attempt`` (≥ 2) of the run ``first_run_id``."""
    if attempt < 2:
        raise ValueError(f"attempt {attempt}: the first attempt has its own id")
    return uuid.uuid5(_NAMESPACE, f"{first_run_id}/{attempt}")


def failed(terminal_type: str, data: dict[str, Any]) -> bool:
    """Whether a terminal event ends its run failed (cancelled is not a failure)."""
    if terminal_type == "completed":
        return data.get("status") == "failed"
    return terminal_type in ("errored", "timed-out")


def retry_wanted(
    terminal_type: str, data: dict[str, Any], *, attempt: int, retries: int,
    failing_step_kind: str | None = None,
) -> bool:
    """Whether a run that ended with this terminal event gets another attempt: it failed,
    not for a reason another attempt cannot change, and the test's ``retries`` allow one
    more than ``attempt`` (the ended run's attempt number)."""
    if not failed(terminal_type, data) or attempt > min(retries, MAX_RETRIES):
        return False
    kind = data.get("kind") if terminal_type == "errored" else failing_step_kind
    return kind not in FINAL_KINDS


def first_of(run_id: UUID | str, queued_data: dict[str, Any]) -> str:
    """The first attempt's run id, from a run's ``queued`` event data."""
    return str(queued_data.get("first_run_id") or run_id)
