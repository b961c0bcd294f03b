"""Volume metrics for `/metrics`: archive bytes closed, and the upload backlog seen on the recorder's volume.

The uploader runs as a loop of short `pmws upload` processes and serves no metrics. What on-call needs from it
(is shipping keeping up?) is visible on the shared volume: closed archives that the upload ledger does not
list as verified. With `--cleanup-after-verify` those are deleted once verified, so the scan stays small;
it is still cached for `ttl` seconds so a scrape never walks the tree more than once a minute.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from pmws.archive.files import is_closed_archive_name, walk_files
from pmws.archive.rotating import RotatingArchive
from pmws.errors import PmwsError
from pmws.transfer.ledger import already_verified

CACHE_SECONDS = 60.0


@dataclass(frozen=True)
class Backlog:
    files: int
    bytes: int
    oldest_age_seconds: float  # 0 when empty
    scan_errors: int  # 1 when the ledger could not be read (the backlog then counts every closed archive)


def scan_backlog(source: Path, ledger_path: Path, now: float) -> Backlog:
    """Closed archives under `source` (hidden directories skipped) not verified in the ledger."""
    errors = 0
    try:
        verified = already_verified(ledger_path)
    except PmwsError:
        verified, errors = {}, 1
    files = size = 0
    oldest = now
    for path, relative in walk_files(source):  # the walk `pmws upload` makes
        if not is_closed_archive_name(path.name) or relative in verified:
            continue
        try:
            stat = path.stat()
        except FileNotFoundError:  # deleted by the uploader while we looked
            continue
        files, size, oldest = files + 1, size + stat.st_size, min(oldest, stat.st_mtime)
    return Backlog(files, size, max(now - oldest, 0.0), errors)


class BacklogGauges:
    """`sample()` for `RecorderCollector`: the backlog, rescanned at most every `ttl` seconds."""

    def __init__(
        self,
        source: Path,
        ledger_path: Path,
        *,
        ttl: float = CACHE_SECONDS,
        clock: Callable[[], float] = time.time,
    ):
        self.source, self.ledger_path, self.ttl, self.clock = source, ledger_path, ttl, clock
        self._cached: tuple[float, Backlog] | None = None

    def current(self) -> Backlog:
        now = self.clock()
        if self._cached is None or now - self._cached[0] >= self.ttl:
            self._cached = (now, scan_backlog(self.source, self.ledger_path, now))
        scanned_at, backlog = self._cached
        if backlog.files:  # the oldest file keeps ageing between scans
            backlog = replace(backlog, oldest_age_seconds=backlog.oldest_age_seconds + now - scanned_at)
        return backlog

    def sample(self) -> dict[str, tuple[str, str, Any]]:
        b = self.current()
        return {
            "pmws_upload_backlog_files": ("gauge", "closed archives not yet verified remotely", b.files),
            "pmws_upload_backlog_bytes": ("gauge", "bytes of closed archives not yet verified", b.bytes),
            "pmws_upload_backlog_oldest_seconds": (
                "gauge",
                "age of the oldest closed archive not yet verified (0 when none)",
                b.oldest_age_seconds,
            ),
            "pmws_upload_ledger_unreadable": (
                "gauge",
                "1 when the upload ledger could not be read",
                b.scan_errors,
            ),
        }


def closed_bytes_sample(archives: Sequence[RotatingArchive]) -> dict[str, tuple[str, str, Any]]:
    """Compressed bytes of the archive files this process closed, by kind (rate = archive growth)."""
    by_kind = {(("kind", a.kind),): sum(m.bytes for m in list(a.closed_files)) for a in archives}
    return {"pmws_archive_closed_bytes": ("counter", "bytes of archive files closed, by kind", by_kind)}
