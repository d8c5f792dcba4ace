"""Playwright calls that a run's trace does not record: the executor's own looking.

With ``TRACES`` on, Playwright records every call into the trace and captures a DOM
snapshot before and after each evaluation: resolving a step makes several such calls (the
probes of the candidates, "did it open a tab?", "does the page show a secret?"), and their
snapshots cost more than the probes themselves (15 to 20 ms a call on the benchmark's page,
against 2 to 5 ms untraced). They are the executor's reading of the page, not what the test
did: the trace keeps the steps' actions, checks and screenshots, and drops these — a
shorter trace to read, and a run that keeps pace with a plain Playwright script.

Playwright marks its own helper calls "internal" (no trace entry, no snapshot) through its
API zone. There is no public option for it, so this uses the client's private zone; when
the installed Playwright has none (another version), ``untraced`` simply runs the work
traced — slower, never different.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")

_ApiZone: Any = None
_current_zone: Any = None
try:  # the private API zone of playwright-python (1.65)
    _ApiZone = importlib.import_module("playwright._impl.channel_owner").ApiZone
    _current_zone = importlib.import_module("playwright._impl.utils.zones").current_zone
except (ImportError, AttributeError):  # pragma: no cover - another Playwright: traced as before
    _ApiZone = _current_zone = None


def _zone(internal: bool) -> Any:
    """The zone to run in: inside an internal API zone, or outside any API zone."""
    if _ApiZone is None or _current_zone is None:
        return None
    try:
        current = _current_zone()
        if internal:
            api_zone = _ApiZone(api_name="runledger", frames=[], title=None, internal=True)
            if getattr(api_zone, "internal", None) is not True:
                return None
            zone = current.with_("apiZone", api_zone)
        else:
            zone = current.without("apiZone")
    except (AttributeError, TypeError) as exc:  # pragma: no cover - a changed private API
        log.debug("untraced calls unavailable: %s", exc)
        return None
    return zone if callable(getattr(zone, "run_async", None)) else None


async def untraced(work: Callable[[], Awaitable[T]]) -> T:
    """Await ``work()`` with its Playwright calls kept out of the trace. Tasks it starts
    inherit that (they copy the context)."""
    zone = _zone(internal=True)
    if zone is None:
        return await work()
    result: T = await zone.run_async(work)
    return result


async def traced(work: Callable[[], Awaitable[T]]) -> T:
    """Await ``work()`` recorded as usual, even inside ``untraced`` (an action the
    executor takes on the page while looking, such as dismissing a consent banner)."""
    zone = _zone(internal=False)
    if zone is None:
        return await work()
    result: T = await zone.run_async(work)
    return result


__all__ = ["traced", "untraced"]
