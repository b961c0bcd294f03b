"""`scan_archive`: the one read behind `pmws gate` and `pmws verify` (digests, stream, lines, payloads)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import orjson
import pytest

from pmws.archive.digest import check_against_manifest, local_digests, scan_archive
from pmws.envelope import ConnectionContext, TrackedToken, build_envelope, record_line
from pmws.errors import ArchiveUnreadable

CONTEXT = ConnectionContext("S", 1, "wss://x", (TrackedToken("m", "0xc", "111", "Up", "t"),))


def frame(n: int) -> bytes:
    payload = json.dumps({"event_type": "book", "asset_id": "111", "n": n}).encode()
    line, _ = build_envelope(
        payload, binary=False, context=CONTEXT, received_ns=1_795_000_000_000_000_000 + n,
        message_sequence=n, global_sequence=n,
    )  # fmt: skip
    return line


def tampered(line: bytes) -> bytes:
    row = orjson.loads(line)
    row["raw_text"] = row["raw_text"].replace('"n": 2', '"n": 3')
    return orjson.dumps(row) + b"\n"


def archive(path: Path, lines: list[bytes]) -> Path:
    path.write_bytes(gzip.compress(b"".join(lines)))
    return path


def test_one_read_gives_digests_counts_and_every_row_that_checks(tmp_path: Path) -> None:
    lifecycle = record_line({"record_type": "lifecycle", "event": "connected", "session_id": "S"})
    lines = [lifecycle, frame(1), tampered(frame(2)), b"not json\n", b"[1, 2]\n", frame(4)]
    path = archive(tmp_path / "a.jsonl.gz", lines)
    seen: list[dict[str, Any]] = []

    scan = scan_archive(path, with_md5=True, on_row=seen.append)

    assert scan.digests == local_digests(path, with_md5=True)
    assert (scan.lines, scan.not_json, scan.payload_checked, scan.payload_mismatches) == (6, 2, 3, 1)
    assert scan.error is None
    assert [row.get("record_type") for row in seen] == ["lifecycle", "ws_frame", "ws_frame"]
    assert [row["message_sequence"] for row in seen[1:]] == [1, 4]  # the tampered envelope is not handed on


def test_a_cut_stream_is_reported_with_the_digest_of_every_byte(tmp_path: Path) -> None:
    whole = gzip.compress(b"".join(frame(n) for n in range(1, 200)))
    path = tmp_path / "cut.jsonl.gz"
    path.write_bytes(whole[: len(whole) // 2])

    scan = scan_archive(path)

    assert scan.error is not None and "truncated" in scan.error
    assert scan.digests == local_digests(path, with_md5=False)


def test_a_missing_file_is_unreadable_not_a_bad_stream(tmp_path: Path) -> None:
    with pytest.raises(ArchiveUnreadable):
        scan_archive(tmp_path / "nope.jsonl.gz")


def test_the_manifest_check_gate_and_verify_share_names_each_difference(tmp_path: Path) -> None:
    path = archive(tmp_path / "a.jsonl.gz", [frame(1), tampered(frame(2)), b"not json\n"])
    sums = local_digests(path)
    clean = check_against_manifest(path, sha256=sums.sha256, size=sums.bytes, lines=3)
    assert clean.exists and clean.sha256_matches and clean.bytes_match and clean.lines_match
    assert clean.problems() == [
        "1 lines are not JSON objects",
        "1 envelopes whose payload_sha256 does not match",
    ]
    off = check_against_manifest(path, sha256="0" * 64, size=1, lines=4)
    assert off.problems()[:2] == [f"bytes {sums.bytes} != manifest 1", "sha256 differs from the manifest"]
    assert off.problems()[-1] == "lines 3 != manifest 4" and not off.lines_match
    missing = check_against_manifest(tmp_path / "gone.jsonl.gz", sha256=None, size=None, lines=None)
    assert (missing.exists, missing.scan, missing.problems()) == (False, None, ["file is missing"])


def test_a_repair_read_counts_what_it_read(tmp_path: Path) -> None:
    path = archive(tmp_path / "a.jsonl.gz", [frame(1), b"[1]\n", b"x\n"])
    scan = scan_archive(path, check_payloads=False)
    assert (scan.lines, scan.not_json, scan.first_not_json, scan.payload_checked) == (3, 2, 2, 0)
    assert scan.uncompressed_bytes == len(frame(1)) + 4 + 2
