"""JUnit XML as CI systems read it (Jenkins, GitLab, GitHub and Azure reporters).

One ``testsuite`` named after the submission; a ``testcase`` per test with its time (all
attempts), and for a test that did not pass a ``failure`` (the test failed: its message
and the failing step) or an ``error`` (the run errored, timed out or was cancelled). Each
test case links its run page and lists its attempts in ``system-out`` and ``properties``;
a test that passed on a later attempt is marked ``flaky``.
"""

from __future__ import annotations

import socket
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path

from runledger.client.runs import Attempt, Outcome

_ERROR_ENDINGS = ("errored", "timed-out", "cancelled")


def junit_xml(outcomes: list[Outcome], run_page: dict[str, str], *,
              suite: str = "runledger") -> bytes:
    """The XML document; ``run_page`` maps run ids to their page URLs."""
    failures = sum(1 for o in outcomes if not o.passed and o.final.ended_by == "completed")
    errors = sum(1 for o in outcomes if not o.passed) - failures
    root = ET.Element("testsuite", {
        "name": suite, "tests": str(len(outcomes)), "failures": str(failures),
        "errors": str(errors), "skipped": "0",
        "time": f"{sum(o.seconds for o in outcomes):.3f}",
        "timestamp": datetime.now(UTC).replace(microsecond=0).isoformat(),
        "hostname": socket.gethostname(),
    })
    for outcome in outcomes:
        root.append(_case(outcome, run_page))
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"


def _case(outcome: Outcome, run_page: dict[str, str]) -> ET.Element:
    final = outcome.final
    case = ET.Element("testcase", {
        "name": outcome.name, "classname": _classname(outcome),
        "time": f"{outcome.seconds:.3f}",
    })
    if outcome.source:
        case.set("file", outcome.source)
    properties = ET.SubElement(case, "properties")
    for name, value in (("run_id", final.run_id), ("url", run_page[final.run_id]),
                        ("attempts", str(len(outcome.attempts))),
                        ("flaky", "true" if outcome.flaky else "false")):
        ET.SubElement(properties, "property", {"name": name, "value": value})
    if not outcome.passed:
        tag = "error" if final.ended_by in _ERROR_ENDINGS else "failure"
        problem = ET.SubElement(case, tag, {"message": _message(final),
                                            "type": final.ended_by or "failed"})
        problem.text = _details(final, run_page[final.run_id])
    out = ET.SubElement(case, "system-out")
    out.text = "\n".join(
        [f"run page: {run_page[final.run_id]}"]
        + [f"attempt {a.attempt}: {a.status} (run {a.run_id}, {run_page[a.run_id]})"
           for a in outcome.attempts]
        + (["flaky: passed after a failed attempt"] if outcome.flaky else []))
    return case


def _classname(outcome: Outcome) -> str:
    if not outcome.source:
        return "runledger"
    return "runledger." + Path(outcome.source).with_suffix("").as_posix().replace("/", ".")


def _message(attempt: Attempt) -> str:
    where = f"step {attempt.error_step}" if attempt.error_step is not None else "the run"
    return f"{where}: {attempt.error or attempt.status}"


def _details(attempt: Attempt, link: str) -> str:
    lines = [f"{attempt.ended_by or attempt.status}: {attempt.error or ''}".rstrip(": ")]
    if attempt.error_step is not None:
        lines.append(f"failing step {attempt.error_step}: {attempt.failing_step or '?'}")
    lines.append(f"run page: {link}")
    return "\n".join(lines)


def write_junit(path: Path, outcomes: list[Outcome], run_page: dict[str, str]) -> None:
    path.write_bytes(junit_xml(outcomes, run_page))
