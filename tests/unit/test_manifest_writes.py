"""Atomic writes of manifests, reports and discovery files: readable like the archives, never half-written."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from pmws.archive.files import rebased, write_atomic
from pmws.manifest import OutputRecord, SampleManifest


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o027, 0o640), (0o077, 0o600)])
def test_written_files_follow_the_umask_like_the_archives(tmp_path: Path, umask: int, mode: int) -> None:
    old = os.umask(umask)
    try:
        target = tmp_path / "m" / "x.json"
        write_atomic(target, "{}\n")
        write_atomic(target, '{"a": 1}\n')  # a rewrite keeps following the umask
        archive_like = tmp_path / "archive.jsonl.gz"
        archive_like.write_bytes(b"")
    finally:
        os.umask(old)
    assert stat.S_IMODE(target.stat().st_mode) == mode == stat.S_IMODE(archive_like.stat().st_mode)
    assert target.read_text() == '{"a": 1}\n'
    assert [p.name for p in target.parent.iterdir()] == ["x.json"]  # no temporary file left


def test_a_record_rebased_for_a_copy_of_its_manifest_points_at_the_same_file(tmp_path: Path) -> None:
    data = tmp_path / "data" / "ws_raw" / "s" / "f.jsonl.gz"
    record = OutputRecord("ws_raw", str(data), "../../../data/ws_raw/s/f.jsonl.gz", bytes=3)
    copy = tmp_path / "manifests" / "latest.json"
    moved = rebased(SampleManifest("S", [record]), copy, report_path=tmp_path / "r.md")
    assert moved.outputs == [OutputRecord("ws_raw", str(data), "../data/ws_raw/s/f.jsonl.gz", bytes=3)]
    assert moved.report_path == str(tmp_path / "r.md")
