"""Archive periods and names for the long-running recorder. Pure.

Files are partitioned `date=YYYY-MM-DD/hour=HH/` and named by session and period start; while written they
carry a hidden `.open` name (`.polymarket_ws_raw_<session>_<YYYYMMDDTHH>.jsonl.gz.open`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

OPEN_SUFFIX = ".open"
KINDS = {"ws_raw": "polymarket_ws_raw", "rest_checkpoints": "polymarket_rest_checkpoints"}


def period_start(epoch_seconds: float, interval: int) -> int:
    """Start (epoch seconds) of the period containing the moment; periods align to the epoch (UTC hours)."""
    return int(epoch_seconds) - int(epoch_seconds) % interval


@dataclass(frozen=True)
class ArchiveName:
    kind: str
    start: int
    final: Path
    open: Path


def archive_name(
    root: Path, kind: str, session_id: str, start: int, interval: int, *, attempt: int = 0
) -> ArchiveName:
    """Where the `kind` archive of the period starting at `start` lives.

    `attempt` > 0 adds `-<attempt>` before `.jsonl.gz`: a distinct name when the usual one is taken
    (the wall clock stepped back); the session and period stay readable from the name.
    """
    moment = datetime.fromtimestamp(start, tz=UTC)
    stamp = f"{moment:%Y%m%dT%H}" if interval % 3600 == 0 else f"{moment:%Y%m%dT%H%M%S}"
    directory = root / kind / f"date={moment:%Y-%m-%d}" / f"hour={moment:%H}"
    suffix = f"-{attempt}" if attempt else ""
    name = f"{KINDS[kind]}_{session_id}_{stamp}{suffix}.jsonl.gz"
    return ArchiveName(kind, start, directory / name, directory / f".{name}{OPEN_SUFFIX}")


def final_name_of_open(open_path: Path) -> Path:
    """`.x.jsonl.gz.open` → `x.jsonl.gz` in the same directory."""
    name = open_path.name
    if not (name.startswith(".") and name.endswith(OPEN_SUFFIX)):
        raise ValueError(f"{open_path} is not an open archive name")
    return open_path.with_name(name[1 : -len(OPEN_SUFFIX)])


def session_of_name(name: str) -> str | None:
    """The session id in an archive's name (`.x.open`, `x.jsonl.gz`, `x-1.jsonl.gz`), else None."""
    base = name.removeprefix(".").removesuffix(OPEN_SUFFIX).removesuffix(".jsonl.gz")
    for prefix in KINDS.values():
        if base.startswith(prefix + "_"):
            session, _, stamp = base[len(prefix) + 1 :].rpartition("_")  # the stamp has no `_`
            return session if session and stamp else None
    return None


def manifest_path_for(manifest_dir: Path, final: Path) -> Path:
    return manifest_dir / f"{final.name}.manifest.json"
