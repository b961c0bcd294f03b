"""Which archive files a read covers: files, directories (hive `date=/hour=` or sample outputs), manifests.

A source is a file or a directory. Every `*.jsonl.gz` under a directory is an archive (hidden `.open` files
are being written, or wait for salvage: left out, and named). Each file gets its kind, session and period
start from its name (`rotation.py`), and its manifest when one is found: in a directory given by the
caller, in a sibling `manifests/` or `<root>-manifests/` directory (`pmws run`'s defaults), or anywhere
under the source.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from pmws.rotation import KINDS, OPEN_SUFFIX, session_of_name

ARCHIVE_SUFFIX = ".jsonl.gz"
MANIFEST_SUFFIX = ".manifest.json"


@dataclass(frozen=True)
class ArchiveFile:
    """One archive to read, and what its name and manifest say about it."""

    path: str  # a local path, or `remote:path` for an rclone remote
    kind: str  # ws_raw, rest_checkpoints, or "" when the name does not say
    session_id: str | None
    period_start_ns: int | None  # from the name (rotated archives); None for sample outputs
    size: int
    manifest: dict[str, Any] | None = None

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]

    @property
    def period_seconds(self) -> int | None:
        value = (self.manifest or {}).get("period_seconds")
        return value if isinstance(value, int) and value > 0 else None

    @property
    def period_end_ns(self) -> int | None:
        """Where the file's period ends (its name's start plus its manifest's length), if both are known."""
        seconds = self.period_seconds
        if self.period_start_ns is None or seconds is None:
            return None
        return self.period_start_ns + seconds * 1_000_000_000


def kind_of_name(name: str) -> str:
    base = name.removeprefix(".")
    return next((kind for kind, prefix in KINDS.items() if base.startswith(prefix + "_")), "")


def period_start_of_name(name: str) -> int | None:
    """Epoch ns of the period start in a rotated archive's name (`…_20261124T01.jsonl.gz`, `…T010203`)."""
    base = name.removesuffix(ARCHIVE_SUFFIX).rpartition("_")[2].partition("-")[0]
    for pattern in ("%Y%m%dT%H%M%S", "%Y%m%dT%H"):
        try:
            moment = datetime.strptime(base, pattern).replace(tzinfo=UTC)
        except ValueError:
            continue
        return int(moment.timestamp()) * 1_000_000_000
    return None


def describe_local(path: Path, manifests: dict[str, dict[str, Any]]) -> ArchiveFile:
    name = path.name
    session = session_of_name(name)
    if session is None and name.startswith(
        "polymarket_"
    ):  # sample output: `<dir>/<session>/<kind>_<session>`
        session = path.parent.name
    try:
        size = path.stat().st_size
    except OSError:
        size = 0
    return ArchiveFile(
        str(path), kind_of_name(name), session, period_start_of_name(name), size, manifests.get(name)
    )


@dataclass
class Found:
    """Archives found under the sources, and what was found but not read."""

    files: list[ArchiveFile]
    open_files: list[str]  # `.open` archives still being written (or waiting for salvage)
    missing: list[str]  # sources that do not exist


def find_local(sources: Iterable[str | Path], manifest_dirs: Iterable[str | Path] = ()) -> Found:
    """Every archive under the local sources, with its manifest where one is found."""
    paths: list[Path] = []
    open_files: list[str] = []
    missing: list[str] = []
    roots = [Path(s) for s in sources]
    dirs = [Path(d) for d in manifest_dirs]
    for root in roots:
        if root.is_dir():
            dirs += [root.parent / "manifests", root.parent / f"{root.name}-manifests", root]
            for path in sorted(root.rglob("*" + ARCHIVE_SUFFIX + "*")):
                if path.name.endswith(OPEN_SUFFIX):
                    open_files.append(str(path))
                elif path.name.endswith(ARCHIVE_SUFFIX) and path.is_file():
                    paths.append(path)
        elif root.is_file():
            paths.append(root)
        else:
            missing.append(str(root))
    manifests = load_manifests(dirs)
    unique = list(dict.fromkeys(p.resolve() for p in paths))
    return Found([describe_local(p, manifests) for p in unique], open_files, missing)


def load_manifests(dirs: Iterable[str | Path]) -> dict[str, dict[str, Any]]:
    """Archive file name → its manifest, for every readable manifest in these directories (and below)."""
    return dict(_manifests([Path(d) for d in dirs]))


def _manifests(dirs: list[Path]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(archive file name, manifest) for every readable manifest in these directories (and below)."""
    seen: set[Path] = set()
    for directory in dirs:
        if not directory.is_dir():
            continue
        for path in directory.rglob("*" + MANIFEST_SUFFIX):
            if path in seen:
                continue
            seen.add(path)
            try:
                data = orjson.loads(path.read_bytes())
            except (OSError, orjson.JSONDecodeError):
                continue
            if isinstance(data, dict) and isinstance(data.get("file"), str):
                yield data["file"], data


def chains(files: list[ArchiveFile]) -> list[list[ArchiveFile]]:
    """Files grouped into sequences that never overlap in time: one per (session, kind), period order.

    Reading a chain opens one file at a time, so a merge holds one open file per chain, not per file.
    Files without a session or period (odd names) are each their own chain.
    """
    grouped: dict[tuple[str, str], list[ArchiveFile]] = {}
    alone: list[list[ArchiveFile]] = []
    for item in files:
        if item.session_id is None or item.period_start_ns is None:
            alone.append([item])
        else:
            grouped.setdefault((item.session_id, item.kind), []).append(item)
    ordered = [sorted(group, key=lambda f: (f.period_start_ns or 0, f.name)) for group in grouped.values()]
    return ordered + alone


def sessions_overlap(groups: list[list[ArchiveFile]]) -> bool:
    """Could two sessions have recorded at the same time (replicas, shards)? Conservative: files without a
    period start in their name (samples) may overlap anything."""
    spans: dict[str | None, tuple[int, int]] = {}
    for group in groups:
        starts = [f.period_start_ns for f in group]
        if None in starts:
            return len(groups) > 1
        first, last = group[0], group[-1]
        assert first.period_start_ns is not None and last.period_start_ns is not None
        end = last.period_start_ns + (last.period_seconds or 3600) * 1_000_000_000
        low, high = spans.get(first.session_id, (first.period_start_ns, end))
        spans[first.session_id] = (min(low, first.period_start_ns), max(high, end))
    reach = None
    for start, end in sorted(spans.values()):
        if reach is not None and start < reach:
            return True
        reach = end if reach is None else max(reach, end)
    return False
