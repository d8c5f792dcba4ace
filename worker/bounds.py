"""What the executor records from a page is made safe and small before it becomes an event.

Pages are untrusted: element ids, attributes, titles, dialog messages, text and URLs can
carry NULs (PostgreSQL refuses them in ``text`` and ``jsonb``), other control characters,
lone surrogates (not UTF-8 at all: the event could not even be serialised) and megabytes.
``bound_step`` is applied once, where a ``StepResult`` is built (``session``):

* ``ledger.domain.recordable``: NUL and the other C0 controls except tab and
  newline become U+FFFD (``\\r\\n`` becomes ``\\n`` first); a lone surrogate becomes U+FFFD,
  a split pair is joined.
* ``clip``: a string over its byte budget (bytes as serialised: UTF-8 with JSON escapes) is
  cut on a character boundary and ends in a visible marker, ``… [truncated 1234 bytes]``.
* ``details``: each known finding has its own cap; when the findings together still exceed
  ``STEP_BUDGETS["details"]`` the bulkiest go first (listed in ``details.trimmed``).

Each part of the event has a budget (``ledger.domain.STEP_BUDGETS``) and their sum stays
under the ledger's event limit, so a step event always fits. The instruction comes from the
definition, whose validation keeps it within its budget; a snapshot queued before that rule
is still cut here rather than losing the run.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import orjson

from ledger.domain import STEP_BUDGETS, STEP_LOCATOR_BYTES, StepResult, recordable

MARKER = "… [truncated {} bytes]"
#: room the marker takes (the count has at most 8 digits under any budget here)
_MARKER_ROOM = len(MARKER.format(10**8).encode())

# Caps of individual findings inside ``details`` (bytes as serialised).
STRING_BYTES = 512  # any string not named below
KEY_BYTES = 64
LOCATOR_BYTES = STEP_LOCATOR_BYTES  # details.locator, heal.old/new, memory.locator
MAX_ITEMS = 20  # entries of any list (candidates, popups, ambiguous …)
MAX_DEPTH = 4
_LOCATOR_KEYS = frozenset({"locator", "old", "new"})
#: dropped in this order while the findings exceed their budget
_DROPPABLE = ("candidates", "closest", "ambiguous", "fingerprint", "popups", "captcha", "timing")
#: kept to the last: a heal is never silent (and ``healed`` stays on the step anyway)
_KEPT = ("locator", "memory", "error_kind", "heal")
#: what ``details.memory`` holds besides the instruction (written by the session)
_MEMORY_KEYS = ("key", "result", "locator", "reliability")


def size(value: Any) -> int:
    """Bytes of ``value`` serialised as the event store does (cleaned values only)."""
    return len(orjson.dumps(value))


def clip(text: str, budget: int) -> str:
    """``text`` cleaned and, when it serialises to more than ``budget`` bytes, cut with a
    marker saying how many bytes (UTF-8) were cut off."""
    text = recordable(text)
    if size(text) <= budget:
        return text
    keep = max(budget - 2 - _MARKER_ROOM, 0)
    # Every character costs at least one byte: the first ``keep`` characters are enough.
    head = text[:keep]
    used, end = 0, len(head)
    for index, ch in enumerate(head):
        used += size(ch) - 2  # JSON escapes are per character
        if used > keep:
            end = index
            break
    kept = head[:end]
    cut = len(text.encode()) - len(kept.encode())
    return kept + MARKER.format(cut)


def tree(value: Any, budget: int = STRING_BYTES, depth: int = 0) -> Any:
    """A JSON-native copy of ``value`` with every string cleaned and clipped (locators to
    ``LOCATOR_BYTES``), lists cut to ``MAX_ITEMS`` and nesting to ``MAX_DEPTH``."""
    if isinstance(value, str):
        return clip(value, budget)
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if depth >= MAX_DEPTH:
        return clip(repr(value), STRING_BYTES)
    if isinstance(value, dict):
        out = {
            clip(str(k), KEY_BYTES): tree(v, LOCATOR_BYTES if k in _LOCATOR_KEYS else
                                          STRING_BYTES, depth + 1)
            for k, v in list(value.items())[:MAX_ITEMS * 2]
        }
        if len(value) > MAX_ITEMS * 2:
            out["…"] = f"{len(value) - MAX_ITEMS * 2} more"
        return out
    if isinstance(value, (list, tuple)):
        items = [tree(v, budget, depth + 1) for v in list(value)[:MAX_ITEMS]]
        if len(value) > MAX_ITEMS:
            items.append(f"… [{len(value) - MAX_ITEMS} more]")
        return items
    return clip(str(value), budget)


def details(found: dict[str, Any]) -> dict[str, Any]:
    """The step's findings, cleaned and within ``STEP_BUDGETS["details"]``.

    ``memory.instruction`` belongs to the instruction's budget (it is the definition's text,
    normalised): it is kept whole when it fits there and otherwise the memory entry loses
    its key (memory cannot learn from a step it could not look up again).
    """
    memory = found.get("memory")
    out: dict[str, Any] = tree({k: v for k, v in found.items() if k != "memory"})
    instruction = None
    if isinstance(memory, dict):
        instruction = recordable(str(memory.get("instruction", "")))
        out["memory"] = tree({k: memory[k] for k in _MEMORY_KEYS if k in memory})
    budget = STEP_BUDGETS["details"]
    for key in (*_DROPPABLE, *[k for k in out if k not in _KEPT], "heal"):
        if size(out) <= budget:
            break
        if out.pop(key, None) is not None:
            out["trimmed"] = [*out.get("trimmed", []), key]
    if size(out) > budget:
        # Only the locator, memory and error kind are left (each capped): the list of
        # what went is what overflows.
        out["trimmed"] = ["…"]
    if instruction is not None:
        out["memory"]["instruction"] = instruction
    return out


def bound_step(result: StepResult) -> StepResult:
    """``result`` as it may be recorded: every string cleaned, every part within budget."""
    found = details(result.details)
    instruction = recordable(result.instruction)
    room = STEP_BUDGETS["instruction"]
    memory = found.get("memory")
    if isinstance(memory, dict) and "instruction" in memory:
        copy = size(memory["instruction"])
        if size(instruction) + copy <= room:
            room -= copy
        else:
            # A snapshot from before the definition's byte rule: keep the run, not memory.
            del memory["instruction"]
            memory.pop("key", None)
            memory["skipped"] = "instruction over its byte budget"
    return replace(
        result,
        instruction=clip(instruction, room),
        url=clip(result.url, STEP_BUDGETS["url"]) if result.url is not None else None,
        error=clip(result.error, STEP_BUDGETS["error"]) if result.error is not None else None,
        artifacts=tree(list(result.artifacts)),
        details=found,
    )


__all__ = ["MARKER", "bound_step", "clip", "details", "size", "tree"]
