"""`pmws upload`: ship closed archives and their manifests with rclone; delete only what was proven safe.

Eligible: a non-hidden `*.jsonl.gz` under `source` with its manifest (`<manifest_dir>/<name>.manifest.json`),
untouched for `min_age_seconds`; never a `.open`, `.salvaged` or temporary file. Before anything is sent the
file is hashed again: if it no longer matches its own manifest it is refused (never uploaded or deleted).

Per remote directory (one hour of one stream): copy each file to `<remote>/<relative_path>`, list the
directory once (`rclone lsjson`), verify each copy (`transfer.remote.check_remote`), then send the verified
files' manifests to `<remote>/manifests/`. Every step is a ledger line.

Failures: the first rclone error stops the run (it is almost always the network, the credentials or the
bucket, and rclone has already retried); a copy that does not verify is recorded and the run goes on. With
`cleanup_after_verify`, local files are deleted at the end, only if nothing failed in this run, and only
those verified in this run. Refused files do not block the cleanup of others (they would block it forever).
The next run sends again whatever failed: a failure after a verification cancels it in the ledger.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from itertools import groupby
from pathlib import Path

from pmws.archive.digest import Digests, local_digests
from pmws.archive.files import ARCHIVE_SUFFIX, read_file_manifest, walk_files
from pmws.config import Upload
from pmws.errors import ArchiveError, ConfigError, UploadError
from pmws.lock import is_lock_file
from pmws.transfer.ledger import Ledger, already_verified
from pmws.transfer.rclone import Rclone, join_remote, split_remote, which
from pmws.transfer.remote import check_mode, check_remote

#: a closed archive nobody can verify: reported as a failure (`pmws verify --repair-manifests` fixes it)
NO_MANIFEST = "no manifest"


class Action(StrEnum):
    WOULD_UPLOAD = "would upload"
    UPLOADED = "uploaded"
    ALREADY_VERIFIED = "already verified"
    REFUSED = "refused"
    FAILED = "failed"
    NOT_ATTEMPTED = "not attempted"


PROBLEMS = (Action.REFUSED, Action.FAILED, Action.NOT_ATTEMPTED)


@dataclass
class Candidate:
    """A closed archive with its manifest, as found on disk."""

    path: Path
    manifest_path: Path
    relative_path: str
    sha256: str
    bytes: int
    mtime_ns: int
    problem: str | None = None  # the manifest cannot be used: the file is refused
    digests: Digests | None = None


@dataclass
class FileOutcome:
    relative_path: str
    bytes: int
    action: Action
    verified: str = "-"  # ok (sha256 | md5 | download), FAIL (mode), or why it was not checked
    deleted: bool = False
    detail: str = ""


@dataclass(frozen=True)
class UploadProgress:
    """Sent after each file is handled: totals for the run and the file just done."""

    files_total: int
    bytes_total: int
    files_done: int
    bytes_done: int
    relative_path: str
    bytes: int


@dataclass
class UploadReport:
    remote: str  # redacted
    outcomes: list[FileOutcome] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (relative path, why not eligible)
    dry_run: bool = False
    cleanup: str = ""  # why cleanup did not happen or was incomplete, when it was asked for
    warnings: list[str] = field(default_factory=list)  # e.g. torn ledger lines skipped

    @property
    def failures(self) -> int:
        return sum(o.action in PROBLEMS for o in self.outcomes)

    @property
    def missing_manifests(self) -> list[str]:
        """Closed archives (past min_age_seconds) that have no manifest: never uploaded, and a failure."""
        return [path for path, reason in self.skipped if reason == NO_MANIFEST]

    @property
    def ok(self) -> bool:
        """Every eligible file was uploaded and verified (or could be); no closed archive lacks a manifest."""
        return self.failures == 0 and not self.cleanup and not self.missing_manifests

    def count(self, action: Action) -> int:
        return sum(o.action == action for o in self.outcomes)

    @property
    def deleted(self) -> int:
        return sum(o.deleted for o in self.outcomes)


def find_candidates(
    source: Path, manifest_dir: Path, *, min_age_seconds: float, now: float | None = None
) -> tuple[list[Candidate], list[tuple[str, str]]]:
    """Closed archives with manifests, and what was passed over with the reason, in path order."""
    if not source.is_dir():
        raise UploadError(f"{source}: no such source directory (upload.source)")
    now = time.time() if now is None else now
    candidates, skipped = [], []
    for path, relative in walk_files(source, on_hidden_dir=lambda d: skipped.append((d, "hidden directory"))):
        if is_lock_file(path.name):  # a recorder's lock, not data: not even worth a "not eligible" line
            continue
        manifest_path = manifest_dir / f"{path.name}.manifest.json"
        try:
            reason = _not_eligible(path, now, min_age_seconds)
            if reason is None and not manifest_path.is_file():
                reason = NO_MANIFEST
            if reason is None:
                candidates.append(_candidate(path, manifest_path, relative))
        except FileNotFoundError:
            reason = "gone while listing"
        if reason is not None:
            skipped.append((relative, reason))
    candidates.sort(key=lambda c: c.relative_path)
    return candidates, sorted(skipped)


def _not_eligible(path: Path, now: float, min_age_seconds: float) -> str | None:
    name = path.name
    if name.endswith(".open"):
        return "open (still being written)"
    if name.endswith(".salvaged"):
        return "salvaged orphan (kept for inspection)"
    if name.startswith("."):
        return "hidden or temporary"
    if not name.endswith(ARCHIVE_SUFFIX):
        return "not a closed archive"
    if path.is_symlink():
        return "symlink"
    age = now - path.stat().st_mtime
    if age < min_age_seconds:
        return f"modified {max(age, 0):.0f}s ago (< min_age_seconds {min_age_seconds:g})"
    return None


def _candidate(path: Path, manifest_path: Path, relative: str) -> Candidate:
    mtime_ns = path.stat().st_mtime_ns
    try:
        manifest = read_file_manifest(manifest_path)
    except ArchiveError as exc:
        return Candidate(path, manifest_path, relative, "", -1, mtime_ns, problem=str(exc))
    problem = None
    if manifest.file not in ("", path.name):
        problem = f"{manifest_path} describes {manifest.file}, not {path.name}"
    return Candidate(path, manifest_path, relative, manifest.sha256, manifest.bytes, mtime_ns, problem)


def upload(
    settings: Upload,
    *,
    dry_run: bool = False,
    cleanup_after_verify: bool = False,
    progress: Callable[[UploadProgress], None] | None = None,
    verify_mode: str | None = None,
    rclone: Rclone | None = None,
) -> UploadReport:
    """Upload, verify and (optionally) clean up; every step in the ledger. A dry run changes nothing."""
    mode = check_mode(verify_mode or settings.verify_mode)
    if not settings.remote:
        raise ConfigError("upload.remote is not set (e.g. --remote s3-archive:bucket/orderbooks)")
    candidates, skipped = find_candidates(
        Path(settings.source), Path(settings.manifest_dir), min_age_seconds=settings.min_age_seconds
    )
    rclone = rclone or Rclone(settings.rclone_binary, settings.rclone_config or None)
    report = UploadReport(rclone.redact(settings.remote), skipped=skipped, dry_run=dry_run)
    ledger = Ledger(Path(settings.ledger_path), redact=rclone.redact)
    if dry_run:
        rclone.probe(settings.remote)  # read-only: a typo in the remote shows up before the real run
        _plan(candidates, report, already_verified(ledger, remote=report.remote), cleanup_after_verify)
        report.warnings += filter(None, [ledger.torn_warning()])
        return report
    if which(rclone.binary) is None:
        raise UploadError(f"rclone not found: {rclone.binary} (install rclone or set upload.rclone_binary)")
    with ledger.lock():
        shipment = Shipment(settings, rclone, ledger, mode, report, cleanup_after_verify, progress)
        shipment.run(candidates)
    report.warnings += filter(None, [ledger.torn_warning()])
    return report


def _plan(candidates: list[Candidate], report: UploadReport, done: dict[str, str], cleanup: bool) -> None:
    """What a real run would do, read-only; hashes are recomputed so refusals show up."""
    then = "; then delete" if cleanup else ""
    for c in candidates:
        known = done.get(c.relative_path) == c.sha256
        if known and not cleanup:
            report.outcomes.append(FileOutcome(c.relative_path, c.bytes, Action.ALREADY_VERIFIED, "ledger"))
            continue
        problem = c.problem or _mismatch(c, local_digests(c.path, with_md5=False))
        if problem:
            outcome = FileOutcome(c.relative_path, c.bytes, Action.REFUSED, detail=problem)
        elif known:
            outcome = FileOutcome(c.relative_path, c.bytes, Action.ALREADY_VERIFIED, "would re-verify" + then)
        else:
            outcome = FileOutcome(c.relative_path, c.bytes, Action.WOULD_UPLOAD, "would verify" + then)
        report.outcomes.append(outcome)


def _mismatch(c: Candidate, digests: Digests) -> str | None:
    if digests.bytes != c.bytes:
        return f"the file has {digests.bytes} bytes, its manifest says {c.bytes}: changed after it was closed"
    if digests.sha256 != c.sha256:
        return "the file's sha256 does not match its manifest: changed after it was closed"
    return None


@dataclass
class Shipment:
    """One real run and the state its steps share: why it stopped, what may be deleted."""

    settings: Upload
    rclone: Rclone
    ledger: Ledger
    mode: str
    report: UploadReport
    cleanup: bool
    progress: Callable[[UploadProgress], None] | None
    stopped: str = ""  # the rclone error that ended the run
    verify_failed: bool = False
    deletable: list[tuple[Candidate, FileOutcome]] = field(default_factory=list)
    verified_before: dict[str, str] = field(default_factory=dict)
    _total: tuple[int, int] = (0, 0)
    _done: tuple[int, int] = (0, 0)

    def run(self, candidates: list[Candidate]) -> None:
        self.verified_before = already_verified(self.ledger, remote=self.report.remote)
        self._total = (len(candidates), sum(max(c.bytes, 0) for c in candidates))
        for _, group in groupby(candidates, key=lambda c: split_remote(self.remote_of(c))[0]):
            self._ship_directory(list(group))
        if self.cleanup:
            self._clean_up()

    def remote_of(self, c: Candidate) -> str:
        return join_remote(self.settings.remote, c.relative_path)

    def _ship_directory(self, members: list[Candidate]) -> None:
        """Copy what needs copying, then verify the directory's copies against one listing."""
        to_verify = []
        for c in members:
            if self.stopped:
                self._outcome(c, Action.NOT_ATTEMPTED, detail="the run stopped at the rclone error above")
                continue
            outcome = self._send(c)
            if outcome is not None:
                to_verify.append((c, outcome))
        for c, outcome in to_verify:
            self._verify(c, outcome)

    def _send(self, c: Candidate) -> FileOutcome | None:
        """Skip, refuse or copy one file; its outcome when its remote copy is to be verified now."""
        known = self.verified_before.get(c.relative_path) == c.sha256
        if known and not self.cleanup:
            self._outcome(c, Action.ALREADY_VERIFIED, verified="ledger")
            return None
        problem = c.problem
        if problem is None:
            c.digests = local_digests(c.path, with_md5=self.mode in ("auto", "md5"))
            problem = _mismatch(c, c.digests)
        if problem is not None:
            self.ledger.append("refused", **self._fields(c), detail=problem)
            self._outcome(c, Action.REFUSED, detail=problem)
            return None
        if known:  # cleanup asked: the remote copy is checked again before the delete
            return self._outcome(c, Action.ALREADY_VERIFIED)
        try:
            self.rclone.copy_file(c.path, self.remote_of(c))
        except UploadError as exc:
            self._fail(c, str(exc), stop=True)
            return None
        self.ledger.append("uploaded", **self._fields(c))
        return self._outcome(c, Action.UPLOADED)

    def _verify(self, c: Candidate, outcome: FileOutcome) -> None:
        assert c.digests is not None
        try:
            check = check_remote(
                self.rclone,
                self.remote_of(c),
                sha256=c.sha256,
                size=c.bytes,
                mode=self.mode,
                local_md5=c.digests.md5,
            )
        except UploadError as exc:
            self._fail(c, str(exc), stop=True, outcome=outcome)
            return
        outcome.verified = check.describe()
        if not check.ok:
            self.verify_failed = True
            self._fail(c, check.detail, outcome=outcome, verify_mode=check.mode)
            return
        # The manifest goes before the ledger says `verified`: a kill between the two leaves the file to be
        # sent again, never a verified remote copy without its manifest (that a cleanup would then delete).
        # Before a cleanup it is sent again too (idempotent), in case an earlier run was stopped that way.
        manifest_remote = join_remote(self.settings.remote, "manifests", c.manifest_path.name)
        try:
            self.rclone.copy_file(c.manifest_path, manifest_remote)
        except UploadError as exc:
            self._fail(c, f"manifest: {exc}", stop=True, outcome=outcome)
            return
        self.ledger.append("verified", **self._fields(c), md5=check.md5, verify_mode=check.mode)
        self.deletable.append((c, outcome))

    def _fail(
        self,
        c: Candidate,
        detail: str,
        *,
        stop: bool = False,
        outcome: FileOutcome | None = None,
        verify_mode: str | None = None,
    ) -> None:
        self.ledger.append("failed", **self._fields(c), verify_mode=verify_mode, detail=detail)
        if stop and not self.stopped:
            self.stopped = detail
        if outcome is None:
            self._outcome(c, Action.FAILED, detail=detail)
        else:
            outcome.action, outcome.detail = Action.FAILED, detail

    def _clean_up(self) -> None:
        """Delete the local files verified in this run, unless anything failed in it."""
        if self.stopped or self.verify_failed:
            if self.deletable:
                self.report.cleanup = "nothing deleted: a failure occurred in this run"
            return
        shipped = self.settings.shipped_manifest_dir
        for c, outcome in self.deletable:
            self._delete(c, outcome, Path(shipped) if shipped else None)

    def _delete(self, c: Candidate, outcome: FileOutcome, shipped_dir: Path | None) -> None:
        try:
            if c.path.stat().st_mtime_ns != c.mtime_ns:
                self._fail(c, "changed during the upload; kept", outcome=outcome)
                return
            c.path.unlink()
        except OSError as exc:
            self._fail(c, f"cannot delete ({exc.strerror or exc})", outcome=outcome)
            return
        self.ledger.append("deleted", **self._fields(c))
        outcome.deleted = True
        if shipped_dir is not None:
            try:
                shipped_dir.mkdir(parents=True, exist_ok=True)
                shutil.move(c.manifest_path, shipped_dir / c.manifest_path.name)
            except OSError as exc:
                self.report.cleanup = f"cannot move {c.manifest_path.name} ({exc.strerror or exc})"

    def _fields(self, c: Candidate) -> dict[str, object]:
        return {
            "file": c.path.name,
            "relative_path": c.relative_path,
            "remote": self.remote_of(c),
            "sha256": c.sha256 or None,
            "bytes": c.bytes,
        }

    def _outcome(self, c: Candidate, action: Action, verified: str = "-", detail: str = "") -> FileOutcome:
        outcome = FileOutcome(c.relative_path, c.bytes, action, verified, detail=detail)
        self.report.outcomes.append(outcome)
        self._done = (self._done[0] + 1, self._done[1] + max(c.bytes, 0))
        if self.progress is not None:
            self.progress(UploadProgress(*self._total, *self._done, c.relative_path, max(c.bytes, 0)))
        return outcome
