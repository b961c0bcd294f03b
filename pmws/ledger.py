"""The append-only upload ledger: one JSON line per event (uploaded, verified, deleted, refused, failed)."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from pmws.envelope import utc_text
from pmws.errors import UploadError


@dataclass
class Ledger:
    path: Path

    def append(self, event: str, **fields: Any) -> None:
        """Add one line and fsync it: the ledger must survive a crash right after a delete."""
        record = {"at_utc": utc_text(time.time_ns()), "event": event, **fields}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "ab") as fh:
                fh.write(orjson.dumps(record) + b"\n")
                fh.flush()
                os.fsync(fh.fileno())
        except OSError as exc:
            raise UploadError(
                f"{self.path}: cannot write the upload ledger ({exc.strerror or exc})"
            ) from None

    def records(self) -> list[dict[str, Any]]:
        """Every readable line (a torn last line from a crash is skipped)."""
        if not self.path.exists():
            return []
        out = []
        for line in self.path.read_bytes().splitlines():
            try:
                record = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            if isinstance(record, dict):
                out.append(record)
        return out

    def verified(self) -> dict[str, str]:
        """relative_path → sha256 of files whose remote copy was verified (latest event wins)."""
        state: dict[str, str] = {}
        for record in self.records():
            key = str(record.get("relative_path"))
            if record.get("event") == "verified":
                state[key] = str(record.get("sha256"))
            elif record.get("event") in ("failed", "refused"):
                state.pop(key, None)
        return state
