"""The filesystem artifact store: content-addressed, atomic, verifiable."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from ledger.artifacts import ArtifactNotFound, FileArtifactStore

pytestmark = pytest.mark.unit


async def test_put_get_dedup_delete(tmp_path: Path) -> None:
    store = FileArtifactStore(tmp_path / "artifacts")
    data = b"\x89PNG fake screenshot"
    ref = await store.put(data, kind="screenshot", content_type="image/png")
    assert ref.id == ref.sha256 == hashlib.sha256(data).hexdigest() and ref.size == len(data)
    assert ref.as_dict()["content_type"] == "image/png"
    assert await store.get(ref.id) == data
    again = await store.put(data, kind="screenshot", content_type="image/png")
    assert again == ref and len(list((tmp_path / "artifacts").rglob("*"))) == 2  # dir + file
    assert await store.delete(ref.id) is True and await store.delete(ref.id) is False
    with pytest.raises(ArtifactNotFound):
        await store.get(ref.id)


@pytest.mark.parametrize("bad", ["../../etc/passwd", "abc", "Z" * 64, ""])
async def test_ids_that_are_not_digests_are_not_found(tmp_path: Path, bad: str) -> None:
    with pytest.raises(ArtifactNotFound, match="sha256"):
        await FileArtifactStore(tmp_path).get(bad)
