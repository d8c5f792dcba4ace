"""The optional LLM rung: ask a model which element an instruction means.

``LocatorAdvisor`` is the port; ``OpenAICompatibleAdvisor`` talks to any server speaking
the OpenAI chat-completions API (OpenAI, Azure OpenAI, vLLM, Ollama, LM Studio …) over
httpx. It is used only when ``LLM_BASE_URL`` and ``LLM_MODEL`` are set, only after the
heuristics found nothing or something ambiguous, at most once per step, and its answer is
validated like any other candidate: an element reference from Playwright's ARIA snapshot
that must match exactly one actionable element. A failing model never fails a step by
itself — the step fails as it would have without it, saying what the model answered.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import orjson

if TYPE_CHECKING:
    import httpx

log = logging.getLogger(__name__)

MAX_SNAPSHOT_CHARS = 24_000
_REF = re.compile(r"^[a-z]*\d*e\d+$")
_JSON = re.compile(r"\{.*\}", re.S)

SYSTEM_PROMPT = (
    "You pick the one element of a web page that a browser-test step refers to. You get the "
    "step's action and instruction and the page's ARIA snapshot, where elements carry "
    "[ref=…] markers. Answer with JSON only: {\"ref\": \"<ref>\", \"reason\": \"…\"}, or "
    "{\"ref\": null, \"reason\": \"…\"} when no element clearly fits or several fit equally. "
    "Never guess: a wrong element is worse than none."
)


@dataclass(frozen=True)
class AdviceRequest:
    action: str
    instruction: str
    target: str | None
    snapshot: str  # ARIA snapshot in "ai" mode (with refs)
    candidates: list[str]  # what the heuristics tried, for context


@dataclass(frozen=True)
class Advice:
    ref: str | None
    reason: str


class LocatorAdvisor(Protocol):
    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def advise(self, request: AdviceRequest) -> Advice | None:
        """An element reference, or ``Advice(None, why)``; never raises for model errors."""
        ...


class OpenAICompatibleAdvisor:
    """``POST {base_url}/chat/completions``. Opened and closed by the executor."""

    def __init__(
        self, *, base_url: str, model: str, api_key: str | None = None, timeout: float = 20.0
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self._model = model
        self._api_key = api_key
        self._timeout = timeout
        self._client: httpx.AsyncClient | None = None

    async def open(self) -> None:
        import httpx

        headers = {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}
        self._client = httpx.AsyncClient(
            base_url=self._base_url, headers=headers, timeout=self._timeout
        )

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    async def advise(self, request: AdviceRequest) -> Advice | None:
        import httpx

        if self._client is None:
            raise RuntimeError("OpenAICompatibleAdvisor.advise() before open()")
        try:
            response = await self._client.post("/chat/completions", json=self._body(request))
            response.raise_for_status()
            content = response.json()["choices"][0]["message"]["content"]
        except (httpx.HTTPError, KeyError, IndexError, TypeError, ValueError) as exc:
            log.warning("LLM plug-in failed: %s", _brief(exc))
            return Advice(None, f"the LLM plug-in failed: {_brief(exc)}")
        return parse_answer(content)

    def _body(self, request: AdviceRequest) -> dict[str, Any]:
        tried = "\n".join(f"- {c}" for c in request.candidates[:8]) or "- (none)"
        user = (
            f"Action: {request.action}\nInstruction: {request.instruction}\n"
            f"Target phrase: {request.target or '(none)'}\n"
            f"Locators already tried:\n{tried}\n\n"
            f"ARIA snapshot:\n{request.snapshot[:MAX_SNAPSHOT_CHARS]}"
        )
        return {
            "model": self._model,
            "temperature": 0,
            "messages": [
                {"role": "system", "content": SYSTEM_PROMPT},
                {"role": "user", "content": user},
            ],
        }


def parse_answer(content: str) -> Advice:
    """The model's JSON answer (possibly wrapped in prose or a code fence)."""
    match = _JSON.search(content or "")
    if not match:
        return Advice(None, f"the LLM answered without JSON: {content[:120]!r}")
    try:
        data = orjson.loads(match.group(0))
    except orjson.JSONDecodeError:
        return Advice(None, f"the LLM answered malformed JSON: {match.group(0)[:120]!r}")
    ref = data.get("ref") if isinstance(data, dict) else None
    reason = str(data.get("reason", ""))[:300] if isinstance(data, dict) else ""
    if ref is None:
        return Advice(None, f"the LLM found no single element: {reason}".rstrip(": "))
    if not isinstance(ref, str) or not _REF.match(ref):
        return Advice(None, f"the LLM answered an invalid element reference {ref!r}")
    return Advice(ref, reason)


def _brief(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {str(exc)[:200]}"
