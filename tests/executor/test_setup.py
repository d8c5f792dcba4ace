"""Configuration and finding a browser: what an operator gets wrong first."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from ledger.errors import ConfigurationError
from ledger.settings import load_settings
from worker.agent import AgentExecutor, ExecutorConfig, ExecutorSettings, build_executor
from worker.agent import browser as browser_module
from worker.agent.browser import ChromiumHost, find_chromium
from worker.agent.llm import OpenAICompatibleAdvisor
from worker.errors import BrowserUnavailable


@pytest.mark.unit
def test_any_settings_object_configures_the_executor() -> None:
    worker_settings = SimpleNamespace(step_timeout_seconds=12.0, run_timeout_seconds=90.0,
                                      database_url="postgresql://x@y/z")
    config = ExecutorConfig.from_settings(worker_settings)
    assert (config.step_timeout_seconds, config.run_timeout_seconds) == (12.0, 90.0)
    assert (config.screenshots, config.browser_max_runs, config.healing) == ("all", 50, "normal")


@pytest.mark.unit
def test_settings_come_from_the_environment_and_name_bad_variables(
    monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCREENSHOTS", "failures")
    monkeypatch.setenv("BROWSER_MAX_RUNS", "7")
    settings = load_settings(ExecutorSettings)
    assert (settings.screenshots, settings.browser_max_runs) == ("failures", 7)
    monkeypatch.setenv("SCREENSHOTS", "sometimes")
    with pytest.raises(ConfigurationError, match="SCREENSHOTS"):
        load_settings(ExecutorSettings)


@pytest.mark.unit
def test_the_llm_needs_a_model(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="LLM_MODEL"):
        ExecutorConfig(llm_base_url="http://127.0.0.1:1/v1")
    assert not ExecutorConfig().llm_enabled


@pytest.mark.unit
def test_build_executor_wires_the_llm_only_when_configured(tmp_path: Path) -> None:
    plain = build_executor(SimpleNamespace(artifacts_dir=tmp_path), None)
    assert isinstance(plain, AgentExecutor) and plain._advisor is None
    with_llm = build_executor(SimpleNamespace(
        artifacts_dir=tmp_path, llm_base_url="http://127.0.0.1:1/v1", llm_model="m"), None)
    assert isinstance(with_llm._advisor, OpenAICompatibleAdvisor)


@pytest.mark.unit
def test_a_bad_chromium_path_says_how_to_install_one(tmp_path: Path) -> None:
    with pytest.raises(BrowserUnavailable) as caught:
        find_chromium(str(tmp_path / "nope"))
    assert "CHROMIUM_PATH" in str(caught.value) and "apt-get install" in str(caught.value)
    assert "playwright install chromium" in str(caught.value)


@pytest.mark.unit
def test_no_chromium_anywhere(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(browser_module, "_SYSTEM", (("chromium", str(tmp_path / "none")),))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(BrowserUnavailable, match="no Chromium found"):
        find_chromium(None, managed=str(tmp_path / "managed"))


@pytest.mark.unit
def test_the_system_headless_shell_binary_is_preferred_over_its_wrapper() -> None:
    found = find_chromium(None)
    assert found.name in ("chromium-headless-shell", "chromium", "chrome")
    assert found.read_bytes()[:4] == b"\x7fELF"  # the binary itself, not a shell script


@pytest.mark.integration
async def test_a_binary_that_is_not_a_browser_fails_open_clearly() -> None:
    host = ChromiumHost(ExecutorConfig(chromium_path="/bin/true"))
    with pytest.raises(BrowserUnavailable, match="could not launch /bin/true"):
        await host.open()
    assert host._playwright is None  # nothing left running
