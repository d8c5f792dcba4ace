"""Read models never receive what PostgreSQL refuses: NUL and lone surrogates in text and
jsonb become U+FFFD, durations fit a bigint. Unit tests of the helpers, then each model's
``apply`` fed such events directly (the log itself cannot even store a lone surrogate)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg
import orjson
import pytest

from ledger.codec import RecordedEvent
from projections import locator_memory, runs, sanitize, steps

R = "\ufffd"
NASTY = "a\x00b\ud800c"


@pytest.mark.unit
def test_text_replaces_nul_and_lone_surrogates_and_leaves_the_rest() -> None:
    assert sanitize.text("plain") == "plain"
    assert sanitize.text("caf\u00e9 \U0001f600") == "caf\u00e9 \U0001f600"
    assert sanitize.text(NASTY) == f"a{R}b{R}c"
    assert sanitize.text("\x00") == R
    assert sanitize.text_column(["ok", None, NASTY]) == ["ok", None, f"a{R}b{R}c"]
    clean = ["ok", None]
    assert sanitize.text_column(clean) is clean


@pytest.mark.unit
def test_json_text_is_acceptable_to_jsonb_recursively() -> None:
    value = {"k\x00": [NASTY, {"deep": "x\x00"}], "n": 1, "ok": None}
    assert orjson.loads(sanitize.json_text(value)) == {
        f"k{R}": [f"a{R}b{R}c", {"deep": f"x{R}"}], "n": 1, "ok": None}
    assert sanitize.json_column(['{"a":"x\\u0000"}', "[]"]) == [f'{{"a":"x{R}"}}', "[]"]


@pytest.mark.unit
def test_bigint_clamps() -> None:
    assert sanitize.bigint(None) is None
    assert sanitize.bigint(5) == 5
    assert sanitize.bigint(2**70) == sanitize.BIGINT_MAX
    assert sanitize.bigint(-(2**70)) == sanitize.BIGINT_MIN
    assert sanitize.bigint_column([1, None, 2**64]) == [1, None, sanitize.BIGINT_MAX]


def event(run_id: uuid.UUID, version: int, type_: str, data: dict[str, Any]) -> RecordedEvent:
    return RecordedEvent(version, run_id, version, type_,
                         datetime(2026, 1, 1, tzinfo=UTC).isoformat(), data)


@pytest.mark.integration
async def test_every_model_writes_sanitised_rows(pool: asyncpg.Pool) -> None:
    run_id = uuid.uuid4()
    key = "k" * 64
    events = [
        event(run_id, 1, "queued", {"test_id": NASTY, "test_name": NASTY, "attempt": 1}),
        event(run_id, 2, "started", {"worker": NASTY, "attempt": 1, "browser": {}}),
        event(run_id, 3, "step", {
            "index": 0, "action": "click", "instruction": NASTY, "status": "passed",
            "strategy": "dom", "healed": False, "duration_ms": 2**65, "attempts": 1,
            "url": "http://x/\x00", "error": NASTY, "artifacts": [{"id": NASTY}],
            "details": {"locator": "#b\x00", NASTY: NASTY,
                        "memory": {"key": key, "instruction": NASTY, "result": "none"},
                        "fingerprint": {"id": NASTY}},
        }),
        event(run_id, 4, "completed", {"status": "passed", "error": NASTY,
                                       "duration_ms": 2**70}),
    ]
    async with pool.acquire() as conn, conn.transaction():
        for model in (runs, steps, locator_memory):
            await model.apply(conn, events)
    clean = f"a{R}b{R}c"
    row = await pool.fetchrow("SELECT * FROM runs WHERE id = $1", run_id)
    assert (row["test_id"], row["worker"], row["error"]) == (clean, clean, clean)
    assert row["duration_ms"] == sanitize.BIGINT_MAX
    step = await pool.fetchrow("SELECT * FROM run_steps WHERE run_id = $1", run_id)
    assert (step["instruction"], step["url"], step["error"]) == (clean, f"http://x/{R}", clean)
    assert step["duration_ms"] == sanitize.BIGINT_MAX
    assert step["artifacts"] == [{"id": clean}]
    assert step["details"]["locator"] == f"#b{R}" and step["details"][clean] == clean
    memory = await pool.fetchrow("SELECT * FROM locator_memory WHERE key = $1", key)
    assert memory["locator"] == f"#b{R}" and memory["fingerprint"] == {"id": clean}
