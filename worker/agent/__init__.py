"""The Playwright ``AgentExecutor``: runs test steps in Chromium, resolving each step's
target through a self-healing locator ladder, with artifacts and locator memory.

``build_executor(settings, pool)`` is what the worker's entry point calls; ``settings`` is
any object carrying the ``ExecutorConfig`` attributes (missing ones take their defaults).
"""

from __future__ import annotations

from typing import Any

import asyncpg

from worker.agent.executor import AgentExecutor
from worker.agent.settings import ExecutorConfig, ExecutorSettings


def build_executor(settings: Any, pool: asyncpg.Pool | None) -> AgentExecutor:
    """The production executor: file artifacts under ``ARTIFACTS_DIR``, locator memory read
    from ``pool`` (none without a pool), the LLM plug-in when ``LLM_*`` is configured."""
    from ledger.artifacts import FileArtifactStore
    from projections.locator_memory import PgLocatorMemory
    from worker.agent.llm import OpenAICompatibleAdvisor

    config = ExecutorConfig.from_settings(settings)
    advisor = None
    if config.llm_enabled:
        assert config.llm_base_url and config.llm_model
        advisor = OpenAICompatibleAdvisor(
            base_url=config.llm_base_url, model=config.llm_model,
            api_key=config.llm_api_key.get_secret_value() if config.llm_api_key else None,
            timeout=config.llm_timeout_seconds,
        )
    return AgentExecutor(
        config,
        artifacts=FileArtifactStore(config.artifacts_dir),
        memory=PgLocatorMemory(pool) if pool is not None else None,
        advisor=advisor,
    )


__all__ = ["AgentExecutor", "ExecutorConfig", "ExecutorSettings", "build_executor"]
