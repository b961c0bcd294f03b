"""The upload ledger: append-only JSON lines, one per event, fsynced before the next step.

    {"at_utc", "event": uploaded | verified | deleted | refused | failed, "file", "relative_path", "remote",
     "sha256", "md5" (when computed), "bytes", "verify_mode" (verified), "detail"}

It is the memory of `pmws upload` across runs: `already_verified()` says which files need not be sent
again. A torn line (a run killed mid-append) is skipped when reading and counted (`torn_lines`, reported
by upload and verify); an append after it starts on a fresh line, so it never swallows the next record.
Only one `pmws upload` may hold the ledger at a time (`Ledger.lock()`), so two overlapping cron runs never
upload or delete the same file.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from pmws.envelope import utc_text
from pmws.errors import UploadError
from pmws.lock import try_lock
from pmws.transfer.rclone import join_remote

EVENTS = ("uploaded", "verified", "deleted", "refused", "failed")


def _unchanged(text: str) -> str:
    return text


@dataclass
class Ledger:
    """The ledger file; `redact` is applied to every string written (credentials never reach the disk)."""

    path: Path
    redact: Callable[[str], str] = _unchanged
    torn_lines: int = 0  # lines that did not parse, as of the last `records()`

    def append(self, event: str, **fields: Any) -> dict[str, Any]:
        """Add one line and fsync it: the ledger must survive a crash right after a delete."""
        if event not in EVENTS:
            raise ValueError(f"unknown ledger event {event!r}")
        record: dict[str, Any] = {"at_utc": utc_text(time.time_ns()), "event": event}
        record |= {k: self.redact(v) if isinstance(v, str) else v for k, v in fields.items() if v is not None}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a+b") as fh:
                fh.write(_fresh_line(fh) + orjson.dumps(record) + b"\n")
                fh.flush()
                os.fsync(fh.fileno())
        except OSError as exc:
            raise UploadError(f"{self.path}: cannot write the upload ledger ({exc.strerror or exc})") from exc
        return record

    def records(self) -> list[dict[str, Any]]:
        """Every readable line, oldest first."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise UploadError(f"{self.path}: cannot read the upload ledger ({exc.strerror or exc})") from exc
        out, self.torn_lines = [], 0
        for line in data.splitlines():
            try:
                record = orjson.loads(line)
            except orjson.JSONDecodeError:
                record = None
            if isinstance(record, dict):
                out.append(record)
            elif line.strip():
                self.torn_lines += 1
        return out

    def torn_warning(self) -> str | None:
        """One line for the user when the last read skipped torn lines, else None."""
        if not self.torn_lines:
            return None
        plural = "s" if self.torn_lines > 1 else ""
        return f"{self.path}: skipped {self.torn_lines} torn line{plural} (a run killed mid-append)"

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold `<ledger>.lock` for one run; a second concurrent run fails at once instead of waiting."""
        lock_path = self.path.with_name(self.path.name + ".lock")
        with try_lock(lock_path) as taken:  # an unwritable directory: ArchiveError naming it
            if not taken:
                raise UploadError(f"another pmws upload is running (it holds {lock_path})")
            yield


def _fresh_line(fh: BinaryIO) -> bytes:
    """A newline to write first when the file does not end with one (the last append was cut)."""
    end = fh.seek(0, os.SEEK_END)
    if end == 0:
        return b""
    fh.seek(end - 1)
    last = fh.read(1)
    return b"" if last == b"\n" else b"\n"


def _as_ledger(ledger: Ledger | Path) -> Ledger:
    return ledger if isinstance(ledger, Ledger) else Ledger(ledger)


def already_verified(ledger: Ledger | Path, *, remote: str | None = None) -> dict[str, str]:
    """relative_path → sha256 of files whose remote copy verified, as the ledger last says.

    A later `failed` or `refused` for the same file cancels it (the next run sends it again). With `remote`
    (the root, as written in the ledger), only events at `remote/relative_path` count: pointing pmws at a new
    bucket uploads everything there, and a failure at another remote changes nothing here.
    """
    state: dict[str, str] = {}
    for record in _as_ledger(ledger).records():
        key = record.get("relative_path")
        if not isinstance(key, str) or (
            remote is not None and record.get("remote") != join_remote(remote, key)
        ):
            continue
        if record.get("event") == "verified":
            state[key] = str(record.get("sha256"))
        elif record.get("event") in ("failed", "refused"):
            state.pop(key, None)
    return state


def known_md5(ledger: Ledger | Path) -> dict[str, str]:
    """sha256 → the md5 computed from the same bytes when a file verified (S3 checks after cleanup)."""
    return {
        str(r["sha256"]): str(r["md5"])
        for r in _as_ledger(ledger).records()
        if r.get("event") == "verified" and r.get("md5") and r.get("sha256")
    }


def deleted_locally(ledger: Ledger | Path) -> dict[str, str]:
    """relative_path → sha256 of files `pmws upload` deleted after their remote copy verified."""
    return {
        str(r["relative_path"]): str(r.get("sha256"))
        for r in _as_ledger(ledger).records()
        if r.get("event") == "deleted" and r.get("relative_path")
    }
