"""``docs/configuration.md`` and ``.env.example`` are generated from the settings classes:
a stale copy, an undocumented settings class or a field without a description fails here."""

from __future__ import annotations

import importlib
import pkgutil
import re
from pathlib import Path

import pytest

from ledger.settings import Settings
from runledger import config_docs

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
# Product packages whose modules may declare settings (the benchmarks need dev-only extras).
PACKAGES = ("ledger", "projections", "worker", "api", "runledger")


@pytest.mark.parametrize(("path", "generate", "command"), [
    ("docs/configuration.md", config_docs.markdown,
     "uv run runledger config --markdown > docs/configuration.md"),
    (".env.example", config_docs.env_example, "uv run runledger config --env > .env.example"),
])
def test_committed_file_matches_the_settings_classes(path, generate, command) -> None:
    committed = (ROOT / path).read_text(encoding="utf-8")
    assert committed == generate(), f"{path} is stale; regenerate it with: {command}"


def _settings_classes() -> set[type[Settings]]:
    for package in PACKAGES:
        root = importlib.import_module(package)
        for module in pkgutil.walk_packages(root.__path__, f"{package}."):
            # __main__ modules run their command when imported; benchmarks need extras.
            if not (module.name.endswith(".__main__")
                    or module.name.startswith("runledger.bench.")):
                importlib.import_module(module.name)
    found: set[type[Settings]] = set()
    pending = [Settings]
    while pending:
        for sub in pending.pop().__subclasses__():
            if sub.__module__.split(".")[0] in PACKAGES and sub not in found:
                found.add(sub)
                pending.append(sub)
    return found


def test_every_settings_class_is_documented() -> None:
    documented = {component.settings_class() for component in config_docs.COMPONENTS}
    missing = sorted(f"{cls.__module__}:{cls.__name__}"
                     for cls in _settings_classes() - documented)
    assert not missing, f"add these to runledger/config_docs.py COMPONENTS: {missing}"


def test_every_setting_has_a_description() -> None:
    missing = [f"{component.target}.{name}"
               for component in config_docs.COMPONENTS
               for name, info in config_docs.own_fields(component).items()
               if not info.description]
    assert not missing, f"give these fields a Field(description=...): {missing}"


def test_env_example_names_each_variable_once() -> None:
    names = re.findall(r"^(?:# )?([A-Z][A-Z0-9_]*)=", config_docs.env_example(), re.MULTILINE)
    assert len(names) == len(set(names)), names
