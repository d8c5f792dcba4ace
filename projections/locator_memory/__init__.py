"""Locator memory: a read model of ``step`` events that remembers, per page, action and
instruction, which locator found the step's element and how reliably.

* ``MODEL`` / ``FOLLOWER`` / ``apply`` — the read model (follower ``locator_memory``) the
  projector runs and ``rebuild`` can replay;
* ``PgLocatorMemory`` — what the executor reads, once per run;
* ``memory_key`` — the key both sides compute.
"""

from projections.locator_memory.follower import FOLLOWER, MODEL, NAME, TABLES, apply
from projections.locator_memory.keys import memory_key, normalise_instruction, normalise_url
from projections.locator_memory.memory import (
    DROP_AFTER_FAILURES,
    RELIABILITY_THRESHOLD,
    MemoryEntry,
    Observation,
    fold,
    observe,
)
from projections.locator_memory.reader import PgLocatorMemory

__all__ = [
    "DROP_AFTER_FAILURES",
    "FOLLOWER",
    "MODEL",
    "NAME",
    "RELIABILITY_THRESHOLD",
    "TABLES",
    "MemoryEntry",
    "Observation",
    "PgLocatorMemory",
    "apply",
    "fold",
    "memory_key",
    "normalise_instruction",
    "normalise_url",
    "observe",
]
