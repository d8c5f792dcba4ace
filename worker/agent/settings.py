"""The executor's settings.

``ExecutorConfig`` is the plain value the executor runs with; ``ExecutorSettings`` is the same
fields read from the environment by an entry point (``load_settings(ExecutorSettings)``).
``build_executor`` accepts any object carrying these attributes — the worker's own settings
included — and takes the defaults below for the ones it lacks, without reading the
environment itself.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from ledger.navigation import NavigationConfig
from ledger.settings import Settings

Positive = Annotated[float, Field(gt=0)]


class ExecutorConfig(NavigationConfig):
    """Everything the Playwright executor is configured with."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    chromium_path: str | None = Field(
        None,
        description="A Chromium or headless-shell binary; unset, the system's "
        "`chromium-headless-shell` / `chromium`, else Playwright's own browser.",
    )
    browser_auto_install: bool = Field(
        True,
        description="When no Chromium is found, `runledger dev` and `worker` install one "
        "(as root on Debian/Ubuntu `apt-get install chromium-headless-shell`, else "
        "`playwright install chromium`); `false` for tests and CI: they only wait for one.",
    )
    browser_recheck_seconds: Positive = Field(
        5.0, description="Seconds between looks for a browser while a worker has none.")
    browser_max_runs: Annotated[int, Field(ge=1)] = Field(
        50, description="Runs per browser before it is replaced by a fresh one."
    )
    step_timeout_seconds: Positive = Field(30.0, description="Seconds one step may take.")
    run_timeout_seconds: Positive = Field(300.0, description="Seconds a whole run may take.")
    verify_timeout_seconds: Positive = Field(
        5.0,
        description="Seconds a `verify` / `assert_url` step waits for its condition, within "
        "the step's own budget.",
    )
    screenshots: Literal["all", "failures", "off"] = Field(
        "all", description="A screenshot after every step, after failing steps only, or none."
    )
    traces: Literal["all", "failures", "off"] = Field(
        "all",
        description="The Playwright trace of a run: kept always, kept for failed runs only, "
        "or not recorded.",
    )
    healing: Literal["normal", "strict"] = Field(
        "normal",
        description="`strict` fails a step instead of healing a stale selector or remembered "
        "locator.",
    )
    artifacts_dir: Path = Field(
        Path(".runledger/artifacts"),
        description="Root of the content-addressed screenshot and trace files (the API "
        "serves them from its own ARTIFACTS_DIR: point both at the same place).",
    )
    screenshot_retention_runs: Annotated[int, Field(ge=1)] = Field(
        20, description="Screenshots are kept for this many most recent runs of each test."
    )
    trace_retention_days: Positive = Field(7.0, description="Days a run's trace is kept.")
    retention_interval_seconds: Annotated[float, Field(ge=0)] = Field(
        300.0,
        description="Retention of old screenshots and traces runs after a run, at most once "
        "per this many seconds.",
    )
    llm_base_url: str | None = Field(
        None,
        description="An OpenAI-compatible endpoint (`https://host/v1`) for the last rung of "
        "the locator ladder; the LLM rung is off without it.",
    )
    llm_api_key: SecretStr | None = Field(
        None, description="Key sent to LLM_BASE_URL as a bearer token."
    )
    llm_model: str | None = Field(
        None, description="Model name asked at LLM_BASE_URL; required when it is set."
    )
    llm_timeout_seconds: Positive = Field(
        20.0, description="Seconds one request to the LLM endpoint may take."
    )
    secrets_file: Path | None = Field(
        None,
        description="A dotenv file of `NAME=value` secrets that steps refer to as "
        "`{{secrets.NAME}}` (only its owner may read it); `RUNLEDGER_SECRET_<NAME>` "
        "environment variables add to it and win.",
    )
    chromium_sandbox: Literal["auto", "on", "off"] = Field(
        "auto",
        description="Chromium's sandbox: `auto` uses it when the worker is not root and the "
        "kernel allows it (and logs which it chose); `on` refuses to start without it; "
        "`off` never uses it.",
    )
    #: the secrets themselves, collected by ``ExecutorSettings`` (never documented or logged)
    secret_values: dict[str, SecretStr] = Field(default_factory=dict, exclude=True, repr=False)

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

    # The values both bases set, restated so that the class has one config type: mypy
    # rejects inheriting BaseSettings' SettingsConfigDict and BaseModel's ConfigDict at once.
    model_config = SettingsConfigDict(frozen=True, extra="ignore")

    @model_validator(mode="before")
    @classmethod
    def _collect_secrets(cls, data: Any) -> Any:
        # The entry point's settings are the one place that reads the environment: the
        # secrets are variables too, just with names no field can declare in advance.
        from worker.agent.secrets import load_secrets

        if isinstance(data, dict):
            path = data.get("secrets_file")
            data = {**data, "secret_values": load_secrets(
                os.environ, Path(path) if path else None)}
        return data
