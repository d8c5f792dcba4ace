"""The artifact store: screenshots and traces live here, events only hold references.

Content-addressed: an artifact's id is the sha256 of its bytes, so storing the same bytes
twice costs nothing and a reference can be verified. ``ArtifactStore`` is the port; the
filesystem adapter keeps files under ``ARTIFACTS_DIR``; an object store can implement the
same methods later (and ``prune`` with its own listing).

Retention. An artifact stored with an ``owner`` (test, run, when the run started) is listed
in that run's manifest (``runs/<sha256(test)[:32]>/<run>.jsonl``). ``prune`` keeps the
screenshots of the most recent ``screenshot_runs`` runs of each test and traces younger
than ``trace_days``; older runs keep their events and step results, only the files go.
Because identical bytes are stored once, a file is deleted only when no retained run still
lists it. Writers take a shared ``flock`` and ``prune`` an exclusive one, so a file being
stored again by a new run is never deleted under it (processes on one host; for shared or
remote storage use an object store's own lifecycle rules).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import logging
import os
import re
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import orjson

from ledger.errors import LedgerError

log = logging.getLogger(__name__)

_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class ArtifactNotFound(LedgerError):
    """Raised when no artifact with the given id is stored (or it was removed by retention)."""


@dataclass(frozen=True)
class ArtifactRef:
    """What an event carries instead of bytes."""

    id: str
    kind: str  # screenshot | trace
    content_type: str
    size: int
    sha256: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ArtifactOwner:
    """The run an artifact belongs to, for retention."""

    test_id: str
    run_id: str
    started_at: datetime  # timezone-aware


@dataclass(frozen=True)
class RetentionPolicy:
    #: screenshots are kept for this many most recent runs of each test
    screenshot_runs: int = 20
    #: traces are kept this many days
    trace_days: float = 7.0


@dataclass
class RetentionReport:
    runs: int = 0
    runs_trimmed: int = 0
    deleted: int = 0
    bytes_freed: int = 0
    kept_shared: int = 0  # files an expired run listed that a retained run still uses
    skipped_lines: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class StoredFile:
    """Where an artifact's bytes are on local disk, to be streamed (and served by range)
    rather than read whole into memory; ``stat`` was taken when it was found."""

    path: Path
    stat: os.stat_result


class ArtifactStore(Protocol):
    async def put(
        self, data: bytes, *, kind: str, content_type: str, owner: ArtifactOwner | None = None
    ) -> ArtifactRef: ...

    async def get(self, artifact_id: str) -> bytes: ...

    async def open(self, artifact_id: str) -> StoredFile: ...

    async def exists(self, artifact_id: str) -> bool: ...

    async def delete(self, artifact_id: str) -> bool: ...


def _valid_id(artifact_id: str) -> str:
    if not _SHA256.match(artifact_id):
        raise ArtifactNotFound(f"artifact {artifact_id!r} not found: ids are sha256 hex digests")
    return artifact_id


class FileArtifactStore:
    """Files under ``root/ab/<sha256>``; writes are atomic (temporary file, then rename).

    Run manifests live under ``root/runs/``; ``root/runs/.lock`` serialises ``prune`` with
    writers.
    """

    def __init__(self, root: Path) -> None:
        self.root = root

    def path_of(self, artifact_id: str) -> Path:
        artifact_id = _valid_id(artifact_id)
        return self.root / artifact_id[:2] / artifact_id

    async def put(
        self, data: bytes, *, kind: str, content_type: str, owner: ArtifactOwner | None = None
    ) -> ArtifactRef:
        digest = hashlib.sha256(data).hexdigest()
        await asyncio.to_thread(self._put, digest, data, kind, owner)
        return ArtifactRef(digest, kind, content_type, len(data), digest)

    def _put(self, digest: str, data: bytes, kind: str, owner: ArtifactOwner | None) -> None:
        if owner is None and not self._runs.exists():
            # No manifests, so nothing can be pruned: no lock needed.
            self._write(digest, data)
            return
        with self._locked(fcntl.LOCK_SH):
            self._write(digest, data)
            if owner is not None:
                self._list(owner, digest, kind)

    def _write(self, digest: str, data: bytes) -> None:
        path = self.path_of(digest)
        if path.exists():
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def _manifest(self, owner: ArtifactOwner) -> Path:
        test = hashlib.sha256(owner.test_id.encode()).hexdigest()[:32]
        run = re.sub(r"[^A-Za-z0-9_-]", "_", owner.run_id)[:100]
        return self._runs / test / f"{run}.jsonl"

    def _list(self, owner: ArtifactOwner, digest: str, kind: str) -> None:
        path = self._manifest(owner)
        path.parent.mkdir(parents=True, exist_ok=True)
        line = orjson.dumps({
            "test_id": owner.test_id, "run_id": owner.run_id,
            "started_at": owner.started_at.isoformat(), "id": digest, "kind": kind,
        }) + b"\n"
        # One O_APPEND write of a short line: concurrent appends never interleave.
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)

    @property
    def _runs(self) -> Path:
        return self.root / "runs"

    @contextlib.contextmanager
    def _locked(self, mode: int) -> Iterator[None]:
        self._runs.mkdir(parents=True, exist_ok=True)
        fd = os.open(self._runs / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, mode)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    async def get(self, artifact_id: str) -> bytes:
        path = self.path_of(artifact_id)
        try:
            return await asyncio.to_thread(path.read_bytes)
        except FileNotFoundError:
            raise ArtifactNotFound(f"artifact {artifact_id} not found") from None

    async def open(self, artifact_id: str) -> StoredFile:
        """The artifact's file and its size, without reading it; ``ArtifactNotFound`` when
        it is not stored (or retention removed it)."""
        path = self.path_of(artifact_id)
        try:
            return StoredFile(path, await asyncio.to_thread(path.stat))
        except FileNotFoundError:
            raise ArtifactNotFound(f"artifact {artifact_id} not found") from None

    async def exists(self, artifact_id: str) -> bool:
        return await asyncio.to_thread(self.path_of(artifact_id).exists)

    async def delete(self, artifact_id: str) -> bool:
        path = self.path_of(artifact_id)
        try:
            await asyncio.to_thread(path.unlink)
        except FileNotFoundError:
            return False
        return True

    # -- retention --------------------------------------------------------------------------

    async def prune(
        self, policy: RetentionPolicy, *, now: datetime | None = None
    ) -> RetentionReport:
        """Apply ``policy`` to every run listed in a manifest; see the module docstring."""
        return await asyncio.to_thread(self._prune, policy, now or datetime.now(UTC))

    def _prune(self, policy: RetentionPolicy, now: datetime) -> RetentionReport:
        report = RetentionReport()
        with self._locked(fcntl.LOCK_EX):
            runs = self._read_manifests(report)
            report.runs = len(runs)
            expired: set[str] = set()
            retained: set[str] = set()
            trace_cutoff = now - timedelta(days=policy.trace_days)
            for rank, run in _ranked(runs):
                keep = [
                    entry for entry in run.lines
                    if not _expired(entry["kind"], rank, run.started, policy, trace_cutoff)
                ]
                retained.update(entry["id"] for entry in keep)
                if len(keep) == len(run.lines):
                    continue
                expired.update(entry["id"] for entry in run.lines if entry not in keep)
                report.runs_trimmed += 1
                run.rewrite(keep)
            report.kept_shared = len(expired & retained)
            for artifact_id in sorted(expired - retained):
                self._delete_file(artifact_id, report)
        if report.deleted:
            log.info("artifact retention: deleted %d file(s), %d bytes, from %d run(s)",
                     report.deleted, report.bytes_freed, report.runs_trimmed)
        return report

    def _read_manifests(self, report: RetentionReport) -> list[_Manifest]:
        runs: list[_Manifest] = []
        for path in sorted(self._runs.glob("*/*.jsonl")):
            manifest = _Manifest.read(path, report)
            if manifest is not None:
                runs.append(manifest)
        return runs

    def _delete_file(self, artifact_id: str, report: RetentionReport) -> None:
        path = self.path_of(artifact_id)
        try:
            size = path.stat().st_size
            path.unlink()
        except FileNotFoundError:
            return
        report.deleted += 1
        report.bytes_freed += size


@dataclass
class _Manifest:
    """One run's manifest: which files it stored, under which test, when it started."""

    path: Path
    test: str
    started: datetime
    header: dict[str, str]
    lines: list[dict[str, str]]

    @classmethod
    def read(cls, path: Path, report: RetentionReport) -> _Manifest | None:
        header: dict[str, str] = {}
        lines: list[dict[str, str]] = []
        started: datetime | None = None
        for raw in path.read_bytes().splitlines():
            try:
                entry = orjson.loads(raw)
                when = datetime.fromisoformat(entry["started_at"])
                lines.append({"id": _valid_id(entry["id"]), "kind": str(entry["kind"])})
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, ArtifactNotFound):
                # A line torn by a crash mid-write: the file it named may stay orphaned,
                # but nothing still listed elsewhere is ever deleted because of it.
                report.skipped_lines.append(f"{path.name}: {raw[:80]!r}")
                continue
            if started is None:
                started = when
                header = {k: entry[k] for k in ("test_id", "run_id", "started_at") if k in entry}
        if started is None:
            return None
        return cls(path, path.parent.name, started, header, lines)

    def rewrite(self, keep: list[dict[str, str]]) -> None:
        if not keep:
            self.path.unlink(missing_ok=True)
            return
        body = b"".join(orjson.dumps({**self.header, **entry}) + b"\n" for entry in keep)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_bytes(body)
        os.replace(tmp, self.path)


def _ranked(runs: list[_Manifest]) -> Iterator[tuple[int, _Manifest]]:
    """Each run with its rank among its own test's runs (0 = the newest)."""
    by_test: dict[str, list[_Manifest]] = {}
    for run in runs:
        by_test.setdefault(run.test, []).append(run)
    for test_runs in by_test.values():
        test_runs.sort(key=lambda run: run.started, reverse=True)
        yield from enumerate(test_runs)


def _expired(
    kind: str, rank: int, started: datetime, policy: RetentionPolicy, trace_cutoff: datetime
) -> bool:
    if kind == "screenshot":
        return rank >= policy.screenshot_runs
    if kind == "trace":
        return started < trace_cutoff
    return False
