"""The AgentExecutor against real Chromium and the test site (``site/`` on 127.0.0.1).

Each test runs a job through ``execute`` and asserts on what a consumer would persist: the
``StepResult``s (status, strategy, healed, details, artifacts) and the ``Outcome``.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import zipfile
from collections.abc import Callable
from io import BytesIO
from pathlib import Path
from typing import Any

import orjson
import pytest

from ledger.artifacts import FileArtifactStore
from ledger.codec import MAX_EVENT_BYTES
from worker.agent import AgentExecutor, ExecutorConfig
from worker.agent.browser import ChromiumHost
from worker.errors import ExecutorError, RunCancelled
from worker.ports import StepResult

from .conftest import RecordingSink, chromium_processes, make_job

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

MakeExecutor = Callable[..., AgentExecutor]

EVERY_ACTION: list[dict[str, Any]] = [
    {"action": "navigate", "instruction": "Open the sign-in page"},
    {"action": "fill", "instruction": "Fill 'Email' with 'ada@example.com'",
     "value": "ada@example.com"},
    {"action": "fill", "instruction": "Type the password", "target": "Password",
     "value": "correct horse"},
    {"action": "check", "instruction": "Tick 'Remember me'"},
    {"action": "click", "instruction": "Click the 'Log in' button"},
    {"action": "assert_url", "instruction": "The URL is the dashboard",
     "expected": "/dashboard.html"},
    {"action": "verify", "instruction": "The welcome message greets Ada",
     "expected": "Welcome, ada"},
    {"action": "select", "instruction": "Select 'Canada' from the 'Country' dropdown",
     "value": "Canada"},
    {"action": "check", "instruction": "Check 'Email me updates'"},
    {"action": "uncheck", "instruction": "Uncheck 'Show tips'"},
    {"action": "verify", "instruction": "Preferences are summarised",
     "expected": "Country: Canada · updates on · tips off"},
    {"action": "fill", "instruction": "Type 'invoice 42' in the search box", "value": "invoice 42"},
    {"action": "press", "instruction": "Press Enter in the 'Search orders' box", "value": "Enter"},
    {"action": "verify", "instruction": "Results are listed", "expected": "Results for invoice 42"},
    {"action": "click", "instruction": "Click 'Delete draft'"},
    {"action": "verify", "instruction": "The draft is gone", "expected": "Draft deleted"},
    {"action": "wait_for", "instruction": "Wait for 'Your reports are ready'"},
    {"action": "click", "instruction": "Click the 'Download report' button"},
    {"action": "hover", "instruction": "Hover over the 'Account' button"},
    {"action": "click", "instruction": "Click the 'Sign out' link"},
    {"action": "verify", "instruction": "The 'Log in' button is enabled", "expected": "enabled"},
    {"action": "screenshot", "instruction": "Take a screenshot of the sign-in page"},
]


async def test_a_passing_run_through_every_action(site: str, make_executor: MakeExecutor,
                                                  tmp_path: Path) -> None:
    executor = make_executor()
    sink = RecordingSink()
    outcome = await executor.execute(make_job(f"{site}/login.html", EVERY_ACTION), sink)

    assert (outcome.status, outcome.error, outcome.error_step) == ("passed", None, None)
    assert [r.status for r in sink.results] == ["passed"] * len(EVERY_ACTION)
    assert {r.action for r in sink.results} == {
        "navigate", "click", "fill", "verify", "press", "select", "check", "uncheck", "hover",
        "wait_for", "assert_url", "screenshot"}
    email = sink.by_index(1)
    assert email.strategy == "dom" and not email.healed
    assert email.details["locator"] == 'get_by_role("textbox", name="Email", exact=True)'
    assert email.details["candidates"][0][1:] == [100, 1]
    assert email.details["memory"]["result"] == "none" and email.url.endswith("/login.html")
    assert sink.by_index(12).details["locator"] == (
        'get_by_role("searchbox", name="Search orders", exact=True)')
    assert sink.by_index(14).details["popups"] == [{
        "kind": "dialog", "type": "confirm", "message": "Delete the draft?",
        "action": "accepted"}]
    # The late "Download report" button was waited for, not missed.
    assert sink.by_index(17).status == "passed"

    store = FileArtifactStore(tmp_path / "artifacts")
    for result in sink.results:
        kinds = [a["kind"] for a in result.artifacts]
        assert kinds.count("screenshot") == 1
        shot = next(a for a in result.artifacts if a["kind"] == "screenshot")
        assert (await store.get(shot["id"])).startswith(b"\x89PNG")
        assert len(orjson.dumps(_event_shape(result))) < MAX_EVENT_BYTES
    trace = [a for a in sink.results[-1].artifacts if a["kind"] == "trace"]
    assert len(trace) == 1 and trace[0]["content_type"] == "application/zip"
    assert all(a["kind"] != "trace" for r in sink.results[:-1] for a in r.artifacts)
    with zipfile.ZipFile(BytesIO(await store.get(trace[0]["id"]))) as archive:
        lines = archive.read("trace.trace").decode().splitlines()
    groups = [orjson.loads(line) for line in lines if '"tracingGroup"' in line]
    titles = [g.get("title") or g.get("params", {}).get("name") for g in groups]
    assert len(titles) == len(EVERY_ACTION)  # one group per step in the trace viewer
    assert titles[1] == "1: fill — Fill 'Email' with 'ada@example.com'"
    # The trace holds what the test did (actions, checks, screenshots), not the executor's
    # own probing of the page for each step (worker.agent.untraced).
    calls = [orjson.loads(line) for line in lines if line.startswith('{"type":"before"')]
    methods = {c["method"] for c in calls}
    assert {"fill", "click", "screenshot"} <= methods, methods
    assert "evalOnSelectorAll" not in methods, methods


def _event_shape(result: StepResult) -> dict[str, Any]:
    return result.as_event_data()


async def test_a_failing_verify_fails_the_run_at_that_step(
    site: str, make_executor: MakeExecutor
) -> None:
    executor = make_executor(verify_timeout_seconds=1.0, screenshots="failures")
    sink = RecordingSink()
    steps = [
        {"action": "navigate", "instruction": "Open the users page"},
        {"action": "verify", "instruction": "Bob is listed", "expected": "Bob Dylan"},
        {"action": "click", "instruction": "Click 'Edit' in the row containing 'Ada'"},
    ]
    outcome = await executor.execute(make_job(f"{site}/table.html", steps), sink)

    assert outcome.status == "failed" and outcome.error_step == 1
    assert "'Bob Dylan' is not visible" in (outcome.error or "")
    assert [r.index for r in sink.results] == [0, 1]  # the run stopped at the failing step
    failed = sink.by_index(1)
    assert failed.status == "failed" and failed.details["error_kind"] == "assertion"
    assert sink.by_index(0).artifacts == []  # SCREENSHOTS=failures
    assert sorted(a["kind"] for a in failed.artifacts) == ["screenshot", "trace"]


async def test_a_stale_advanced_selector_is_healed_and_says_so(
    site: str, make_executor: MakeExecutor
) -> None:
    steps = [
        {"action": "navigate", "instruction": "Open checkout"},
        {"action": "click", "instruction": "Click the 'Place order' button",
         "advanced_selector": "#btn-12345678"},
        {"action": "verify", "instruction": "The order is placed", "expected": "Order placed"},
    ]
    sink = RecordingSink()
    outcome = await make_executor(screenshots="off", traces="off").execute(
        make_job(f"{site}/checkout.html", steps), sink)

    assert outcome.status == "passed"
    click = sink.by_index(1)
    assert click.healed is True and click.strategy == "dom"
    heal = click.details["heal"]
    assert heal["from"] == "selector" and heal["old"] == 'locator("#btn-12345678")'
    assert heal["new"] == 'get_by_role("button", name="Place order", exact=True)'
    assert heal["problem"] == "matched 0 visible elements"


async def test_strict_healing_refuses_the_heal(site: str, make_executor: MakeExecutor) -> None:
    steps = [
        {"action": "navigate", "instruction": "Open checkout"},
        {"action": "click", "instruction": "Click the 'Place order' button",
         "advanced_selector": "#btn-12345678"},
        {"action": "verify", "instruction": "The order is placed", "expected": "Order placed"},
    ]
    sink = RecordingSink()
    outcome = await make_executor(healing="strict", screenshots="off", traces="off").execute(
        make_job(f"{site}/checkout.html", steps), sink)

    assert outcome.status == "failed" and outcome.error_step == 1
    click = sink.by_index(1)
    assert click.details["error_kind"] == "heal_refused" and not click.healed
    assert "HEALING=strict" in (click.error or "")
    assert 'get_by_role("button", name="Place order", exact=True)' in (click.error or "")
    assert len(sink.results) == 2


async def test_a_working_advanced_selector_wins(site: str, make_executor: MakeExecutor) -> None:
    steps = [{"action": "click", "instruction": "Click the second Edit",
              "advanced_selector": "tr:nth-child(2) button"},
             {"action": "verify", "instruction": "Grace is edited", "expected": "Editing Grace"}]
    sink = RecordingSink()
    outcome = await make_executor(screenshots="off", traces="off").execute(
        make_job(f"{site}/table.html", steps), sink)
    assert outcome.status == "passed"
    assert sink.by_index(0).strategy == "selector" and not sink.by_index(0).healed


async def test_ambiguity_is_reported_not_guessed(site: str, make_executor: MakeExecutor) -> None:
    steps = [{"action": "click", "instruction": "Click 'Delete'"}]
    sink = RecordingSink()
    outcome = await make_executor(screenshots="off", traces="off").execute(
        make_job(f"{site}/ambiguous.html", steps), sink)

    assert outcome.status == "failed" and outcome.error_step == 0
    result = sink.by_index(0)
    assert result.details["error_kind"] == "ambiguous"
    assert result.error is not None and "matches 2" in result.error
    assert result.error.count("<button> Delete") == 2
    assert "locator" not in result.details  # nothing was chosen, nothing was clicked


async def test_an_ordinal_or_a_scope_disambiguates(site: str, make_executor: MakeExecutor
                                                    ) -> None:
    executor = make_executor(screenshots="off", traces="off")
    sink = RecordingSink()
    steps = [
        {"action": "click", "instruction": "Click the second 'Delete' button"},
        {"action": "verify", "instruction": "Q1 is kept", "expected": "report-q1.pdf"},
        {"action": "verify", "instruction": "'report-q2.pdf' is not visible",
         "expected": "report-q2.pdf"},
    ]
    outcome = await executor.execute(make_job(f"{site}/ambiguous.html", steps), sink)
    assert outcome.status == "passed", outcome.error
    assert sink.by_index(0).details["locator"].endswith(".filter(visible=True).nth(1)")

    sink = RecordingSink()
    steps = [
        {"action": "click", "instruction": "Click 'Edit' in the row containing 'Grace Hopper'"},
        {"action": "verify", "instruction": "Grace is edited", "expected": "Editing Grace Hopper"},
    ]
    outcome = await executor.execute(make_job(f"{site}/table.html", steps), sink)
    assert outcome.status == "passed", outcome.error
    assert sink.by_index(0).details["locator"] == (
        'get_by_role("row").filter(has_text="Grace Hopper")'
        '.get_by_role("button", name="Edit", exact=True)')


async def test_an_open_modal_confines_the_search(site: str, make_executor: MakeExecutor) -> None:
    steps = [
        {"action": "click", "instruction": "Click 'Edit profile'"},
        {"action": "fill", "instruction": "Fill 'Display name' with 'Ada'", "value": "Ada"},
        {"action": "click", "instruction": "Click 'Save'"},  # the page behind has one too
        {"action": "verify", "instruction": "Saved", "expected": "Profile saved: Ada"},
        {"action": "select", "instruction": "Pick 'Français' in the language list",
         "target": "Language", "value": "français"},
    ]
    sink = RecordingSink()
    outcome = await make_executor(screenshots="off", traces="off").execute(
        make_job(f"{site}/settings.html", steps), sink)
    assert outcome.status == "passed", outcome.error
    assert sink.by_index(2).details["locator"].startswith(
        'locator("[aria-modal=\\"true\\"]:visible, dialog:modal").last.get_by_role("button"')


async def test_the_consent_banner_is_dismissed_and_recorded(
    site: str, make_executor: MakeExecutor
) -> None:
    steps = [
        {"action": "navigate", "instruction": "Open the news"},
        {"action": "click", "instruction": "Click 'Continue reading'"},
        {"action": "verify", "instruction": "Reading goes on", "expected": "Continued reading"},
    ]
    sink = RecordingSink()
    outcome = await make_executor(screenshots="off", traces="off").execute(
        make_job(f"{site}/consent.html", steps), sink)
    assert outcome.status == "passed", outcome.error
    popups = [p for r in sink.results for p in r.details.get("popups", [])]
    assert popups == [{"kind": "consent", "name": "OneTrust", "action": "accepted",
                       "via": popups[0]["via"]}]


async def test_the_consent_banner_blocks_without_auto_handling(
    site: str, make_executor: MakeExecutor
) -> None:
    steps = [
        {"action": "navigate", "instruction": "Open the news"},
        {"action": "click", "instruction": "Click 'Continue reading'"},
    ]
    sink = RecordingSink()
    outcome = await make_executor(step_timeout_seconds=2.0, screenshots="off", traces="off"
                                  ).execute(
        make_job(f"{site}/consent.html", steps, auto_handle_popups=False), sink)
    assert outcome.status == "failed" and outcome.error_step == 1
    error = sink.by_index(1).error or ""
    assert "STEP_TIMEOUT_SECONDS=2" in error
    assert "onetrust" in error and "intercepts pointer events" in error
    assert "popups" not in sink.by_index(1).details


async def test_a_captcha_fails_the_step_saying_so(site: str, make_executor: MakeExecutor
                                                  ) -> None:
    steps = [{"action": "fill", "instruction": "Fill 'Message' with 'hi'", "value": "hi"}]
    sink = RecordingSink()
    outcome = await make_executor(screenshots="off", traces="off").execute(
        make_job(f"{site}/captcha.html", steps), sink)
    assert outcome.status == "failed"
    result = sink.by_index(0)
    assert result.details["error_kind"] == "captcha"
    assert "CAPTCHA (reCAPTCHA)" in (result.error or "")


async def test_a_step_timeout_names_the_step_and_the_limit(
    site: str, make_executor: MakeExecutor
) -> None:
    steps = [
        {"action": "navigate", "instruction": "Open the users page"},
        {"action": "wait_for", "instruction": "Wait for 'Payroll exported'"},
    ]
    sink = RecordingSink()
    # The limit also bounds step 0 (a navigation), which a loaded machine can stretch past
    # a second or two: 3 s, the time step 1 then waits.
    outcome = await make_executor(step_timeout_seconds=3.0, screenshots="off", traces="off"
                                  ).execute(make_job(f"{site}/table.html", steps), sink)
    assert outcome.status == "failed" and outcome.error_step == 1, outcome.error
    assert (outcome.error or "").startswith(
        "step 1 (wait_for) exceeded STEP_TIMEOUT_SECONDS=3")
    assert sink.by_index(1).details["error_kind"] == "timeout"


async def test_the_run_timeout_names_the_step_and_the_limit(
    site: str, make_executor: MakeExecutor
) -> None:
    steps = [
        {"action": "navigate", "instruction": "Open the users page"},
        {"action": "wait_for", "instruction": "Wait for 'Payroll exported'"},
        {"action": "verify", "instruction": "Never reached", "expected": "Ada"},
    ]
    sink = RecordingSink()
    # 6 s: step 0 (a navigation) must end inside the run's budget on a loaded machine, and
    # the executor stops 5% (0.3 s) before the deadline, a margin a loaded machine's
    # scheduling does not eat (with 2.5 s it was 0.125 s).
    executor = make_executor(step_timeout_seconds=30.0, run_timeout_seconds=6.0,
                             screenshots="off", traces="off")
    outcome = await executor.execute(make_job(f"{site}/table.html", steps), sink)
    assert outcome.status == "failed" and outcome.error_step == 1, outcome.error
    assert "RUN_TIMEOUT_SECONDS=6 during step 1 (wait_for)" in (outcome.error or "")
    assert outcome.duration_ms < 6000  # it stopped before the consumer's own deadline


async def test_a_cancelled_run_stops_and_closes_its_context(
    site: str, make_executor: MakeExecutor, host: ChromiumHost
) -> None:
    async def cancel_at_second(result: StepResult) -> None:
        if result.index == 1:
            raise RunCancelled("cancelled by the API")

    steps = [{"action": "navigate", "instruction": "Open"},
             {"action": "click", "instruction": "Click 'Edit' in the row containing 'Ada'"},
             {"action": "verify", "instruction": "Never reached", "expected": "Editing"}]
    sink = RecordingSink(cancel_at_second)
    with pytest.raises(RunCancelled):
        await make_executor(screenshots="off").execute(make_job(f"{site}/table.html", steps),
                                                        sink)
    assert [r.index for r in sink.results] == [0]
    assert host._current is not None and host._current.browser.contexts == []


async def test_a_browser_crash_ends_the_run_as_an_infrastructure_error(
    site: str, make_executor: MakeExecutor, host: ChromiumHost
) -> None:
    launched = host.launched

    async def kill_browser(result: StepResult) -> None:
        if result.index == 0:
            for pid in chromium_processes(host.tag)["browser"]:
                os.kill(pid, signal.SIGKILL)

    steps = [{"action": "navigate", "instruction": "Open"},
             {"action": "click", "instruction": "Click 'Edit' in the row containing 'Ada'"}]
    sink = RecordingSink(kill_browser)
    with pytest.raises(ExecutorError) as caught:
        await make_executor(screenshots="off").execute(make_job(f"{site}/table.html", steps),
                                                        sink)
    assert caught.value.kind == "browser-crash" and caught.value.step == 1
    assert [r.index for r in sink.results] == [0]  # the steps before the crash are kept

    # The next run gets a new browser.
    sink = RecordingSink()
    outcome = await make_executor(screenshots="off", traces="off").execute(
        make_job(f"{site}/table.html", steps[:1]), sink)
    assert outcome.status == "passed" and host.launched == launched + 1


async def test_a_page_crash_ends_the_run_as_an_infrastructure_error(
    site: str, make_executor: MakeExecutor, host: ChromiumHost
) -> None:
    async def kill_renderer(result: StepResult) -> None:
        if result.index == 0:
            for pid in chromium_processes(host.tag).get("renderer", []):
                os.kill(pid, signal.SIGKILL)

    steps = [{"action": "navigate", "instruction": "Open"},
             {"action": "wait_for", "instruction": "Wait for 'Payroll exported'"}]
    with pytest.raises(ExecutorError) as caught:
        await make_executor(screenshots="off", step_timeout_seconds=30.0).execute(
            make_job(f"{site}/table.html", steps), RecordingSink(kill_renderer))
    assert caught.value.kind in ("page-crash", "browser-crash") and caught.value.step == 1
    assert caught.value.kind == "page-crash"


async def test_the_browser_is_recycled_after_max_runs(site: str, tmp_path: Path) -> None:
    config = ExecutorConfig(browser_max_runs=2, artifacts_dir=tmp_path, screenshots="off",
                            traces="off")
    executor = AgentExecutor(config, artifacts=FileArtifactStore(tmp_path))
    await executor.open()
    try:
        steps = [{"action": "verify", "instruction": "Users are listed", "expected": "Ada"}]
        for _ in range(5):
            outcome = await executor.execute(make_job(f"{site}/table.html", steps),
                                             RecordingSink())
            assert outcome.status == "passed"
        assert executor.host.launched == 3  # runs 1-2, 3-4, 5
        assert len(chromium_processes(executor.host.tag)["browser"]) == 1  # old ones closed
        assert executor.browser["name"] == "chromium-headless-shell"
    finally:
        await executor.close()
    assert chromium_processes(executor.host.tag)["browser"] == []


async def test_concurrent_runs_share_the_browser_in_separate_contexts(
    site: str, make_executor: MakeExecutor
) -> None:
    executor = make_executor(screenshots="off", traces="off")
    steps = [
        {"action": "fill", "instruction": "Fill 'Email' with 'ada@example.com'",
         "value": "ada@example.com"},
        {"action": "fill", "instruction": "Fill 'Password'", "value": "correct horse"},
        {"action": "click", "instruction": "Click 'Log in'"},
        {"action": "verify", "instruction": "Welcome", "expected": "Welcome, ada"},
    ]
    sinks = [RecordingSink() for _ in range(3)]
    outcomes = await asyncio.gather(*(
        executor.execute(make_job(f"{site}/login.html", steps), sink) for sink in sinks))
    assert [o.status for o in outcomes] == ["passed"] * 3, [o.error for o in outcomes]
    assert all(len(sink.results) == 4 for sink in sinks)


async def test_an_unreachable_site_fails_the_first_step(make_executor: MakeExecutor) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    steps = [{"action": "verify", "instruction": "Home", "expected": "Welcome"}]
    sink = RecordingSink()
    outcome = await make_executor(screenshots="off", traces="off").execute(
        make_job(f"http://127.0.0.1:{port}/", steps), sink)
    assert outcome.status == "failed" and outcome.error_step == 0
    assert "ERR_CONNECTION_REFUSED" in (outcome.error or "")


async def test_retention_keeps_the_screenshots_of_the_latest_runs(
    site: str, make_executor: MakeExecutor, tmp_path: Path
) -> None:
    executor = make_executor(screenshot_retention_runs=1, retention_interval_seconds=0,
                             traces="off")
    store = FileArtifactStore(tmp_path / "artifacts")
    shots: list[list[str]] = []
    for user in ("first", "second"):  # the pages differ, so do the screenshots
        steps = [{"action": "navigate", "instruction": "Open",
                  "target": f"/dashboard.html?user={user}"},
                 {"action": "verify", "instruction": "Greeting", "expected": f"Welcome, {user}"}]
        sink = RecordingSink()
        outcome = await executor.execute(
            make_job(f"{site}/dashboard.html", steps, test_id="retention"), sink)
        assert outcome.status == "passed"
        shots.append([a["id"] for r in sink.results for a in r.artifacts])
    assert [await store.exists(i) for i in shots[0]] == [False, False]
    assert [await store.exists(i) for i in shots[1]] == [True, True]
