"""The artifact store: screenshots and traces live here, events only hold references.

Content-addressed: an artifact's id is the sha256 of its bytes, so storing the same bytes
twice costs nothing and a reference can be verified. ``ArtifactStore`` is the port; the
filesystem adapter keeps files under ``ARTIFACTS_DIR``; an object store can implement the
same four methods later.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

from ledger.errors import LedgerError

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


class ArtifactStore(Protocol):
    async def put(self, data: bytes, *, kind: str, content_type: str) -> ArtifactRef: ...

    async def get(self, artifact_id: str) -> bytes: ...

    async def exists(self, artifact_id: str) -> bool: ...

    async def delete(self, artifact_id: str) -> bool: ...


def _valid_id(artifact_id: str) -> str:
    if not _SHA256.match(artifact_id):
        raise ArtifactNotFound(f"artifact {artifact_id!r} not found: ids are sha256 hex digests")
    return artifact_id


class FileArtifactStore:
    """Files under ``root/ab/<sha256>``; writes are atomic (temporary file, then rename)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path_of(self, artifact_id: str) -> Path:
        artifact_id = _valid_id(artifact_id)
        return self.root / artifact_id[:2] / artifact_id

    async def put(self, data: bytes, *, kind: str, content_type: str) -> ArtifactRef:
        digest = hashlib.sha256(data).hexdigest()
        await asyncio.to_thread(self._write, digest, data)
        return ArtifactRef(digest, kind, content_type, len(data), digest)

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

    async def get(self, artifact_id: str) -> bytes:
        path = self.path_of(artifact_id)
        try:
            return await asyncio.to_thread(path.read_bytes)
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
