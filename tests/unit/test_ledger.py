"""The upload ledger: one fsynced JSON line per event, and what it remembers across runs."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from pmws.errors import UploadError
from pmws.transfer.ledger import Ledger, already_verified, deleted_locally, known_md5
from pmws.transfer.rclone import Redactor

A, B = "ws_raw/date=2026-11-24/hour=01/a.jsonl.gz", "ws_raw/date=2026-11-24/hour=02/b.jsonl.gz"


def lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_each_append_is_one_fsynced_line_without_empty_fields(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd))[1])
    ledger = Ledger(tmp_path / "state" / "ledger.jsonl")
    ledger.append("uploaded", file="a.jsonl.gz", relative_path=A, remote="r:b/" + A, sha256="aa", bytes=10)
    ledger.append("verified", relative_path=A, sha256="aa", md5=None, verify_mode="sha256")
    records = lines(ledger.path)
    assert [r["event"] for r in records] == ["uploaded", "verified"] and len(synced) == 2
    assert records[0]["bytes"] == 10 and str(records[0]["at_utc"]).endswith("Z")
    assert "md5" not in records[1] and records[1]["verify_mode"] == "sha256"


def test_unknown_events_are_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown ledger event"):
        Ledger(tmp_path / "l.jsonl").append("shipped", relative_path=A)


def test_already_verified_follows_the_latest_event_per_file(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "l.jsonl")
    assert already_verified(ledger) == {}
    ledger.append("verified", relative_path=A, remote="r:x/" + A, sha256="a1")
    ledger.append("verified", relative_path=B, remote="r:x/" + B, sha256="b1")
    ledger.append("deleted", relative_path=B, sha256="b1")
    assert already_verified(ledger) == {A: "a1", B: "b1"}
    ledger.append("failed", relative_path=A, detail="remote md5 differs")
    assert already_verified(ledger.path) == {B: "b1"}  # a failure makes the next run send it again
    ledger.append("verified", relative_path=A, remote="r:x/" + A, sha256="a2")
    ledger.append("refused", relative_path=B, detail="local file does not match its manifest")
    assert already_verified(ledger) == {A: "a2"}


def test_events_at_another_remote_do_not_count(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "l.jsonl")
    ledger.append("verified", relative_path=A, remote="old:bucket/" + A, sha256="a1")
    ledger.append("failed", relative_path=A, remote="new:bucket/" + A, detail="bucket not found")
    assert already_verified(ledger, remote="old:bucket") == {A: "a1"}
    assert already_verified(ledger, remote="new:bucket") == {}


def test_a_torn_last_line_is_skipped(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "l.jsonl")
    ledger.append("verified", relative_path=A, sha256="a1", md5="m1")
    ledger.append("deleted", relative_path=A, sha256="a1")
    with open(ledger.path, "ab") as fh:
        fh.write(b'{"event": "failed", "relative_path": "ws_raw/')  # crash mid-append
    assert [r["event"] for r in ledger.records()] == ["verified", "deleted"]
    assert already_verified(ledger) == {A: "a1"}
    assert known_md5(ledger) == {"a1": "m1"} and deleted_locally(ledger) == {A: "a1"}


def test_an_append_after_a_torn_line_starts_a_fresh_line(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "l.jsonl")
    ledger.append("verified", relative_path=A, sha256="a1", md5="m1")
    with open(ledger.path, "ab") as fh:
        fh.write(b'{"event": "failed", "relative_path": "ws_raw/')  # killed mid-append
    ledger.append("deleted", relative_path=A, sha256="a1")
    assert [r["event"] for r in ledger.records()] == ["verified", "deleted"]
    assert ledger.torn_lines == 1
    assert deleted_locally(ledger) == {A: "a1"}  # verify says "shipped", not "missing", forever after
    assert ledger.path.read_bytes().count(b"\n") == 3


def test_a_clean_ledger_has_no_torn_lines(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "l.jsonl")
    ledger.append("verified", relative_path=A, sha256="a1")
    ledger.append("deleted", relative_path=A, sha256="a1")
    assert len(ledger.records()) == 2 and ledger.torn_lines == 0


def test_credentials_never_reach_the_ledger(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "l.jsonl", redact=Redactor(frozenset({"SUPERSECRETKEY123"})))
    ledger.append(
        "failed",
        relative_path=A,
        remote=":s3,access_key_id=AKIAABCDEFGHIJKLMNOP,secret_access_key=OTHERSECRET99:bucket/" + A,
        detail="rclone copyto failed (exit 1): SignatureDoesNotMatch for SUPERSECRETKEY123",
    )
    text = ledger.path.read_text()
    for secret in ("SUPERSECRETKEY123", "OTHERSECRET99", "AKIAABCDEFGHIJKLMNOP"):
        assert secret not in text
    assert "SignatureDoesNotMatch" in text and "bucket/ws_raw" in text


def test_only_one_run_holds_the_ledger(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "l.jsonl")
    with ledger.lock():
        with pytest.raises(UploadError, match="another pmws upload is running"), Ledger(ledger.path).lock():
            pass
    with ledger.lock():  # released after the first run
        pass
