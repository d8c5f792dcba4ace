"""What locator memory knows about one step, and how a ``step`` event changes it (pure).

An entry remembers the locator that last worked for a key, the fingerprint of the element
it found (for healing), and how reliable it has been. The executor serves an entry only
when it is *reliable* — at least 80 % of its uses succeeded — and validates it on the page
first; three failures in a row drop it.

What a ``step`` event tells memory (its ``details.memory`` says what the executor did):

* passed with the remembered locator → one more success, the failure streak ends;
* passed with another locator → that locator replaces the entry and starts a new record
  (when the remembered one was tried and missed, the page has moved on; when it was not
  tried, the newest working locator is the better bet);
* the remembered locator was tried and missed and the step failed → one more failure; the
  third in a row drops the entry.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from ledger.codec import RecordedEvent
from projections.locator_memory.keys import normalise_url

RELIABILITY_THRESHOLD = 0.8
DROP_AFTER_FAILURES = 3
MAX_LOCATOR_CHARS = 1000
MAX_INSTRUCTION_CHARS = 2000


@dataclass(frozen=True)
class MemoryEntry:
    key: str
    url: str
    action: str
    instruction: str
    locator: str
    fingerprint: dict[str, Any] = field(default_factory=dict)
    successes: int = 0
    failures: int = 0
    consecutive_failures: int = 0
    updated_at: str | None = None

    @property
    def reliability(self) -> float:
        uses = self.successes + self.failures
        return self.successes / uses if uses else 0.0

    @property
    def reliable(self) -> bool:
        """Worth trying before the instruction heuristics."""
        return (
            self.reliability >= RELIABILITY_THRESHOLD
            and self.consecutive_failures < DROP_AFTER_FAILURES
        )


@dataclass(frozen=True)
class Observation:
    """The part of a ``step`` event that memory learns from."""

    key: str
    url: str
    action: str
    instruction: str
    passed: bool
    locator: str | None
    fingerprint: dict[str, Any]
    result: str  # hit | miss | unreliable | none: what happened to the remembered locator
    timestamp: str


def observe(event: RecordedEvent) -> Observation | None:
    """The observation in a ``step`` event, or None (other events, steps without a target)."""
    if event.type != "step":
        return None
    data = event.data
    details = data.get("details") or {}
    memory = details.get("memory")
    if not isinstance(memory, dict) or not memory.get("key"):
        return None
    locator = details.get("locator")
    return Observation(
        key=str(memory["key"]),
        url=normalise_url(data.get("url")),
        action=str(data.get("action", "")),
        instruction=str(memory.get("instruction") or data.get("instruction", ""))[
            :MAX_INSTRUCTION_CHARS
        ],
        passed=data.get("status") == "passed",
        locator=str(locator)[:MAX_LOCATOR_CHARS] if locator else None,
        fingerprint=details.get("fingerprint") or {},
        result=str(memory.get("result", "none")),
        timestamp=event.timestamp,
    )


def fold(entry: MemoryEntry | None, seen: Observation) -> MemoryEntry | None:
    """The entry after ``seen``; None when there is (or remains) nothing to remember."""
    if seen.passed and seen.locator:
        if entry is not None and entry.locator == seen.locator:
            return replace(
                entry, successes=entry.successes + 1, consecutive_failures=0,
                fingerprint=seen.fingerprint or entry.fingerprint, updated_at=seen.timestamp,
            )
        return MemoryEntry(
            key=seen.key, url=seen.url, action=seen.action, instruction=seen.instruction,
            locator=seen.locator, fingerprint=seen.fingerprint, successes=1,
            updated_at=seen.timestamp,
        )
    if entry is not None and not seen.passed and seen.result == "miss":
        streak = entry.consecutive_failures + 1
        if streak >= DROP_AFTER_FAILURES:
            return None
        return replace(
            entry, failures=entry.failures + 1, consecutive_failures=streak,
            updated_at=seen.timestamp,
        )
    return entry
