"""``worker.agent.untraced``: the executor's own looking stays out of a run's trace, what
the test does stays in, and without Playwright's private zone everything is traced."""

from __future__ import annotations

import zipfile
from pathlib import Path

import orjson
import pytest

from worker.agent import untraced as module
from worker.agent.browser import ChromiumHost
from worker.agent.untraced import traced, untraced

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]


async def _recorded(host: ChromiumHost, site: str, tmp_path: Path) -> list[str]:
    """The methods a trace records for: an evaluate and a count inside ``untraced``, a click
    inside ``traced`` within it, and an evaluate outside both."""
    async with host.context() as (context, _):
        await context.tracing.start(snapshots=True)
        page = await context.new_page()
        await page.goto(f"{site}/todo.html")

        async def look() -> None:
            assert await page.evaluate("6 * 7") == 42
            assert await page.locator("button").count() > 0
            await traced(lambda: page.get_by_role("button").first.click())

        await untraced(look)
        assert await page.evaluate("1 + 1") == 2
        path = tmp_path / "trace.zip"
        await context.tracing.stop(path=path)
    with zipfile.ZipFile(path) as archive:
        lines = archive.read("trace.trace").decode().splitlines()
    return [orjson.loads(line)["method"] for line in lines
            if line.startswith('{"type":"before"')]


async def test_untraced_calls_are_left_out_and_traced_ones_kept(
    host: ChromiumHost, site: str, tmp_path: Path
) -> None:
    methods = await _recorded(host, site, tmp_path)
    assert methods.count("evaluateExpression") == 1, methods  # the one outside
    assert "queryCount" not in methods and "click" in methods, methods


async def test_without_the_private_zone_everything_is_traced(
    host: ChromiumHost, site: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(module, "_ApiZone", None)
    methods = await _recorded(host, site, tmp_path)
    assert methods.count("evaluateExpression") == 2 and "queryCount" in methods, methods
