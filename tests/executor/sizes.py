"""Worst cases for a ``step`` event's size: what a hostile page can hand the executor, and
the event exactly as the store would serialise it."""

from __future__ import annotations

from typing import Any, cast

from ledger.artifacts import ArtifactRef
from ledger.definition import Step
from ledger.domain import Run, StepResult
from ledger.store import PgEventStore
from worker.agent.session import memory_info, step_result

#: NUL, an escape, a lone surrogate, a 4-byte character and what JSON escapes
POISON = "\x00\x1b\ud800😀\"\\\n\r"


def url_of(chars: int) -> str:
    base = "https://example.test/"
    return base + "p" * (chars - len(base))


def page_findings(step: Step, *, url: str, repeat: int = 20_000) -> dict[str, Any]:
    """``details`` as ``RunSession._details`` assembles them, every finding huge and
    poisoned: locator, fingerprint, candidates, heal, popups, error details, memory."""
    big = POISON * repeat
    memory = memory_info(step, step.action.value, url)
    memory.update(result="miss", locator=big, reliability=0.5)
    return {
        "strategy": "dom", "locator": big, "target": big,
        "fingerprint": {"tag": big, "role": big, "name": big, "id": big, "text": big,
                        "attrs": {f"{POISON}{i}": big for i in range(50)}, "path": [big] * 50},
        "candidates": [[big, 100, 1]] * 100, "ambiguous": [big] * 100,
        "closest": [[big, big, big]] * 3, "drop": big, "check": big,
        "heal": {"from": "memory", "old": big, "new": big, "problem": big, "strategy": "dom",
                 "score": 0.51},
        "memory": memory,
        "popups": [{"kind": "dialog", "type": "alert", "message": big, "action": "accepted"}] * 30,
        "popups_more": 10, "error_kind": big, "cause": big, "captcha": big,
        "timing": {"total_ms": 1.5, "resolve_ms": 1.0},
        big: {big: [big] * 10},
    }


def artifact(kind: str) -> dict[str, Any]:
    return ArtifactRef(id="a" * 64 + ".png", kind=kind, content_type="application/zip",
                       size=2**40, sha256="f" * 64).as_dict()


def worst_result(step: Step, index: int = 199, *, url_chars: int = 2000,
                 repeat: int = 20_000) -> StepResult:
    """The executor's own ``step_result`` over the worst a page can offer (each finding is
    ``POISON * repeat``: a few hundred already exceed every cap)."""
    url = url_of(url_chars)
    return step_result(
        index, step, status="failed", details=page_findings(step, url=url, repeat=repeat),
        duration_ms=2**40, strategy="dom", healed=True, url=url,
        error="step failed: " + POISON * repeat * 5,
        artifacts=[artifact("screenshot"), artifact("trace")],
    )


def encoded_step_event(result: StepResult) -> bytes:
    """The ``step`` event of ``result`` as ``PgEventStore`` serialises it for the log
    (raises ``EventTooLarge`` as an append would)."""
    run = Run.queue(test_id="t", test_name="n", url="https://example.test/", steps=[])
    run.start(worker="w" * 200, browser={"name": "chromium", "version": "1"})
    run.record_step(result)
    return encoded_event(run)


def encoded_event(run: Run) -> bytes:
    """``run``'s last pending event as ``PgEventStore`` serialises it (raising
    ``EventTooLarge`` as an append would)."""
    store = PgEventStore(cast(Any, None))  # encoding needs no connection
    return store.encode(run.collect_events())[3][-1]
