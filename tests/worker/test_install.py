"""Getting a browser on a first run: what is tried, how progress shows, and that nothing is
installed when auto-install is off (tests and CI never install anything)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from worker.agent import install
from worker.agent.install import Installer, find_or_install, installers


@pytest.mark.unit
def test_playwright_is_the_last_resort() -> None:
    found = installers()
    assert found[-1].argv[1:] == ["-m", "playwright", "install", "chromium"]
    for installer in found[:-1]:
        assert installer.argv[:2] == ["apt-get", "install"]


@pytest.mark.integration
def test_an_installer_shows_each_line_and_reports_failure() -> None:
    script = "import sys; print('fetching 10%\\rfetching 90%'); print('done'); sys.exit(3)"
    lines: list[str] = []
    ok = install._run(Installer("fake", [sys.executable, "-c", script], {}), lines.append)
    assert not ok
    # each frame of a redrawn progress bar is shown
    assert lines == ["fake: fetching 10%", "fake: fetching 90%", "fake: done"]


@pytest.mark.integration
async def test_without_auto_install_a_missing_browser_stays_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*_: object) -> None:
        raise AssertionError("an installer ran")

    monkeypatch.setattr(install, "install_with_display", refuse)
    assert await find_or_install(str(tmp_path / "none"), auto_install=False) is None
    assert await find_or_install(str(tmp_path / "none"), auto_install=True) is None  # set path
