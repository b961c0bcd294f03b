"""Files on disk: atomic writes, reading and writing manifests, where an output is, and the archive walk.

The manifests' model is `pmws.manifest` (pure); this is its disk side, the one place manifests are read
and written.
"""

from __future__ import annotations

import dataclasses
import json
import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from pmws.archive.writer import fsync_dir
from pmws.errors import ArchiveError
from pmws.manifest import FileManifest, OutputRecord, SampleManifest, Summary, canonical_json

ARCHIVE_SUFFIX = ".jsonl.gz"


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


# --- manifests ------------------------------------------------------------------------------------------


def read_json_object(path: Path) -> dict[str, Any]:
    """Load a manifest's JSON object, or ArchiveError naming the file."""
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


def read_file_manifest(path: Path) -> FileManifest:
    return FileManifest.from_json(read_json_object(path), source=str(path))


def write_file_manifest(path: Path, manifest: FileManifest) -> None:
    write_atomic(path, canonical_json(manifest.to_json()))


def read_sample_manifest(path: Path) -> SampleManifest:
    return SampleManifest.from_json(read_json_object(path), source=str(path))


def write_sample_manifest(path: Path, manifest: SampleManifest) -> None:
    write_atomic(path, canonical_json(manifest.to_json()))


def output_record(summary: Summary, *, kind: str, manifest_path: Path) -> OutputRecord:
    """A sample manifest's entry for one output file, with its path as seen from the manifest."""
    relative = os.path.relpath(summary.path.resolve(), manifest_path.resolve().parent)
    return OutputRecord.of(summary, kind=kind, path_from_manifest=relative)


def rebased(manifest: SampleManifest, manifest_path: Path, *, report_path: Path) -> SampleManifest:
    """The same manifest for a copy at `manifest_path` (its outputs' relative paths from there)."""
    base = manifest_path.resolve().parent
    outputs = [
        dataclasses.replace(o, path_from_manifest=os.path.relpath(Path(o.path).resolve(), base))
        for o in manifest.outputs
    ]
    return dataclasses.replace(manifest, outputs=outputs, report_path=str(report_path))


def resolve_output(manifest_path: Path, record: OutputRecord) -> Path:
    """Where a manifest's file record points: beside the manifest first, else the path as written."""
    relative = record.path_from_manifest
    if relative is not None:
        candidate = manifest_path.parent / relative
        if candidate.exists() or not Path(record.path).exists():
            return candidate
    return Path(record.path)


# --- walking an archive tree ----------------------------------------------------------------------------


def walk_files(
    root: Path, *, on_hidden_dir: Callable[[str], None] | None = None
) -> Iterator[tuple[Path, str]]:
    """(path, posix path relative to root) of every file under root; hidden directories are not entered
    (`on_hidden_dir` is told each one, as `relative/`)."""
    for directory, dirs, names in os.walk(root):
        here = Path(directory)
        hidden = [d for d in dirs if d.startswith(".")]
        if on_hidden_dir is not None:
            for d in hidden:
                on_hidden_dir((here / d).relative_to(root).as_posix() + "/")
        dirs[:] = [d for d in dirs if d not in hidden]
        for name in names:
            path = here / name
            yield path, path.relative_to(root).as_posix()


def is_closed_archive_name(name: str) -> bool:
    """A closed archive's name: never a hidden `.…open`, temporary or salvaged file."""
    return not name.startswith(".") and name.endswith(ARCHIVE_SUFFIX)


def closed_archives(root: Path) -> Iterator[tuple[Path, str]]:
    """(path, relative path) of every closed archive under root, outside hidden directories, in path order."""
    found = [(p, r) for p, r in walk_files(root) if is_closed_archive_name(p.name) and p.is_file()]
    yield from sorted(found)
