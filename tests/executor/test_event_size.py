"""Generated definitions never yield a step event the ledger refuses: a definition is either
refused with ``InvalidDefinition`` naming the step and field, or every step event the
executor can build from it — over the worst a page can offer — fits ``MAX_EVENT_BYTES``."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from ledger.codec import MAX_EVENT_BYTES
from ledger.definition import Action, instruction_bytes, parse_test
from ledger.domain import recordable
from ledger.errors import InvalidDefinition
from projections.locator_memory import normalise_instruction
from worker.agent.session import recall_texts

from .sizes import encoded_step_event, worst_result

pytestmark = pytest.mark.unit

# Any code point, lone surrogates and controls included; 4-byte characters made common.
_ANY = st.characters(codec=None, exclude_categories=())
_WIDE = st.characters(min_codepoint=0x10000, max_codepoint=0x10FFFF)
_CHARS = st.one_of(_ANY, _WIDE, st.sampled_from(["a", " ", "\x00", "'", "İ", "K"]))


def _text(max_size: int, min_size: int = 0) -> st.SearchStrategy[str]:
    short = st.text(_CHARS, min_size=min_size, max_size=40)
    # Long runs of one character reach the length limits without a slow shrinker.
    long = st.builds(lambda c, n: c * n, _CHARS, st.integers(max(min_size, 1), max_size))
    return st.one_of(short, long)


_STEP = st.fixed_dictionaries(
    {"action": st.sampled_from([a.value for a in Action]), "instruction": _text(2000, 1)},
    optional={"value": _text(10_000), "expected": _text(2000),
              "advanced_selector": _text(1000, 1), "target": _text(2048)},
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=st.lists(_STEP, min_size=1, max_size=3))
@example(steps=[{"action": "click", "instruction": "😀" * 2000}])
@example(steps=[{"action": "fill", "instruction": "😀" * 639, "value": "x"}])
@example(steps=[{"action": "fill", "instruction": ", " * 600, "value": ","}])
@example(steps=[{"action": "click", "instruction": "\x00\ud800 Click 'Save'",
                 "advanced_selector": "#" + "é" * 999}])
def test_a_definition_is_refused_or_its_step_events_fit(steps: list[dict[str, Any]]) -> None:
    data = {"name": "generated", "url": "https://example.test/", "definition": {"steps": steps}}
    try:
        spec = parse_test(data)
    except InvalidDefinition as exc:
        event("refused")
        assert exc.errors and all(loc.startswith(("definition.steps[", "url", "name"))
                                  and msg for loc, msg in exc.errors)
        return
    event("accepted")
    for index, step in enumerate(spec.definition.steps):
        result = worst_result(step, index, repeat=400)
        encoded = encoded_step_event(result)  # raises EventTooLarge as an append would
        assert len(encoded) <= MAX_EVENT_BYTES
        assert b"\\u0000" not in encoded
        # A valid definition loses nothing of its own text to the bounds.
        memory = orjson.loads(encoded)["details"]["memory"]
        assert memory["instruction"] == normalise_instruction(*recall_texts(step))
        assert "skipped" not in memory


@settings(max_examples=300, deadline=None)
@given(instruction=_text(2000, 1), value=st.one_of(st.none(), _text(40), _text(2000)))
def test_the_definition_bound_covers_the_memory_copy(instruction: str, value: str | None
                                                     ) -> None:
    cleaned, clean_value = recordable(instruction), recordable(value) if value else value
    copy = len(orjson.dumps(normalise_instruction(cleaned, clean_value)))
    own = len(orjson.dumps(cleaned))
    assert own + copy <= instruction_bytes(instruction, value)

