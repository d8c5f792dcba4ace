"""The runtime wheel works without the development packages: every product module imports
with them blocked, and ``runledger bench`` names the extra instead of failing on an import."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]

# Installed by `uv sync` (the dev group and the bench extra), absent from a runtime install.
DEV_ONLY = ("psutil", "psycopg", "psycopg_pool", "arq", "hypothesis", "pytest", "_pytest",
            "schemathesis", "ruff", "mypy")

# None in sys.modules is how Python spells "not installed": import raises ImportError and
# importlib.util.find_spec answers None, exactly as on a runtime-only install.
BLOCK = f"import sys\nfor name in {DEV_ONLY!r}:\n    sys.modules[name] = None\n"

IMPORT_ALL = BLOCK + textwrap.dedent("""
    import importlib, pkgutil
    failed = []
    for package in ("ledger", "projections", "worker", "api", "runledger"):
        root = importlib.import_module(package)
        for module in pkgutil.walk_packages(root.__path__, package + "."):
            name = module.name
            if name.startswith("runledger.bench.") or name.endswith(".__main__"):
                continue
            try:
                importlib.import_module(name)
            except ImportError as exc:
                failed.append(f"{name}: {exc}")
    print("\\n".join(failed))
    sys.exit(1 if failed else 0)
""")


def _python(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          timeout=120, check=False)


def test_every_runtime_module_imports_without_dev_packages() -> None:
    result = _python(IMPORT_ALL)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(("bench", "package"), [
    ("append", "psycopg"), ("rebuild", "psycopg"), ("queue", "arq"), ("executor", "psutil"),
])
def test_a_benchmark_without_its_extra_names_it_and_exits_2(bench: str, package: str) -> None:
    run_cli = BLOCK + "from runledger.cli import app\napp(sys.argv[1:])\n"
    result = _python(run_cli, "bench", bench)
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert package in lines[0] and "runledger[bench]" in lines[0]


def test_the_dev_group_installs_the_bench_extra() -> None:
    # `uv run pytest` must have every package the benchmarks need, at the same ranges.
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    bench = set(project["project"]["optional-dependencies"]["bench"])
    assert bench <= set(project["dependency-groups"]["dev"])
    assert not bench & set(project["project"]["dependencies"])
