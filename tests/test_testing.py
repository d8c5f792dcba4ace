"""The shared testing module (``runledger.testing``) that tests and benchmarks both use."""

from __future__ import annotations

import itertools
from pathlib import Path

import httpx
import pytest

from runledger.testing import local_site, wait_until


@pytest.mark.unit
async def test_wait_until_returns_the_first_truthy_value() -> None:
    counter = itertools.count()

    async def third() -> int | None:
        value = next(counter)
        return value if value >= 3 else None

    assert await wait_until(third, interval=0) == 3


@pytest.mark.unit
async def test_wait_until_names_what_it_waited_for() -> None:
    async def never() -> bool:
        return False

    with pytest.raises(AssertionError, match=r"timed out after 0.05s waiting for the moon"):
        await wait_until(never, within=0.05, interval=0.01, what="the moon")


@pytest.mark.integration
async def test_local_site_serves_files_and_renders_pages(tmp_path: Path) -> None:
    (tmp_path / "page.html").write_text("<p>{{X}}</p>")
    (tmp_path / "data.txt").write_text("{{X}}")
    with local_site(tmp_path, render=lambda page: page.replace("{{X}}", "rendered")) as url:
        async with httpx.AsyncClient(base_url=url) as http:
            page, data = await http.get("/page.html"), await http.get("/data.txt")
    assert page.text == "<p>rendered</p>"
    assert page.headers["content-type"].startswith("text/html")
    assert data.text == "{{X}}"  # only pages are rendered
    with local_site(tmp_path) as url, httpx.Client(base_url=url) as http:
        assert http.get("/page.html").text == "<p>{{X}}</p>"
