"""The upload backlog gauges: closed archives the ledger has not verified, cached between scans."""

from __future__ import annotations

import os
from pathlib import Path

from pmws.transfer.backlog import BacklogGauges, scan_backlog
from pmws.transfer.ledger import Ledger


def archive(root: Path, relative: str, size: int, mtime: float) -> Path:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * size)
    os.utime(path, (mtime, mtime))
    return path


def test_counts_closed_unverified_archives_only(tmp_path: Path) -> None:
    root, ledger = tmp_path / "rec", Ledger(tmp_path / "ledger.jsonl")
    archive(root, "ws_raw/date=x/a.jsonl.gz", 10, 1000)
    archive(root, "ws_raw/date=x/b.jsonl.gz", 20, 1500)
    archive(root, "ws_raw/date=x/c.jsonl.gz", 40, 500)  # verified: not backlog
    archive(root, "ws_raw/date=x/d.jsonl.gz.open", 80, 100)  # still being written
    archive(root, "ws_raw/date=x/e.jsonl.gz.open.salvaged", 80, 100)
    archive(root, ".tmp/f.jsonl.gz", 80, 100)  # hidden directory
    ledger.append(
        "verified",
        relative_path="ws_raw/date=x/c.jsonl.gz",
        sha256="s",
        remote="r:b/ws_raw/date=x/c.jsonl.gz",
    )
    backlog = scan_backlog(root, ledger.path, now=2000)
    assert (backlog.files, backlog.bytes, backlog.oldest_age_seconds, backlog.scan_errors) == (2, 30, 1000, 0)


def test_a_failure_after_verification_puts_the_file_back(tmp_path: Path) -> None:
    root, ledger = tmp_path / "rec", Ledger(tmp_path / "ledger.jsonl")
    archive(root, "a.jsonl.gz", 10, 1000)
    ledger.append("verified", relative_path="a.jsonl.gz", sha256="s", remote="r:b/a.jsonl.gz")
    assert scan_backlog(root, ledger.path, now=2000).files == 0
    ledger.append("failed", relative_path="a.jsonl.gz", sha256="s", remote="r:b/a.jsonl.gz")
    assert scan_backlog(root, ledger.path, now=2000).files == 1


def test_empty_or_missing_source_is_zero(tmp_path: Path) -> None:
    backlog = scan_backlog(tmp_path / "nothing", tmp_path / "ledger.jsonl", now=5)
    assert (backlog.files, backlog.bytes, backlog.oldest_age_seconds) == (0, 0, 0)


def test_cached_for_ttl_while_the_oldest_keeps_ageing(tmp_path: Path) -> None:
    root, now = tmp_path / "rec", [2000.0]
    archive(root, "a.jsonl.gz", 10, 1000)
    gauges = BacklogGauges(root, tmp_path / "ledger.jsonl", ttl=60, clock=lambda: now[0])
    assert gauges.sample()["pmws_upload_backlog_files"][2] == 1
    archive(root, "b.jsonl.gz", 10, 1990)
    now[0] = 2030.0
    sample = gauges.sample()
    assert sample["pmws_upload_backlog_files"][2] == 1  # not rescanned yet
    assert sample["pmws_upload_backlog_oldest_seconds"][2] == 1030
    now[0] = 2060.0
    assert gauges.sample()["pmws_upload_backlog_files"][2] == 2


def test_unreadable_ledger_is_reported_not_raised(tmp_path: Path) -> None:
    root = tmp_path / "rec"
    archive(root, "a.jsonl.gz", 10, 1000)
    (tmp_path / "ledger").mkdir()  # a directory where the ledger file should be
    backlog = scan_backlog(root, tmp_path / "ledger", now=2000)
    assert (backlog.files, backlog.scan_errors) == (1, 1)
