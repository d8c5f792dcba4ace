"""Benchmarks (``runledger bench …``): figures measured against baselines in the same run.

Some benchmarks measure a peer or the machine with packages the runtime does not need
(the ``bench`` extra). ``missing_extra`` says so before a benchmark starts, instead of an
``ImportError`` halfway through it.
"""

from __future__ import annotations

import importlib.util

EXTRA_HINT = "pip install 'runledger[bench]' (or: uv sync --extra bench)"

# Benchmark → the dev-only packages it imports (the peer's driver, arq, process metrics).
NEEDS: dict[str, tuple[str, ...]] = {
    "append": ("psycopg",),
    "rebuild": ("psycopg",),
    "queue": ("arq",),
    "executor": ("psutil",),
    "relay": (),
    "tail": (),
    "resolve": (),
    "load": (),
}


def missing_extra(name: str) -> str | None:
    """A one-line message naming the extra to install, or ``None`` when nothing is missing."""
    missing = [package for package in NEEDS[name] if importlib.util.find_spec(package) is None]
    if not missing:
        return None
    return (f"runledger bench {name} needs {', '.join(missing)} from the 'bench' extra: "
            f"{EXTRA_HINT}")
