"""The vocabulary of the system runledger replaces, so its existing clients keep working.

Pure translation of ledger events: ``GET /results/{run_id}`` (one run, its old shape) and
``GET /results/{run_id}/stream`` (SSE ``log | screenshot | complete | error``). Screenshots
are links to the artifact route instead of embedded base64.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from ledger.domain import TIMEOUT_MESSAGE

Event = dict[str, Any]
ArtifactUrl = Callable[[str], str]


def _log(step: int | None, message: str, status: str, duration_ms: int | None) -> dict[str, Any]:
    return {"step": step, "message": message, "status": status, "duration_ms": duration_ms}


def _screenshots(data: dict[str, Any]) -> list[dict[str, Any]]:
    return [ref for ref in data.get("artifacts") or ()
            if isinstance(ref, dict) and ref.get("kind") == "screenshot" and "id" in ref]


def _step_message(data: dict[str, Any]) -> str:
    message = f"Step {data['index'] + 1} ({data['action']}): {data['instruction']}"
    if data.get("healed"):
        message += f" [self-healed via {data.get('strategy')}]"
    if data.get("error"):
        message += f" — {data['error']}"
    return message


def error_message(event: Event) -> str:
    data = event["data"]
    if event["type"] == "timed-out":
        return data.get("message") or TIMEOUT_MESSAGE
    if event["type"] == "cancelled":
        return f"Cancelled: {data.get('reason') or 'no reason given'}"
    return str(data.get("message") or "Execution error")


def legacy_events(event: Event, artifact_url: ArtifactUrl) -> list[tuple[str, dict[str, Any]]]:
    """The old stream's ``(event, data)`` pairs for one ledger event, in order."""
    kind, data = event["type"], event["data"]
    if kind == "queued":
        return [("log", _log(None, f"Queued: {data.get('test_name', '')}", "queued", None))]
    if kind == "started":
        browser = data.get("browser") or {}
        engine = f"{browser.get('name', 'browser')} {browser.get('version', '')}".strip()
        message = f"Started on {data.get('worker')} ({engine})"
        return [("log", _log(None, message, "running", None))]
    if kind == "step":
        pairs = [("log", _log(data["index"], _step_message(data), data["status"],
                              data.get("duration_ms")))]
        pairs += [("screenshot", {"step": data["index"], "url": artifact_url(ref["id"])})
                  for ref in _screenshots(data)]
        return pairs
    if kind == "completed":
        message = data.get("error") or f"Test {data['status']}"
        return [("complete", {
            "status": data["status"], "duration_ms": data.get("duration_ms"),
            "steps_completed": data.get("steps_completed"), "message": message,
        })]
    if kind in ("errored", "timed-out", "cancelled"):
        return [("error", {"message": error_message(event)})]
    return []


def legacy_result(row: dict[str, Any], events: Iterable[Event], artifact_url: ArtifactUrl
                  ) -> dict[str, Any]:
    """``GET /results/{run_id}``: the old run shape from the run's row and its events."""
    screenshots: list[dict[str, Any]] = []
    logs: list[dict[str, Any]] = []
    step_results: list[dict[str, Any]] = []
    llm_calls: float = 0
    cost = 0.0
    for event in events:
        for kind, data in legacy_events(event, artifact_url):
            if kind == "log":
                logs.append({"timestamp": event["timestamp"], **data})
            elif kind == "screenshot":
                screenshots.append({**data, "timestamp": event["timestamp"]})
        if event["type"] == "step":
            data = event["data"]
            step_results.append(_step_result(data))
            details = data.get("details") or {}
            llm_calls += _number(details.get("llm_calls"), 1 if data.get("strategy") == "llm"
                                 else 0)
            cost += _number(details.get("cost_usd"), 0.0)
    return {
        "id": row["id"], "test_id": row["test_id"], "status": row["status"],
        "started_at": row["started_at"], "completed_at": row["completed_at"],
        "duration_ms": row["duration_ms"], "screenshots": screenshots, "logs": logs,
        "step_results": step_results, "self_healed": any(s["self_healed"] for s in step_results),
        "llm_calls": int(llm_calls), "cost_usd": round(cost, 6), "error": row["error"],
        "error_step": row["error_step"], "created_at": row["created_at"],
    }


def _step_result(data: dict[str, Any]) -> dict[str, Any]:
    return {
        "step": data["index"], "status": data["status"], "strategy": data.get("strategy"),
        "self_healed": bool(data.get("healed")), "duration_ms": data.get("duration_ms"),
        "attempts": data.get("attempts", 1), "error": data.get("error"),
    }


def _number(value: Any, default: float) -> float:
    return value if isinstance(value, int | float) and not isinstance(value, bool) else default
