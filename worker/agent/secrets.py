"""Secrets: typed by the worker, recorded nowhere.

A test refers to a secret as ``{{secrets.NAME}}`` (``ledger.secret_refs``) in a step's value,
its URL or a navigate target; the API stores and relays the reference as written. Only here,
at the moment of typing or navigating, does it become the value — from a
``RUNLEDGER_SECRET_<NAME>`` environment variable or the dotenv file ``SECRETS_FILE``, read
once by the entry point's settings (``load_secrets``).

``RunSecrets`` is one run's view: it reveals references for the browser and remembers every
value it revealed, plus values typed into password fields without a reference, so that
everything the run records — step URLs, errors, details, log lines, prompts to the LLM
plug-in — goes through ``redact`` first and carries the reference (or ``***``) instead.
Traces record typed values in their DOM snapshots, so a run that uses secrets records none.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote, quote_plus

from pydantic import SecretStr

from ledger import secret_refs
from worker.agent.errors import UnknownSecret
from worker.agent.llm import Advice, AdviceRequest, LocatorAdvisor

ENV_PREFIX = "RUNLEDGER_SECRET_"
MASK = "***"
#: the fewest first characters of a value, cut short, that are still redacted
MIN_CUT_CHARS = 4
T = TypeVar("T")


class SecretsFileError(ValueError):
    """Raised at start-up when ``SECRETS_FILE`` cannot be used (missing, readable by others,
    malformed); the message names the variable."""


def load_secrets(environ: Mapping[str, str], secrets_file: Path | None) -> dict[str, SecretStr]:
    """Every secret this worker can type: ``SECRETS_FILE``'s, then the environment's
    ``RUNLEDGER_SECRET_<NAME>`` (which win). Names are upper case."""
    found: dict[str, SecretStr] = {}
    if secrets_file is not None:
        found.update(_read_file(secrets_file))
    for key, value in environ.items():
        if key.upper().startswith(ENV_PREFIX) and len(key) > len(ENV_PREFIX):
            found[key[len(ENV_PREFIX):].upper()] = SecretStr(value)
    return found


def _read_file(path: Path) -> dict[str, SecretStr]:
    from dotenv import dotenv_values

    try:
        info = path.stat()
    except OSError as exc:
        raise SecretsFileError(f"SECRETS_FILE={path} cannot be read: {exc.strerror}") from None
    if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise SecretsFileError(
            f"SECRETS_FILE={path} is readable by others (mode {stat.S_IMODE(info.st_mode):04o}); "
            "only its owner may read it: chmod 600 it")
    if info.st_uid != os.geteuid():
        raise SecretsFileError(f"SECRETS_FILE={path} belongs to another user (uid "
                               f"{info.st_uid}); it must belong to the worker's user")
    values = dotenv_values(path)
    secrets: dict[str, SecretStr] = {}
    for key, value in values.items():
        name = key.upper().removeprefix(ENV_PREFIX)
        if not secret_refs.REFERENCE.fullmatch(secret_refs.reference(name)):
            raise SecretsFileError(f"SECRETS_FILE={path}: {key!r} is not a valid secret name "
                                   "(letters, digits and underscores)")
        secrets[name] = SecretStr(value or "")
    return secrets


class RunSecrets:
    """One run's secrets: revealed for the browser, redacted from everything recorded."""

    def __init__(self, values: Mapping[str, SecretStr]) -> None:
        self._values = values
        # value as it may appear (raw, URL-encoded, repr-escaped) -> what is shown instead
        self._masks: dict[str, str] = {}
        # value -> its first characters where a cut text ends, and what is shown instead
        self._cuts: dict[str, tuple[re.Pattern[str], str]] = {}
        self.used: list[str] = []

    @staticmethod
    def referenced(*texts: str | None) -> list[str]:
        """The secrets ``texts`` refer to."""
        found: list[str] = []
        for text in texts:
            found += [n for n in secret_refs.names(text) if n not in found]
        return found

    def reveal(self, text: str, *, url: bool = False) -> str:
        """``text`` with its references replaced by their values; ``UnknownSecret`` naming
        the first one this worker lacks (nothing is typed then).

        In a ``url`` each value is percent-encoded whole: a raw ``&``, ``#`` or ``+`` would
        change what the server reads, and Chromium re-encodes a raw value its own way (``@``
        kept, a space as ``%20``), a spelling ``redact`` would not recognise in the page's
        URL."""
        for name in secret_refs.names(text):
            if name not in self._values:
                raise UnknownSecret(
                    f"unknown secret {secret_refs.reference(name)}: set "
                    f"{ENV_PREFIX}{name} or add {name} to SECRETS_FILE on the worker",
                    details={"secret": name})
        for name in secret_refs.names(text):
            self._mask(self._values[name].get_secret_value(), secret_refs.reference(name))
            if name not in self.used:
                self.used.append(name)
        def value_of(name: str) -> str:
            value = self._values[name].get_secret_value()
            return quote(value, safe="") if url else value

        return secret_refs.substitute(text, value_of)

    def mask(self, value: str) -> None:
        """Show ``value`` (typed without a reference) as ``***`` from now on."""
        self._mask(value, MASK)

    def _mask(self, value: str, shown: str) -> None:
        if not value:
            return
        for variant in (value, quote(value, safe=""), quote(value), quote_plus(value),
                        repr(value)[1:-1]):
            self._masks.setdefault(variant, shown)
        if len(value) > MIN_CUT_CHARS and value not in self._cuts:
            # What the run records is often cut short (a quoted line at 200 characters, a
            # label at 80): a value cut there leaves its first characters, just before the
            # end of the text or the quote closing it.
            prefixes = (re.escape(value[:n]) for n in range(len(value) - 1, MIN_CUT_CHARS - 1, -1))
            self._cuts[value] = (re.compile(f"(?:{'|'.join(prefixes)})(?=$|['\"…])"), shown)

    @property
    def active(self) -> bool:
        """Whether anything must be redacted (a secret revealed, a password masked)."""
        return bool(self._masks)

    @property
    def values(self) -> list[str]:
        return list(self._masks)

    def redact(self, value: T) -> T:
        """``value`` (text, or dicts/lists/tuples of them) with every revealed value shown
        as its reference, longest first (a value containing another is replaced whole)."""
        if not self._masks:
            return value
        return self._redact(value)

    def _redact(self, value: Any) -> Any:
        if isinstance(value, str):
            for secret in sorted(self._masks, key=len, reverse=True):
                if secret in value:
                    value = value.replace(secret, self._masks[secret])
            for pattern, shown in self._cuts.values():
                value = pattern.sub(shown, value)
            return value
        if isinstance(value, dict):
            return {self._redact(k): self._redact(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return type(value)(self._redact(item) for item in value)
        return value


class RedactingAdvisor:
    """The LLM plug-in, seeing the run's secrets as their references (an ARIA snapshot shows
    what was typed into text boxes)."""

    def __init__(self, advisor: LocatorAdvisor, secrets: RunSecrets) -> None:
        self._advisor = advisor
        self._secrets = secrets

    async def open(self) -> None:  # the executor opens and closes the advisor it wraps
        pass

    async def close(self) -> None:
        pass

    async def advise(self, request: AdviceRequest) -> Advice | None:
        redact = self._secrets.redact
        return await self._advisor.advise(replace(
            request, instruction=redact(request.instruction), target=redact(request.target),
            snapshot=redact(request.snapshot), candidates=redact(request.candidates)))
