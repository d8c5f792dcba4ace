"""The executor's settings.

``ExecutorConfig`` is the plain value the executor runs with; ``ExecutorSettings`` is the same
fields read from the environment by an entry point (``load_settings(ExecutorSettings)``).
``build_executor`` accepts any object carrying these attributes — the worker's own settings
included — and takes the defaults below for the ones it lacks, without reading the
environment itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from ledger.settings import Settings

Positive = Annotated[float, Field(gt=0)]


class ExecutorConfig(BaseModel):
    """Everything the Playwright executor is configured with (defaults in brackets)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    #: a Chromium (or headless shell) binary; else the system's, else Playwright's [search]
    chromium_path: str | None = None
    #: runs per browser before it is replaced by a fresh one [50]
    browser_max_runs: Annotated[int, Field(ge=1)] = 50
    #: one step's time budget [30]
    step_timeout_seconds: Positive = 30.0
    #: a whole run's time budget [300]
    run_timeout_seconds: Positive = 300.0
    #: how long a ``verify`` / ``assert_url`` waits for its condition, within the step's [5]
    verify_timeout_seconds: Positive = 5.0
    #: a screenshot after every step, after failing steps only, or none [all]
    screenshots: Literal["all", "failures", "off"] = "all"
    #: the Playwright trace of a run: always kept, kept for failed runs, or not recorded [all]
    traces: Literal["all", "failures", "off"] = "all"
    #: ``strict`` fails a step instead of healing a stale selector or remembered locator
    healing: Literal["normal", "strict"] = "normal"
    #: root of the content-addressed artifact files [.runledger/artifacts]
    artifacts_dir: Path = Path(".runledger/artifacts")
    #: screenshots are kept for this many most recent runs of each test [20]
    screenshot_retention_runs: Annotated[int, Field(ge=1)] = 20
    #: traces are kept this many days [7]
    trace_retention_days: Positive = 7.0
    #: retention runs after a run at most this often [300]
    retention_interval_seconds: Annotated[float, Field(ge=0)] = 300.0
    #: an OpenAI-compatible endpoint (``https://host/v1``); the LLM rung is off without it
    llm_base_url: str | None = None
    llm_api_key: SecretStr | None = None
    llm_model: str | None = None
    llm_timeout_seconds: Positive = 20.0

    @model_validator(mode="after")
    def _llm_complete(self) -> ExecutorConfig:
        if self.llm_base_url and not self.llm_model:
            raise ValueError("LLM_MODEL is required when LLM_BASE_URL is set")
        return self

    @property
    def llm_enabled(self) -> bool:
        return bool(self.llm_base_url and self.llm_model)

    @classmethod
    def from_settings(cls, settings: Any) -> ExecutorConfig:
        """The config carried by ``settings`` (any object; missing attributes → defaults)."""
        if isinstance(settings, cls):
            return settings
        return cls.model_validate(settings, from_attributes=True)


class ExecutorSettings(Settings, ExecutorConfig):
    """``ExecutorConfig`` read from the environment / ``.env`` (``CHROMIUM_PATH`` …)."""
