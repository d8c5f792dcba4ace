"""Test definitions from files: JSON or YAML, one test or several per file, folders walked.

A file holds one test (an object), a list of tests, or — YAML — several documents, each a
test or a list. A folder contributes every ``*.json``, ``*.yaml`` and ``*.yml`` below it, in
path order. Each test is validated here, with the API's own rules (``ledger.definition``),
so a mistake is reported before anything is sent, naming the file, the test and the field.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import yaml

from ledger.definition import TestSpec, parse_test
from ledger.errors import InvalidDefinition

SUFFIXES = (".json", ".yaml", ".yml")


class DefinitionFileError(Exception):
    """A path or a definition in it cannot be used; the message names which and why."""


@dataclass(frozen=True)
class Definition:
    """One test as found in a file."""

    spec: TestSpec
    source: Path

    @property
    def name(self) -> str:
        return self.spec.name


def definition_files(paths: list[Path]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.suffix in SUFFIXES and p.is_file())
            if not found:
                raise DefinitionFileError(f"{path}: no *.json, *.yaml or *.yml files in it")
            files += found
        elif path.is_file():
            files.append(path)
        else:
            raise DefinitionFileError(f"{path}: no such file or folder")
    return files


def load_definitions(paths: list[Path]) -> list[Definition]:
    """Every test in ``paths``; ``DefinitionFileError`` on the first problem, and when two
    tests share a name (a name is how a test is found again)."""
    found: list[Definition] = []
    seen: dict[str, Path] = {}
    for path in definition_files(paths):
        for index, raw in enumerate(_documents(path)):
            where = f"{path} (test {index + 1})"
            if not isinstance(raw, dict):
                raise DefinitionFileError(f"{where}: a test is an object with name, url and "
                                          f"definition, got {type(raw).__name__}")
            try:
                spec = parse_test(raw)
            except InvalidDefinition as exc:
                raise DefinitionFileError(f"{where}: {exc}") from None
            if spec.name in seen:
                raise DefinitionFileError(f"{where}: the name {spec.name!r} is also used in "
                                          f"{seen[spec.name]}; test names must be unique")
            seen[spec.name] = path
            found.append(Definition(spec, path))
    if not found:
        raise DefinitionFileError("no tests in " + ", ".join(map(str, paths)))
    return found


def _documents(path: Path) -> list[Any]:
    try:
        text = path.read_bytes()
    except OSError as exc:
        raise DefinitionFileError(f"{path}: {exc.strerror}") from None
    try:
        if path.suffix == ".json":
            documents = [orjson.loads(text)]
        else:
            documents = [d for d in yaml.safe_load_all(text) if d is not None]
    except (orjson.JSONDecodeError, yaml.YAMLError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DefinitionFileError(f"{path}: not valid {path.suffix[1:].upper()}: {first}"
                                  ) from None
    tests: list[Any] = []
    for document in documents:
        tests += document if isinstance(document, list) else [document]
    return tests

