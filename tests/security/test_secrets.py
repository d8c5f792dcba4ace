"""Secrets in a real browser: revealed only when typed, redacted from every result; an
unknown secret fails its step naming it; a password typed without a reference is masked."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
from pydantic import SecretStr

from runledger.testing import local_site
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
    assert sink.results[0].details["error_kind"] == "unknown_secret"


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


async def test_a_secret_in_a_url_is_encoded_whole_and_recorded_as_its_reference(
    site: str, make_executor: MakeExecutor,
) -> None:
    # Typed raw, Chromium would keep "@" and "!" and turn the space into %20: a spelling of
    # the value no redaction variant matched, so the step's URL carried it.
    token = "p@ss w!rd&x=1"
    executor = make_executor(secret_values={"TOKEN": SecretStr(token)})
    steps = [{"action": "navigate", "instruction": "Open the login page",
              "target": "/login.html?t={{secrets.TOKEN}}"}]
    sink = RecordingSink()
    outcome = await executor.execute(make_job(f"{site}/login.html", steps), sink)
    assert outcome.status == "passed", outcome.error
    assert sink.results[0].url.endswith("/login.html?t={{secrets.TOKEN}}")
    recorded = _recorded(sink)
    for spelling in (token, "p@ss%20w!rd", "p%40ss%20w%21rd%26x%3D1", "ss w!rd"):
        assert spelling.encode() not in recorded, spelling



async def test_no_log_line_carries_a_secret_from_the_page_url(
    site: str, make_executor: MakeExecutor, caplog: pytest.LogCaptureFixture,
) -> None:
    # The consent banner's dismissal is logged with the page's URL, which here carries a
    # revealed secret in its query string.
    executor = make_executor(screenshots="off",
                             secret_values={"TOKEN": SecretStr("tok-in-the-query")})
    steps = [
        {"action": "navigate", "instruction": "Open the news"},
        {"action": "click", "instruction": "Click 'Continue reading'"},
    ]
    sink = RecordingSink()
    with caplog.at_level(logging.DEBUG):
        outcome = await executor.execute(
            make_job(f"{site}/consent.html?t={{{{secrets.TOKEN}}}}", steps), sink)
    assert outcome.status == "passed", outcome.error
    assert [p for r in sink.results for p in r.details.get("popups", [])]
    assert "consent banner" in caplog.text
    assert "tok-in-the-query" not in caplog.text


SHADOW_PAGE = """<!doctype html><title>Key</title>
<label>Key <input type="password" id="key"></label>
<key-preview></key-preview>
<p id="loud" style="text-transform: uppercase"></p>
<script>
customElements.define('key-preview', class extends HTMLElement {
  connectedCallback() {
    const root = this.attachShadow({mode: 'open'});
    root.innerHTML = '<span>Preview: <input readonly></span>';
  }
});
document.getElementById('key').addEventListener('input', e => {
  document.querySelector('key-preview').shadowRoot.querySelector('input').value =
    e.target.value;
  if (location.hash === '#loud') document.getElementById('loud').textContent = e.target.value;
});
</script>"""


@pytest.mark.parametrize("where", ["shadow", "loud"])
async def test_a_secret_shown_in_a_shadow_root_or_restyled_withholds_the_screenshot(
    make_executor: MakeExecutor, tmp_path: Path, where: str,
) -> None:
    # A password field whose value the page previews inside a web component's shadow root
    # (which document.innerText does not reach) or in upper case (which innerText reports
    # transformed): both show the secret on screen.
    (tmp_path / "key.html").write_text(SHADOW_PAGE)
    executor = make_executor(secret_values={"KEY": SecretStr("lower-case-key")})
    steps = [{"action": "fill", "instruction": "Fill 'Key'", "value": "{{secrets.KEY}}"}]
    sink = RecordingSink()
    with local_site(tmp_path) as url:
        suffix = "#loud" if where == "loud" else ""
        outcome = await executor.execute(make_job(f"{url}/key.html{suffix}", steps), sink)
    assert outcome.status == "passed", outcome.error
    [result] = sink.results
    assert result.artifacts == []
    assert result.details["screenshot"] == "withheld: the page shows a secret or masked value"


async def test_a_secret_cut_short_in_a_recorded_text_is_still_redacted(
    make_executor: MakeExecutor, tmp_path: Path,
) -> None:
    # A failed verify quotes the closest visible line cut at 200 characters: here the cut
    # falls inside the secret the page echoes, leaving its first characters.
    key = "key-0123456789abcdefghij"
    line = "Saved settings for the account; the key you entered is " + "x" * 135 + " "
    (tmp_path / "echo.html").write_text(
        "<!doctype html><title>echo</title><label>Key <input id=k></label>"
        "<p id=out></p><script>document.getElementById('k').addEventListener('input', "
        f"e => {{ document.getElementById('out').textContent = {line!r} + e.target.value; }});"
        "</script>")
    assert len(line) < 200 < len(line) + len(key)
    executor = make_executor(screenshots="off", secret_values={"KEY": SecretStr(key)})
    steps = [
        {"action": "fill", "instruction": "Fill 'Key'", "value": "{{secrets.KEY}}"},
        {"action": "verify", "instruction": "Stored",
         "expected": line.strip().replace("Saved", "Stored")},
    ]
    sink = RecordingSink()
    with local_site(tmp_path) as url:
        outcome = await executor.execute(make_job(f"{url}/echo.html", steps), sink)
    assert outcome.status == "failed" and outcome.error_step == 1
    assert outcome.error and "closest visible text" in outcome.error
    cut = key[: 200 - len(line)]
    assert cut not in outcome.error and cut.encode() not in _recorded(sink)
