"""Secrets in a real browser: revealed only when typed, redacted from every result; an
unknown secret fails its step naming it; a password typed without a reference is masked."""

from __future__ import annotations

from collections.abc import Callable

import orjson
import pytest
from pydantic import SecretStr

from worker.agent import AgentExecutor

from ..executor.conftest import RecordingSink, make_job

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

MakeExecutor = Callable[..., AgentExecutor]
PASSWORD = "correct horse"  # what the test site's login page accepts


def _recorded(sink: RecordingSink) -> bytes:
    return orjson.dumps([r.__dict__ for r in sink.results], default=str)


async def test_a_secret_is_typed_and_recorded_as_its_reference(
    site: str, make_executor: MakeExecutor,
) -> None:
    executor = make_executor(secret_values={"PASSWORD": SecretStr(PASSWORD),
                                            "TOKEN": SecretStr("tok-1234")})
    steps = [
        {"action": "fill", "instruction": "Fill 'Email'", "value": "ada@example.com"},
        {"action": "fill", "instruction": "Fill 'Password'", "value": "{{secrets.PASSWORD}}"},
        {"action": "click", "instruction": "Click 'Log in'"},
        {"action": "verify", "instruction": "Welcome", "expected": "Welcome, ada"},
    ]
    sink = RecordingSink()
    outcome = await executor.execute(
        make_job(f"{site}/login.html?t={{{{secrets.TOKEN}}}}", steps), sink)
    assert outcome.status == "passed", outcome.error  # so the password was typed
    assert sink.results[0].url.endswith("/login.html?t={{secrets.TOKEN}}")
    recorded = _recorded(sink)
    assert PASSWORD.encode() not in recorded and b"tok-1234" not in recorded
    assert sink.results[-1].details["trace"] == (
        "not recorded: the run types secrets (TOKEN, PASSWORD) and traces record typed values")
    assert not [a for r in sink.results for a in r.artifacts if a["kind"] == "trace"]


async def test_an_unknown_secret_fails_its_step_naming_it(
    site: str, make_executor: MakeExecutor,
) -> None:
    steps = [{"action": "fill", "instruction": "Fill 'Password'",
              "value": "{{secrets.MISSING}}"}]
    sink = RecordingSink()
    outcome = await make_executor(screenshots="off").execute(
        make_job(f"{site}/login.html", steps), sink)
    assert outcome.status == "failed" and outcome.error_step == 0
    assert outcome.error == ("unknown secret {{secrets.MISSING}}: set "
                             "RUNLEDGER_SECRET_MISSING or add MISSING to SECRETS_FILE on the "
                             "worker")
    assert sink.results[0].details["error_kind"] == "unknown-secret"


async def test_a_password_typed_without_a_reference_is_masked_with_a_warning(
    site: str, make_executor: MakeExecutor,
) -> None:
    steps = [
        {"action": "fill", "instruction": "Fill 'Email'", "value": "ada@example.com"},
        {"action": "fill", "instruction": f"Type '{PASSWORD}' into 'Password'",
         "value": PASSWORD},
        {"action": "click", "instruction": "Click 'Log in'"},
    ]
    sink = RecordingSink()
    outcome = await make_executor().execute(make_job(f"{site}/login.html", steps), sink)
    assert outcome.status == "passed", outcome.error
    typed = sink.results[1]
    assert typed.instruction == "Type '***' into 'Password'"
    assert typed.details["warnings"] == [
        "a password was typed without a {{secrets.NAME}} reference: its value lives in the "
        "test definition; it is masked in what the run records"]
    assert PASSWORD.encode() not in _recorded(sink)
    assert "warnings" not in sink.results[0].details  # an email field is no password field


async def test_a_page_showing_a_secret_gets_no_screenshot(
    site: str, make_executor: MakeExecutor,
) -> None:
    executor = make_executor(secret_values={"EMAIL": SecretStr("hidden@example.com")})
    steps = [{"action": "fill", "instruction": "Fill 'Email'", "value": "{{secrets.EMAIL}}"}]
    sink = RecordingSink()
    outcome = await executor.execute(make_job(f"{site}/login.html", steps), sink)
    assert outcome.status == "passed", outcome.error
    [result] = sink.results
    assert result.artifacts == []
    assert result.details["screenshot"] == "withheld: the page shows a secret or masked value"
