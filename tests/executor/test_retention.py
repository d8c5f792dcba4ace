"""Artifact retention: screenshots of each test's last N runs, traces for D days, files
shared between runs kept while any retained run lists them."""

from __future__ import annotations

import asyncio
import multiprocessing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ledger.artifacts import ArtifactOwner, FileArtifactStore, RetentionPolicy

NOW = datetime(2030, 6, 1, tzinfo=UTC)


def owner(test: str, run: int, *, days_ago: float = 0) -> ArtifactOwner:
    started = NOW - timedelta(days=days_ago) + timedelta(seconds=run)
    return ArtifactOwner(test, f"{test}-run-{run}", started)


@pytest.mark.unit
async def test_screenshots_of_older_runs_go_per_test(tmp_path: Path) -> None:
    store = FileArtifactStore(tmp_path)
    refs = {}
    for test in ("login", "checkout"):
        for run in range(5):
            refs[test, run] = await store.put(f"{test}{run}".encode(), kind="screenshot",
                                              content_type="image/png", owner=owner(test, run))
    report = await store.prune(RetentionPolicy(screenshot_runs=3, trace_days=7), now=NOW)

    assert (report.runs, report.runs_trimmed, report.deleted) == (10, 4, 4)
    for (test, run), ref in refs.items():
        assert await store.exists(ref.id) is (run >= 2), (test, run)
    # Pruning again finds nothing more to do; the pruned runs' manifests are gone.
    again = await store.prune(RetentionPolicy(screenshot_runs=3), now=NOW)
    assert (again.runs, again.deleted) == (6, 0)


@pytest.mark.unit
async def test_traces_go_after_the_configured_days(tmp_path: Path) -> None:
    store = FileArtifactStore(tmp_path)
    old = await store.put(b"old trace", kind="trace", content_type="application/zip",
                          owner=owner("t", 1, days_ago=10))
    new = await store.put(b"new trace", kind="trace", content_type="application/zip",
                          owner=owner("t", 2, days_ago=1))
    shot = await store.put(b"old shot", kind="screenshot", content_type="image/png",
                           owner=owner("t", 1, days_ago=10))
    report = await store.prune(RetentionPolicy(screenshot_runs=20, trace_days=7), now=NOW)
    assert report.deleted == 1 and report.bytes_freed == len(b"old trace")
    assert not await store.exists(old.id)
    assert await store.exists(new.id) and await store.exists(shot.id)


@pytest.mark.unit
async def test_a_file_still_listed_by_a_kept_run_is_kept(tmp_path: Path) -> None:
    store = FileArtifactStore(tmp_path)
    same = b"identical screenshot bytes"
    first = await store.put(same, kind="screenshot", content_type="image/png",
                            owner=owner("t", 1))
    for run in range(2, 5):
        await store.put(f"other {run}".encode(), kind="screenshot", content_type="image/png",
                        owner=owner("t", run))
    # The newest run of another test stored the very same bytes.
    await store.put(same, kind="screenshot", content_type="image/png", owner=owner("u", 9))
    report = await store.prune(RetentionPolicy(screenshot_runs=2), now=NOW)
    assert report.kept_shared == 1 and await store.exists(first.id)
    assert report.deleted == 1  # run 2's own screenshot; run 1's is still run u-9's


@pytest.mark.unit
async def test_unowned_files_and_torn_manifest_lines_are_left_alone(tmp_path: Path) -> None:
    store = FileArtifactStore(tmp_path)
    loose = await store.put(b"uploaded by hand", kind="screenshot", content_type="image/png")
    await store.put(b"a", kind="screenshot", content_type="image/png", owner=owner("t", 1))
    manifest = next((tmp_path / "runs").glob("*/*.jsonl"))
    with manifest.open("ab") as handle:
        handle.write(b'{"test_id": "t", "run_id": "t-run-1", "id": "abc')  # a crash mid-line
    report = await store.prune(RetentionPolicy(screenshot_runs=1), now=NOW)
    assert report.deleted == 0 and len(report.skipped_lines) == 1
    assert await store.exists(loose.id)


def _hold_exclusive_lock(root: str, locked: object, release: object) -> None:
    import fcntl
    import os

    fd = os.open(Path(root) / "runs" / ".lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    locked.set()  # type: ignore[attr-defined]
    release.wait(10)  # type: ignore[attr-defined]
    os.close(fd)


@pytest.mark.integration
async def test_writers_wait_for_a_prune_in_another_process(tmp_path: Path) -> None:
    store = FileArtifactStore(tmp_path)
    await store.put(b"first", kind="screenshot", content_type="image/png", owner=owner("t", 1))
    ctx = multiprocessing.get_context("spawn")
    locked, release = ctx.Event(), ctx.Event()
    pruner = ctx.Process(target=_hold_exclusive_lock, args=(str(tmp_path), locked, release))
    pruner.start()
    try:
        assert await asyncio.to_thread(locked.wait, 10)
        put = asyncio.create_task(store.put(b"second", kind="screenshot",
                                            content_type="image/png", owner=owner("t", 2)),
                                  name="blocked-put")
        done, _ = await asyncio.wait({put}, timeout=0.3)
        assert not done  # blocked behind the other process's exclusive lock
        release.set()
        ref = await asyncio.wait_for(put, 10)
        assert await store.exists(ref.id)
    finally:
        release.set()
        await asyncio.to_thread(pruner.join, 10)


@pytest.mark.unit
@pytest.mark.parametrize("runs", [1, 25])
async def test_executor_policy_defaults(runs: int, tmp_path: Path) -> None:
    store = FileArtifactStore(tmp_path)
    for run in range(runs):
        await store.put(f"{run}".encode(), kind="screenshot", content_type="image/png",
                        owner=owner("t", run))
    report = await store.prune(RetentionPolicy(), now=NOW)
    assert report.deleted == max(0, runs - 20)
