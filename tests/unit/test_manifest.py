"""Typed manifests: the files pmws has always written read back, and are written back byte for byte."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from pmws.archive.writer import FileSummary, GzipJsonlFile
from pmws.envelope import record_line
from pmws.errors import ArchiveError
from pmws.gate import run_gate
from pmws.manifest import Counts, FileManifest, OutputRecord, SampleManifest, canonical_json, file_manifest
from pmws.transfer.verify import verify

ROOT = Path("/data/archive")
SHA = "7ae72570f6d684c204dcc8e960dd558493827ee1e1e6d47d0279ef708e78b96a"
ARCHIVE = ROOT / "ws_raw/date=2026-11-30/hour=14/polymarket_ws_raw_S1_20261130T140000Z.jsonl.gz"

#: a per-file manifest as `pmws run` wrote it before manifests were typed (pmws 0.1.0, commit 5271a98)
OLD_FILE_MANIFEST = """{
  "bytes": 60,
  "closed_at_utc": "2026-11-30T15:00:00.412345Z",
  "counters": {
    "reconnects": 0
  },
  "events_by_type": {
    "book": 1
  },
  "file": "polymarket_ws_raw_S1_20261130T140000Z.jsonl.gz",
  "first_global_message_sequence": 1,
  "first_received_at_utc": "2026-11-30T14:00:00.123456Z",
  "frames": 1,
  "generator": "pmws 0.1.0",
  "kind": "ws_raw",
  "last_global_message_sequence": 1,
  "last_received_at_utc": "2026-11-30T14:59:59.000000Z",
  "lines": 1,
  "manifest_version": 1,
  "path": "/data/archive/ws_raw/date=2026-11-30/hour=14/polymarket_ws_raw_S1_20261130T140000Z.jsonl.gz",
  "period_seconds": 3600,
  "period_start_utc": "2026-11-30T14:00:00.000000Z",
  "records_by_type": {
    "lifecycle": 1,
    "ws_frame": 1
  },
  "recovered": false,
  "relative_path": "ws_raw/date=2026-11-30/hour=14/polymarket_ws_raw_S1_20261130T140000Z.jsonl.gz",
  "rotated_to": "polymarket_ws_raw_S1_20261130T150000Z.jsonl.gz",
  "session_id": "S1",
  "sha256": "7ae72570f6d684c204dcc8e960dd558493827ee1e1e6d47d0279ef708e78b96a",
  "shard": "0of2",
  "uncompressed_bytes": 34
}
"""

#: a gated `pmws sample` manifest as pmws 0.1.0 wrote it: no `manifest_version` key
OLD_SAMPLE_MANIFEST = """{
  "checkpoint": "010b",
  "connections": [],
  "counts": {
    "frames": 3
  },
  "errors": [],
  "gate": {
    "checks": [],
    "failing_checks": [
      "rest_checkpoints_ok"
    ],
    "verdict": "WS_RAW_SAMPLE_NEEDS_REVIEW"
  },
  "generator": "pmws 0.1.0",
  "kind": "ws_raw_sample",
  "outputs": [
    {
      "bytes": 60,
      "kind": "ws_raw",
      "lines": 1,
      "path": "/x/out/ws.jsonl.gz",
      "path_from_manifest": "../out/ws.jsonl.gz",
      "sha256": "7ae72570f6d684c204dcc8e960dd558493827ee1e1e6d47d0279ef708e78b96a",
      "uncompressed_bytes": 34
    }
  ],
  "report_path": "/x/report.md",
  "selection": {
    "discovery_file": "d.json",
    "markets": [
      {
        "slug": "btc",
        "tokens": [
          {
            "outcome": "Up",
            "token_id": "1"
          },
          {
            "outcome": "Down",
            "token_id": "2"
          }
        ]
      }
    ],
    "tokens": []
  },
  "session_id": "S2",
  "session_manifest_path": "/x/sessions/S2/manifest.json",
  "simulated": true
}
"""


def test_an_old_file_manifest_reads_back_typed_and_is_written_back_unchanged() -> None:
    manifest = FileManifest.from_json(json.loads(OLD_FILE_MANIFEST))
    assert (manifest.kind, manifest.file, manifest.bytes, manifest.lines) == ("ws_raw", ARCHIVE.name, 60, 1)
    assert manifest.sha256 == SHA
    assert manifest.relative_path == str(ARCHIVE.relative_to(ROOT))
    assert manifest.records_by_type == {"lifecycle": 1, "ws_frame": 1} and manifest.shard == "0of2"
    assert manifest.extra == {"rotated_to": "polymarket_ws_raw_S1_20261130T150000Z.jsonl.gz"}  # kept
    assert canonical_json(manifest.to_json()) == OLD_FILE_MANIFEST


def test_the_writer_still_writes_the_old_bytes() -> None:
    summary = FileSummary(ARCHIVE, 60, SHA, 1, 34)
    manifest = file_manifest(
        kind="ws_raw",
        summary=summary,
        root=ROOT,
        session_id="S1",
        shard="0of2",
        period_start=1796047200,
        interval=3600,
        lines=Counts(
            first_ns=1796047200123456789,
            last_ns=1796050799000000000,
            first_sequence=1,
            last_sequence=1,
            frames=1,
            events=Counter(book=1),
            records=Counter(ws_frame=1, lifecycle=1),
        ),
        counters={"reconnects": 0},
        recovered=False,
        closed_ns=1796050800412345678,
        extra={"rotated_to": "polymarket_ws_raw_S1_20261130T150000Z.jsonl.gz"},
    )
    assert canonical_json(manifest.to_json()) == OLD_FILE_MANIFEST


def test_an_old_sample_manifest_reads_back_and_gains_only_its_version() -> None:
    old = json.loads(OLD_SAMPLE_MANIFEST)
    manifest = SampleManifest.from_json(old)
    assert manifest.manifest_version == 1 and manifest.session_id == "S2"
    assert manifest.outputs == [
        OutputRecord(
            kind="ws_raw",
            path="/x/out/ws.jsonl.gz",
            path_from_manifest="../out/ws.jsonl.gz",
            bytes=60,
            sha256=SHA,
            lines=1,
            uncompressed_bytes=34,
        )
    ]
    assert [m["slug"] for m in manifest.markets] == ["btc"] and manifest.report_path == "/x/report.md"
    assert manifest.gate is not None and manifest.gate["verdict"] == "WS_RAW_SAMPLE_NEEDS_REVIEW"
    assert manifest.to_json() == old | {"manifest_version": 1}


def test_a_manifest_newer_than_this_pmws_is_refused_by_name() -> None:
    newer = json.loads(OLD_FILE_MANIFEST) | {"manifest_version": 2}
    with pytest.raises(ArchiveError, match="m.json: manifest_version 2 is newer than this pmws reads"):
        FileManifest.from_json(newer, source="m.json")
    with pytest.raises(ArchiveError, match="manifest_version 2"):
        SampleManifest.from_json(json.loads(OLD_SAMPLE_MANIFEST) | {"manifest_version": 2})


def test_a_file_manifest_without_its_sums_is_refused() -> None:
    broken = {k: v for k, v in json.loads(OLD_FILE_MANIFEST).items() if k != "sha256"}
    with pytest.raises(ArchiveError, match="m.json has no sha256/bytes"):
        FileManifest.from_json(broken, source="m.json")


def test_verify_and_gate_read_old_manifests_from_disk(tmp_path: Path) -> None:
    relative = ARCHIVE.relative_to(ROOT)
    writer = GzipJsonlFile(tmp_path / relative)
    writer.write_lines([record_line({"record_type": "lifecycle", "n": 1})], sync_flush=True)
    summary = writer.close()
    sums = {"bytes": summary.bytes, "sha256": summary.sha256, "lines": summary.lines}
    old_file = json.loads(OLD_FILE_MANIFEST) | sums  # `path` names /data/archive: found by relative_path
    (tmp_path / "manifests").mkdir()
    (tmp_path / "manifests" / f"{ARCHIVE.name}.manifest.json").write_text(json.dumps(old_file))
    report = verify([], manifest_dir=tmp_path / "manifests", source=tmp_path)
    assert report.ok and [r.local for r in report.results] == ["ok"]

    output = json.loads(OLD_SAMPLE_MANIFEST)["outputs"][0] | sums | {"path_from_manifest": str(relative)}
    old_sample = json.loads(OLD_SAMPLE_MANIFEST) | {"outputs": [output], "report_path": None}
    (tmp_path / "sample.json").write_text(json.dumps(old_sample))
    outcome = run_gate(tmp_path / "sample.json")
    (checksums,) = [c for c in outcome.checks if c.name == "checksums_match"]
    assert checksums.passed and outcome.not_written == []
    rewritten = json.loads((tmp_path / "sample.json").read_text())
    assert rewritten == old_sample | {"manifest_version": 1, "gate": rewritten["gate"]}
