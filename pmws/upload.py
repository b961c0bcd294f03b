"""`pmws upload`: ship closed archives and their manifests with rclone; delete only what was proven safe.

Eligible: a non-hidden `*.jsonl.gz` under the source with its manifest, untouched for `min_age_seconds`
(never a `.open`, `.salvaged`, temporary or partial file). A file whose bytes no longer match its own manifest
is refused: never uploaded, never deleted. Each upload is verified on the remote
(`pmws.verify.check_remote`) and recorded in the ledger. With `cleanup_after_verify`, local files are
deleted at the end of the run, only if the whole run had no failure, and only files verified in this run;
manifests stay (or move to `shipped_manifest_dir`) as the record of what was shipped.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pmws.archive import file_digest
from pmws.config import Upload
from pmws.errors import ConfigError, PmwsError, UploadError
from pmws.ledger import Ledger
from pmws.manifest import read_manifest
from pmws.rclone import Rclone, join_remote
from pmws.verify import check_remote


@dataclass
class Candidate:
    path: Path
    manifest_path: Path
    relative_path: str
    sha256: str
    bytes: int


@dataclass
class FileOutcome:
    relative_path: str
    bytes: int
    action: str  # uploaded | already verified | refused | failed | would upload | skipped
    verified: str = "-"  # how, or why not
    deleted: bool = False


@dataclass
class UploadReport:
    outcomes: list[FileOutcome] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason) not eligible
    failures: int = 0
    dry_run: bool = False

    @property
    def ok(self) -> bool:
        return self.failures == 0


def find_candidates(
    source: Path, manifest_dir: Path, *, min_age_seconds: float, now: float | None = None
) -> tuple[list[Candidate], list[tuple[str, str]]]:
    """Closed archives with manifests, and what was passed over with the reason."""
    if not source.is_dir():
        raise UploadError(f"{source}: no such source directory")
    now = time.time() if now is None else now
    candidates, skipped = [], []
    for path in sorted(source.rglob("*")):
        if not path.is_file():
            continue
        relative = path.relative_to(source)
        if any(part.startswith(".") for part in relative.parts):
            skipped.append((str(relative), "hidden (open, salvaged or temporary)"))
            continue
        if not path.name.endswith(".jsonl.gz"):
            continue
        age = now - path.stat().st_mtime
        if age < min_age_seconds:
            skipped.append((str(relative), f"modified {age:.0f}s ago (< {min_age_seconds:g}s)"))
            continue
        manifest_path = manifest_dir / f"{path.name}.manifest.json"
        if not manifest_path.exists():
            skipped.append((str(relative), "no manifest"))
            continue
        manifest = read_manifest(manifest_path)
        candidates.append(
            Candidate(
                path,
                manifest_path,
                relative.as_posix(),
                str(manifest.get("sha256")),
                int(manifest.get("bytes", -1)),
            )
        )
    return candidates, skipped


def upload(
    settings: Upload,
    *,
    dry_run: bool = False,
    cleanup_after_verify: bool = False,
    verify_mode: str | None = None,
    rclone: Rclone | None = None,
    progress: Callable[[FileOutcome], None] | None = None,
) -> UploadReport:
    """Upload, verify, and (optionally) clean up; every step in the ledger."""
    if not settings.remote:
        raise ConfigError("upload.remote is not set (e.g. --remote s3-archive:bucket/orderbooks)")
    mode = verify_mode or settings.verify_mode
    source, manifest_dir = Path(settings.source), Path(settings.manifest_dir)
    candidates, skipped = find_candidates(source, manifest_dir, min_age_seconds=settings.min_age_seconds)
    report = UploadReport(skipped=skipped, dry_run=dry_run)
    if dry_run:
        for c in candidates:
            report.outcomes.append(FileOutcome(c.relative_path, c.bytes, "would upload"))
        return report
    rclone = rclone or Rclone(settings.rclone_binary, settings.rclone_config or None)
    ledger = Ledger(Path(settings.ledger_path))
    verified_before = ledger.verified()
    safe_to_delete: list[Candidate] = []
    for candidate in candidates:
        outcome = _ship(candidate, settings.remote, rclone, ledger, mode, verified_before)
        report.outcomes.append(outcome)
        if outcome.action in ("refused", "failed"):
            report.failures += 1
        elif outcome.verified.startswith("ok"):
            safe_to_delete.append(candidate)
        if progress is not None:
            progress(outcome)
    if cleanup_after_verify and report.ok:
        for candidate in safe_to_delete:
            _delete(candidate, ledger, settings, report)
    return report


def _ship(
    c: Candidate, remote: str, rclone: Rclone, ledger: Ledger, mode: str, verified_before: dict[str, str]
) -> FileOutcome:
    outcome = FileOutcome(c.relative_path, c.bytes, "uploaded")
    target = join_remote(remote, c.relative_path)
    record: dict[str, object] = {
        "file": c.path.name,
        "relative_path": c.relative_path,
        "remote": join_remote(remote, c.relative_path),
        "sha256": c.sha256,
        "bytes": c.bytes,
    }
    sha, size = file_digest(c.path)
    if (sha, size) != (c.sha256, c.bytes):
        ledger.append("refused", **record, detail="local bytes do not match their manifest")
        return FileOutcome(c.relative_path, c.bytes, "refused", "local file differs from its manifest")
    try:
        if verified_before.get(c.relative_path) == c.sha256:
            outcome.action = "already verified"
        else:
            rclone.copyto(c.path, target)
            rclone.copyto(c.manifest_path, join_remote(remote, "manifests", c.manifest_path.name))
            ledger.append("uploaded", **record)
        check = check_remote(rclone, target, sha256=c.sha256, size=c.bytes, local=c.path, mode=mode)
    except PmwsError as exc:
        ledger.append("failed", **record, detail=str(exc))
        return FileOutcome(c.relative_path, c.bytes, "failed", str(exc))
    if not check.ok:
        ledger.append("failed", **record, verify_mode=check.mode, detail=check.detail)
        return FileOutcome(c.relative_path, c.bytes, "failed", f"{check.mode}: {check.detail}")
    ledger.append("verified", **record, verify_mode=check.mode, md5=check.md5)
    outcome.verified = f"ok ({check.mode})"
    return outcome


def _delete(c: Candidate, ledger: Ledger, settings: Upload, report: UploadReport) -> None:
    try:
        os.unlink(c.path)
        if settings.shipped_manifest_dir:
            target = Path(settings.shipped_manifest_dir)
            target.mkdir(parents=True, exist_ok=True)
            shutil.move(str(c.manifest_path), target / c.manifest_path.name)
    except OSError as exc:
        report.failures += 1
        ledger.append("failed", relative_path=c.relative_path, detail=f"delete failed: {exc.strerror or exc}")
        return
    ledger.append("deleted", file=c.path.name, relative_path=c.relative_path, sha256=c.sha256, bytes=c.bytes)
    for outcome in report.outcomes:
        if outcome.relative_path == c.relative_path:
            outcome.deleted = True
