"""`pmws verify`: archives against their manifests, locally and (with a remote) their remote copies.

Local: size and sha256 against the manifest, the gzip stream read to its end (a corrupt or cut file fails),
every line a JSON object, the line count, and each `ws_frame` envelope's `payload_sha256` recomputed.
Remote: `pmws.transfer.remote.check_remote`, shared with `pmws upload`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pmws.archive.digest import Digests, check_against_manifest
from pmws.archive.files import closed_archives, read_file_manifest, read_sample_manifest, resolve_output
from pmws.archive.salvage import find_open_files, missing_manifests, repair_manifests
from pmws.errors import ConfigError, VerifyError
from pmws.lock import session_live
from pmws.manifest import FileManifest, OutputRecord
from pmws.rotation import session_of_name
from pmws.transfer.ledger import Ledger, deleted_locally, known_md5
from pmws.transfer.rclone import Rclone, join_remote
from pmws.transfer.remote import check_mode, check_remote

# --- what to verify -------------------------------------------------------------------------------------


@dataclass
class Target:
    """One archive to check: where it is locally and what its manifest promises."""

    path: Path
    relative_path: str  # under upload.source locally, under the remote root remotely
    sha256: str
    bytes: int
    lines: int | None
    manifest: Path


def targets_from_manifest_dir(manifest_dir: Path, source: Path) -> list[Target]:
    """Every archive described by a per-file manifest (`pmws run`)."""
    if not manifest_dir.is_dir():
        raise VerifyError(f"{manifest_dir}: no such manifest directory")
    return [_file_target(p, source) for p in sorted(manifest_dir.glob("*.manifest.json"))]


def archives_under(directory: Path) -> list[Path]:
    """Every closed archive below `directory` (never a hidden `.…open` file or its salvaged bytes)."""
    return [p for p, _ in closed_archives(directory)]


def targets_for_paths(paths: list[Path], manifest_dir: Path, source: Path) -> list[Target]:
    """Archives named on the command line (their manifests found by name), every archive under a directory
    named there, or manifests themselves."""
    out: list[Target] = []
    for path in paths:
        if path.is_dir():
            archives = archives_under(path)
            if not archives:
                raise VerifyError(f"{path}: no archives (*.jsonl.gz) under this directory")
            out += targets_for_paths(archives, manifest_dir, source)
        elif path.name.endswith(".manifest.json"):
            out.append(_file_target(path, source))
        elif path.name.endswith(".json"):
            out += targets_from_sample(path, source)
        else:
            manifest = manifest_dir / f"{path.name}.manifest.json"
            if not manifest.exists():
                raise VerifyError(f"{path}: no manifest {manifest}")
            target = _file_target(manifest, source)
            target.path = path
            out.append(target)
    return out


def targets_from_sample(manifest_path: Path, source: Path = Path(".")) -> list[Target]:
    """The outputs of a `pmws sample` (checkpoint 010b) manifest; remotely, at their path under source."""
    manifest = read_sample_manifest(manifest_path)
    if not manifest.outputs:
        raise VerifyError(f"{manifest_path}: not a sample manifest (no outputs list)")
    out = []
    for record in manifest.outputs:
        path = resolve_output(manifest_path, record)
        try:
            relative = path.resolve().relative_to(source.resolve()).as_posix()
        except ValueError:
            relative = f"{record.kind}/{path.name}"
        out.append(_target(record, path, relative, manifest_path))
    return out


def _file_target(manifest_path: Path, source: Path) -> Target:
    manifest = read_file_manifest(manifest_path)
    relative = manifest.relative_path or manifest_path.name
    under_source = source / relative
    recorded = Path(manifest.path) if manifest.path else under_source
    path = under_source if under_source.exists() or not recorded.exists() else recorded
    return _target(manifest, path, relative, manifest_path)


def _target(record: FileManifest | OutputRecord, path: Path, relative: str, manifest_path: Path) -> Target:
    if record.sha256 is None or record.bytes is None:
        raise VerifyError(f"{manifest_path}: no sha256/bytes for {path.name}")
    return Target(path, relative, record.sha256, record.bytes, record.lines, manifest_path)


# --- checking -------------------------------------------------------------------------------------------


def check_local(target: Target, *, with_md5: bool = False) -> tuple[list[str], Digests | None]:
    """Problems with the local archive against its manifest (none when it verifies), and its digests.

    One read, the check `pmws gate` makes too (`check_against_manifest`): the file is digested while its
    gzip stream, lines and payload hashes are checked."""
    check = check_against_manifest(
        target.path, sha256=target.sha256, size=target.bytes, lines=target.lines, with_md5=with_md5
    )
    return check.problems(), check.scan.digests if check.scan else None


@dataclass
class FileResult:
    target: Target
    local: str = "-"  # ok | FAIL | missing | shipped (…)
    remote: str = "-"  # ok (mode) | FAIL (mode) | - when not asked; the reasons are in `problems`
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass
class VerifyReport:
    results: list[FileResult]
    remote: str | None = None
    repaired: list[FileManifest] = field(default_factory=list)  # manifests --repair-manifests wrote
    repair_problems: list[str] = field(default_factory=list)  # archives it could not read back strictly
    warnings: list[str] = field(default_factory=list)  # e.g. torn ledger lines skipped

    @property
    def failed(self) -> list[FileResult]:
        return [r for r in self.results if not r.ok]

    @property
    def ok(self) -> bool:
        return bool(self.results) and not self.failed


def verify(
    paths: list[Path],
    *,
    manifest_dir: Path,
    remote: str | None = None,
    sample_manifest: Path | None = None,
    source: Path = Path("."),
    rclone: Rclone | None = None,
    mode: str = "auto",
    ledger_path: Path | None = None,
    repair: bool = False,
) -> VerifyReport:
    """Check the given archives (or every manifest in manifest_dir, or a sample's outputs).

    Checking a manifest directory also fails each closed archive under `source` that has no manifest;
    with `repair`, those that read back strictly (and whose writer is gone) get one first.
    A file `pmws upload` deleted after its remote copy verified (the ledger says so, same sha256) is not a
    local failure; with `remote`, its remote copy is checked like any other (MD5 from the ledger on S3).
    """
    check_mode(mode)
    if sample_manifest is not None and paths:
        raise ConfigError("give archive paths or --manifest, not both")
    repaired: list[FileManifest] = []
    repair_problems: list[str] = []
    unmanifested: list[FileResult] = []
    if sample_manifest is None and not paths:
        if repair:
            fixed = repair_manifests(source, manifest_dir)
            repaired, repair_problems = fixed.repaired, fixed.problems
        unmanifested = [
            _no_manifest(p, source, manifest_dir)
            for p in missing_manifests(source, manifest_dir)
            if not session_live(source, session_of_name(p.name))  # its live writer writes it any moment
        ]
        unmanifested += [
            _orphan(p, source, manifest_dir)
            for p in find_open_files(source)
            if not session_live(source, session_of_name(p.name))  # being written: not a problem
        ]
    if sample_manifest is not None:
        targets = targets_from_sample(sample_manifest, source)
    elif paths:
        targets = targets_for_paths(paths, manifest_dir, source)
    elif manifest_dir.is_dir() or not unmanifested:
        targets = targets_from_manifest_dir(manifest_dir, source)
    else:
        targets = []
    if not targets and not unmanifested:
        raise VerifyError(f"nothing to verify: no *.manifest.json in {manifest_dir}")
    ledger = Ledger(ledger_path) if ledger_path is not None else None
    shipped = deleted_locally(ledger) if ledger else {}
    md5s = known_md5(ledger) if ledger and remote else {}
    if remote is not None and rclone is None:
        rclone = Rclone()
    results = []
    for target in targets:
        result = FileResult(target)
        local_md5 = _check_local_copy(target, result, shipped, with_md5=remote is not None)
        if remote is not None and rclone is not None:
            check = check_remote(
                rclone,
                join_remote(remote, target.relative_path),
                sha256=target.sha256,
                size=target.bytes,
                mode=mode,
                local_md5=local_md5 or md5s.get(target.sha256),
            )
            result.remote = check.describe()
            if not check.ok:
                result.problems.append(f"remote: {check.detail}")
        results.append(result)
    results += unmanifested
    redacted = rclone.redact(remote) if rclone and remote else remote
    warnings = [w for w in [ledger.torn_warning() if ledger else None] if w]
    return VerifyReport(results, redacted, repaired, repair_problems, warnings)


def _no_manifest(path: Path, source: Path, manifest_dir: Path) -> FileResult:
    """A closed archive nobody can verify: a failure naming it (`--repair-manifests` writes one)."""
    manifest = manifest_dir / f"{path.name}.manifest.json"
    problem = f"local: no manifest {manifest} (pmws verify --repair-manifests writes one)"
    return _local_failure(path, source, manifest, "no manifest", problem)


def _orphan(path: Path, source: Path, manifest_dir: Path) -> FileResult:
    """A hidden `.open` file whose writer is gone (a kill): recorded data no closed archive holds yet."""
    problem = (
        "local: left open by a recorder that is gone (killed?); the next `pmws run` on this output "
        "directory salvages it into a closed archive with a `recovered` manifest"
    )
    return _local_failure(path, source, manifest_dir / f"{path.name}.manifest.json", "open orphan", problem)


def _local_failure(path: Path, source: Path, manifest: Path, local: str, problem: str) -> FileResult:
    """A file under `source` that fails verification before any digest is read."""
    target = Target(path, path.relative_to(source).as_posix(), "", 0, None, manifest)
    return FileResult(target, local=local, problems=[problem])


def _check_local_copy(
    target: Target, result: FileResult, shipped: dict[str, str], *, with_md5: bool
) -> str | None:
    """Fill in the local column; return the local MD5 when the file matches its manifest."""
    if not target.path.exists():
        if shipped.get(target.relative_path) == target.sha256:
            result.local = "shipped (deleted after verify)"
        else:
            result.local = "missing"
            result.problems.append(f"local: {target.path} is missing")
        return None
    problems, digests = check_local(target, with_md5=with_md5)
    result.local = "FAIL" if problems else "ok"
    result.problems += [f"local: {p}" for p in problems]
    if digests is not None and digests.sha256 == target.sha256:
        return digests.md5
    return None
