"""The optional LLM rung, against a small OpenAI-compatible server on 127.0.0.1.

The server answers like a chat-completions endpoint; what it answers is set per test (the
ref of the element whose ARIA line matches a pattern, no element, an HTTP error, prose).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest

from runledger.testing import serve_http
from worker.agent import AgentExecutor
from worker.agent.llm import OpenAICompatibleAdvisor, parse_answer

from .conftest import RecordingSink, make_job

pytestmark = pytest.mark.browser

MakeExecutor = Callable[..., AgentExecutor]


class FakeModel:
    """What the fake server answers, and what it was asked."""

    def __init__(self) -> None:
        self.mode = "pick"
        self.pick = r'button "Store changes"'
        self.requests: list[dict[str, Any]] = []

    def answer(self, body: dict[str, Any], headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
        self.requests.append({"body": body, "authorization": headers.get("Authorization")})
        if self.mode == "error":
            return 503, {"error": {"message": "overloaded"}}
        if self.mode == "prose":
            return 200, _completion("I think it is probably the save button.")
        if self.mode == "none":
            return 200, _completion('{"ref": null, "reason": "two buttons fit"}')
        snapshot = body["messages"][-1]["content"]
        line = next(line for line in snapshot.splitlines() if re.search(self.pick, line))
        ref = re.search(r"\[ref=([a-z0-9]+)\]", line).group(1)  # type: ignore[union-attr]
        return 200, _completion(f'```json\n{{"ref": "{ref}", "reason": "save icon"}}\n```')


def _completion(content: str) -> dict[str, Any]:
    return {"choices": [{"index": 0, "message": {"role": "assistant", "content": content}}]}


@pytest.fixture(scope="module")
def model() -> Iterator[tuple[FakeModel, str]]:
    fake = FakeModel()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            status, reply = (fake.answer(body, dict(self.headers))
                             if self.path == "/v1/chat/completions" else (404, {}))
            data = json.dumps(reply).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    with serve_http(Handler, name="fake-llm") as url:
        yield fake, f"{url}/v1"


STEPS = [
    {"action": "navigate", "instruction": "Open the editor"},
    {"action": "click", "instruction": "Click the floppy disk icon"},
    {"action": "verify", "instruction": "Saved", "expected": "Changes stored"},
]


async def run_with_llm(site: str, make_executor: MakeExecutor, base_url: str,
                       **config: Any) -> tuple[Any, RecordingSink]:
    advisor = OpenAICompatibleAdvisor(base_url=base_url, model="test-model", api_key="sk-test")
    executor = make_executor(advisor=advisor, screenshots="off", traces="off", **config)
    await executor.open()
    try:
        sink = RecordingSink()
        outcome = await executor.execute(make_job(f"{site}/editor.html", STEPS), sink)
    finally:
        await executor.close()
    return outcome, sink


@pytest.mark.asyncio(loop_scope="module")
async def test_the_llm_resolves_what_the_heuristics_cannot(
    site: str, make_executor: MakeExecutor, model: tuple[FakeModel, str]
) -> None:
    fake, url = model
    fake.mode, fake.requests = "pick", []
    outcome, sink = await run_with_llm(site, make_executor, url)
    assert outcome.status == "passed", outcome.error
    click = sink.by_index(1)
    assert click.strategy == "llm" and not click.healed
    assert click.details["locator"] == 'get_by_role("button", name="Store changes", exact=True)'
    [request] = fake.requests
    assert request["authorization"] == "Bearer sk-test"
    assert request["body"]["model"] == "test-model"
    assert "Click the floppy disk icon" in request["body"]["messages"][-1]["content"]


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize(("mode", "said"), [
    ("error", "the LLM plug-in failed: HTTPStatusError"),
    ("none", "the LLM found no single element: two buttons fit"),
    ("prose", "the LLM answered without JSON"),
])
async def test_a_failing_llm_fails_the_step_the_ordinary_way(
    site: str, make_executor: MakeExecutor, model: tuple[FakeModel, str], mode: str, said: str
) -> None:
    fake, url = model
    fake.mode, fake.requests = mode, []
    outcome, sink = await run_with_llm(site, make_executor, url, step_timeout_seconds=1.5)
    assert outcome.status == "failed" and outcome.error_step == 1
    assert said in (sink.by_index(1).error or "")
    assert len(fake.requests) == 1  # asked once per step, not on every retry


@pytest.mark.asyncio(loop_scope="module")
async def test_the_llm_is_not_asked_when_the_heuristics_succeed(
    site: str, make_executor: MakeExecutor, model: tuple[FakeModel, str]
) -> None:
    fake, url = model
    fake.mode, fake.requests = "error", []
    steps = [{"action": "click", "instruction": "Click 'Store changes'"}]
    advisor = OpenAICompatibleAdvisor(base_url=url, model="m")
    executor = make_executor(advisor=advisor, screenshots="off", traces="off")
    await executor.open()
    try:
        outcome = await executor.execute(make_job(f"{site}/editor.html", steps), RecordingSink())
    finally:
        await executor.close()
    assert outcome.status == "passed" and fake.requests == []


def test_answers_are_parsed_defensively() -> None:
    assert parse_answer('{"ref": "e12", "reason": "it"}').ref == "e12"
    assert parse_answer('Sure! {"ref": "f1e3"}').ref == "f1e3"
    assert parse_answer('{"ref": "button#x"}').ref is None
    assert parse_answer('{"ref": 12}').ref is None
    assert parse_answer("{not json}").ref is None


@pytest.mark.asyncio(loop_scope="module")
async def test_the_llm_settles_an_ambiguity_when_configured(
    site: str, make_executor: MakeExecutor, model: tuple[FakeModel, str]
) -> None:
    fake, url = model
    fake.mode, fake.pick, fake.requests = "pick", r'button "Delete"', []
    advisor = OpenAICompatibleAdvisor(base_url=url, model="m")
    executor = make_executor(advisor=advisor, screenshots="off", traces="off")
    steps = [{"action": "click", "instruction": "Click 'Delete'"},
             {"action": "verify", "instruction": "Q2 stays", "expected": "report-q2.pdf"}]
    await executor.open()
    try:
        sink = RecordingSink()
        outcome = await executor.execute(make_job(f"{site}/ambiguous.html", steps), sink)
    finally:
        await executor.close()
        fake.pick = r'button "Store changes"'
    assert outcome.status == "passed", outcome.error
    click = sink.by_index(0)
    assert click.strategy == "llm" and len(fake.requests) == 1
    assert click.details["locator"] == (
        'get_by_role("button", name="Delete", exact=True).filter(visible=True).nth(0)')
