"""Manifests: canonical JSON written atomically, and the file records they hold. Pure but for write/read."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Any

from pmws.archive.writer import FileSummary, fsync_dir
from pmws.errors import ArchiveError


def file_record(summary: FileSummary, *, kind: str, manifest_path: Path) -> dict[str, Any]:
    """A manifest's entry for one output file: where it is (as written, and from the manifest), its sums."""
    return {
        "kind": kind,
        "path": str(summary.path),
        "path_from_manifest": os.path.relpath(summary.path.resolve(), manifest_path.resolve().parent),
        "bytes": summary.bytes,
        "sha256": summary.sha256,
        "lines": summary.lines,
        "uncompressed_bytes": summary.uncompressed_bytes,
    }


def rebase_record(record: dict[str, Any], manifest_path: Path) -> dict[str, Any]:
    """The same file record, for a copy of its manifest at `manifest_path`."""
    target = Path(str(record.get("path", ""))).resolve()
    return record | {"path_from_manifest": os.path.relpath(target, manifest_path.resolve().parent)}


def canonical_json(data: Any) -> str:
    """Stable text: sorted keys, two-space indent, trailing newline."""
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write_atomic(path: Path, text: str) -> None:
    """Write via a temporary file in the same directory, fsync, rename.

    The file is created with mode 0666 less the umask, like the archives (`open()`), so another user or
    an uploader sidecar can read manifests, reports and discovery files (mkstemp would make them 0600).
    """
    try:
        if path.parent.exists() and not path.parent.is_dir():
            raise ArchiveError(f"{path}: cannot write ({path.parent} is not a directory)")
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = _create_temporary(path)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        fsync_dir(path.parent)
    except OSError as exc:
        raise ArchiveError(f"{path}: cannot write ({exc.strerror or exc})") from exc


def _create_temporary(path: Path) -> tuple[int, Path]:
    """A new hidden file beside `path`, opened for writing; its mode follows the umask."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
    while True:
        tmp = path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp"
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue


def write_manifest(path: Path, data: dict[str, Any]) -> None:
    write_atomic(path, canonical_json(data))


def read_manifest(path: Path) -> dict[str, Any]:
    """Load a manifest, or ArchiveError naming the file."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ArchiveError(f"{path}: manifest not found") from exc
    except OSError as exc:
        raise ArchiveError(f"{path}: cannot read manifest ({exc.strerror or exc})") from exc
    except json.JSONDecodeError as exc:
        raise ArchiveError(f"{path}: manifest is not valid JSON (line {exc.lineno})") from exc
    except UnicodeDecodeError as exc:
        raise ArchiveError(f"{path}: not a manifest (not UTF-8 JSON text)") from exc
    if not isinstance(data, dict):
        raise ArchiveError(f"{path}: manifest must be a JSON object")
    return data


def resolve_output(manifest_path: Path, record: dict[str, Any]) -> Path:
    """Where a manifest's file record points: beside the manifest first, else the path as written."""
    relative = record.get("path_from_manifest")
    if isinstance(relative, str):
        candidate = manifest_path.parent / relative
        if candidate.exists() or not Path(str(record.get("path", ""))).exists():
            return candidate
    return Path(str(record.get("path", "")))
