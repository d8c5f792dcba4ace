"""The client CLI against a real system: ``runledger dev`` (on the test's PostgreSQL and
Valkey, a real Chromium) and the commands run as a user or a CI job runs them.

``submit`` of a folder with a passing, a failing and a flaky test (it passes on its retry):
exit codes, the JUnit file parsed and checked, ``--json``; ``runs tail`` on a live run,
cancelled from the CLI; ``runs show`` with the attempts; usage and infrastructure errors
are one line and exit 2.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from runledger.testing import local_site
from tests.cli.helpers import CHROMIUM, failing_test, free_port, passing_test, wait_serving

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
SITE = ROOT / "tests" / "executor" / "site"


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("DATABASE_URL", "REDIS_URL", "API_KEYS", "RUNLEDGER_API",
                        "RUNLEDGER_API_KEY")}
    return env | {"CHROMIUM_PATH": str(CHROMIUM), "BROWSER_AUTO_INSTALL": "false",
                  "ARTIFACTS_DIR": str(tmp_path / "artifacts"), "VERIFY_TIMEOUT_SECONDS": "1",
                  "STEP_TIMEOUT_SECONDS": "10"} | extra


@pytest.fixture
def api(tmp_path: Path, database_url: str, redis_url: str) -> Iterator[str]:
    """A ``runledger dev`` on the test's servers; yields its API URL once it serves."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "runledger.cli", "dev", "--port", str(port)], cwd=tmp_path,
        env=_env(tmp_path, DATABASE_URL=database_url, REDIS_URL=redis_url),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert process.stdout is not None
    seen = []
    for line in process.stdout:  # bounded by the test timeout
        seen.append(line)
        if "Stuck-run recovery" in line:  # the worker's last start-up line
            break
    else:
        raise AssertionError("dev ended before serving:\n" + "".join(seen))
    try:
        wait_serving(f"http://127.0.0.1:{port}")
        yield f"http://127.0.0.1:{port}"
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=60)
        finally:
            if process.poll() is None:
                process.kill()
            process.stdout.close()


def cli(tmp_path: Path, api: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "runledger.cli", *args],
                          cwd=tmp_path, env=_env(tmp_path, RUNLEDGER_API=api),
                          capture_output=True, text=True, timeout=120)


def _flaky_site(tmp_path: Path) -> Any:
    """A copy of the site, with ``flaky.html`` saying "Ready" only from its second load on."""
    copy = tmp_path / "site"
    shutil.copytree(SITE, copy)
    (copy / "flaky.html").write_text("<!doctype html><title>flaky-page</title><p>STATE</p>")
    loads = {"n": 0}

    def render(html: str) -> str:
        if "flaky-page" in html:
            loads["n"] += 1
            return html.replace("STATE", "Ready" if loads["n"] > 1 else "Loading")
        return html

    return local_site(copy, render=render)


def _write_suite(folder: Path, site: str) -> None:
    folder.mkdir()
    (folder / "home.json").write_text(json.dumps(passing_test(site, "home shows Acme")))
    both = [failing_test(site, "welcome shows"),
            {"name": "flaky ready", "url": f"{site}/flaky.html", "retries": 2,
             "definition": {"steps": [
                 {"action": "verify", "instruction": "it says Ready", "expected": "Ready"}]}}]
    (folder / "more.yaml").write_text(yaml.safe_dump_all([both[0], both[1]]))


def test_submit_a_folder_gates_ci_with_junit_and_json(tmp_path: Path, api: str) -> None:
    with _flaky_site(tmp_path) as site:
        # One passing test: exit 0.
        one = tmp_path / "one.yaml"
        one.write_text(yaml.safe_dump(passing_test(site, "home shows Acme")))
        first = cli(tmp_path, api, "submit", str(one))
        assert first.returncode == 0, first.stdout + first.stderr
        assert "1 passed, 0 failed" in first.stdout

        _write_suite(tmp_path / "suite", site)
        result = cli(tmp_path, api, "submit", "suite", "--parallel", "3",
                     "--junit", "junit.xml", "--json", "runs.json")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "2 passed (1 flaky), 1 failed" in result.stdout
    assert "[welcome shows] step 1 failed" in result.stdout  # the step view (not a tty)

    suite = ET.parse(tmp_path / "junit.xml").getroot()
    assert suite.tag == "testsuite"
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("3", "1", "0")
    cases = {case.get("name"): case for case in suite.iter("testcase")}
    assert set(cases) == {"home shows Acme", "welcome shows", "flaky ready"}
    for case in cases.values():
        assert float(case.get("time", "-1")) > 0
    failure = cases["welcome shows"].find("failure")
    assert failure is not None
    assert failure.get("message") == (
        "step 1: expected text 'Welcome back, Zed' is not visible on the page")
    assert "failing step 1: the page says Welcome back" in (failure.text or "")
    props = {p.get("name"): p.get("value") for p in cases["flaky ready"].iter("property")}
    assert props["flaky"] == "true" and props["attempts"] == "2"
    assert props["url"] == f"{api}/ui/runs/{props['run_id']}"
    assert cases["flaky ready"].find("failure") is None
    assert f"{api}/ui/runs/" in (failure.text or "")

    runs = {r["name"]: r for r in json.loads((tmp_path / "runs.json").read_text())}
    assert runs["home shows Acme"]["status"] == "passed"
    assert runs["welcome shows"]["status"] == "failed"
    assert runs["welcome shows"]["attempts"][0]["error_step"] == 1
    flaky_run = runs["flaky ready"]
    assert (flaky_run["status"], flaky_run["flaky"]) == ("passed", True)
    assert [a["status"] for a in flaky_run["attempts"]] == ["failed", "passed"]
    assert [a["attempt"] for a in flaky_run["attempts"]] == [1, 2]

    # The same names were updated, not duplicated: "home shows Acme" ran twice, one test.
    with httpx.Client(base_url=api) as http:
        names = [t["name"] for t in http.get("/tests", params={"limit": 200}).json()["items"]]
    assert sorted(names) == ["flaky ready", "home shows Acme", "welcome shows"]

    # runs show: the attempts and "flaky", from either attempt.
    shown = cli(tmp_path, api, "runs", "show", flaky_run["attempts"][0]["run_id"], "--json")
    assert shown.returncode == 0, shown.stderr
    document = json.loads(shown.stdout)
    assert [a["status"] for a in document["attempts"]] == ["failed", "passed"]
    assert document["flaky"] is True
    listed = json.loads(cli(tmp_path, api, "runs", "list", "--json").stdout)
    assert len(listed) == 5  # 1 + 3 tests, one retry
    history = json.loads(cli(tmp_path, api, "runs", "history", flaky_run["run_id"],
                             "--json").stdout)
    queued = history[0]["data"]
    assert (queued["attempt"], queued["first_run_id"]) == (
        2, flaky_run["attempts"][0]["run_id"])


def test_tail_follows_a_live_run_and_cancel_ends_it(tmp_path: Path, api: str) -> None:
    with local_site(SITE) as site, httpx.Client(base_url=api) as http:
        slow = {"name": "waits", "url": f"{site}/index.html", "definition": {"steps": [
            {"action": "verify", "instruction": "the heading says Acme", "expected": "Acme"},
            {"action": "wait_for", "instruction": "wait for the Never button",
             "target": "the Never button"}]}}
        test_id = http.post("/tests", json=slow).json()["id"]
        run_id = http.post("/runs", json={"test_id": test_id}).json()["run_id"]
        tail = subprocess.Popen(
            [sys.executable, "-m", "runledger.cli", "runs", "tail", run_id, "--json"],
            cwd=tmp_path, env=_env(tmp_path, RUNLEDGER_API=api), stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True)
        assert tail.stdout is not None
        seen = []
        for line in tail.stdout:  # live: the first step arrives while the run waits
            seen.append(json.loads(line))
            if seen[-1]["type"] == "step":
                break
        assert [e["type"] for e in seen] == ["queued", "started", "step"]
        cancelled = cli(tmp_path, api, "runs", "cancel", run_id, "--reason", "enough")
        assert cancelled.returncode == 0, cancelled.stderr
        assert cancelled.stdout.strip() == f"cancelled run {run_id}"
        rest = [json.loads(line) for line in tail.stdout]
        assert rest[-1]["type"] == "cancelled" and rest[-1]["data"]["reason"] == "enough"
        assert tail.wait(timeout=30) == 1
        tail.stdout.close()
        assert tail.stderr is not None
        tail.stderr.close()
    again = cli(tmp_path, api, "runs", "cancel", run_id)
    assert again.returncode == 1 and "finished" in again.stderr


@pytest.mark.integration
def test_usage_and_infrastructure_errors_are_one_line_and_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from runledger.cli import app

    monkeypatch.chdir(tmp_path)  # no .runledger/dev.json here
    # The command configures the root logger with the runner's captured stream, closed when
    # it returns: later tests' records would fail to write to it ("Logging error").
    monkeypatch.setattr(logging.root, "handlers", logging.root.handlers[:])
    for name in ("RUNLEDGER_API", "RUNLEDGER_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"name": "x", "url": "ftp://nope", "definition": {
        "steps": [{"action": "fill", "instruction": "Fill the Email field"}]}}))
    dead = "http://127.0.0.1:1"
    cases = {
        ("submit", str(bad), "--api", dead):
            f"error: {bad} (test 1): url: must be an absolute http:// or https:// URL; "
            "definition.steps[0].value: required for 'fill' steps",
        ("submit", "missing", "--api", dead): "error: missing: no such file or folder",
        ("runs", "list", "--api", dead):
            f"error: cannot reach the API at {dead}: All connection attempts failed",
        ("runs", "list"): "error: no API to talk to: pass --api URL, set RUNLEDGER_API, or "
                          "start `runledger dev` in this folder",
    }
    for args, expected in cases.items():
        result = CliRunner().invoke(app, list(args))
        assert (result.exit_code, result.stderr.strip()) == (2, expected), result.output


def test_a_failure_inside_parallel_submits_is_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Found by hand: `runledger dev` stopped while `submit` tailed a run; the broken tail
    # was raised inside the task group of parallel tests and printed a traceback.
    import asyncio

    import typer

    from runledger.cli import _client_call
    from runledger.client.http import ClientError

    async def body(client: Any) -> int:
        async def broken() -> None:
            raise ClientError("the live tail of run r broke off: All connection attempts failed")

        async with asyncio.TaskGroup() as group:
            group.create_task(broken())
        return 0

    with pytest.raises(typer.Exit) as stopped:
        _client_call("http://127.0.0.1:1", None, body)
    assert stopped.value.exit_code == 2
    assert capsys.readouterr().err.strip() == (
        "error: the live tail of run r broke off: All connection attempts failed")
