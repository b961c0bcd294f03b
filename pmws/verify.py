"""`pmws verify`: archives against their manifests, locally and (with a remote) their remote copies.

Local: gzip integrity, every line parses, line count, bytes, sha256, each envelope's payload_sha256.
Remote: size, plus SHA-256 where the backend reports it (local, SFTP…), else MD5 (S3) against an MD5 computed
from the local file, else the remote copy read back and hashed. The mode used is always reported.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from pmws.archive import file_digest, iter_gzip_lines
from pmws.envelope import payload_matches
from pmws.errors import ArchiveError, VerifyError
from pmws.manifest import read_manifest, resolve_output
from pmws.rclone import Rclone, join_remote

VERIFY_MODES = ("auto", "sha256", "md5", "download")


@dataclass
class RemoteCheck:
    ok: bool
    mode: str
    detail: str
    md5: str | None = None


@dataclass
class Target:
    """One archive to check: where it is locally and what its manifest promises."""

    name: str
    path: Path
    relative_path: str
    sha256: str
    bytes: int
    lines: int | None


@dataclass
class Result:
    target: Target
    local: str = "-"  # ok | missing | the problem
    remote: str = "-"
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def md5_of(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def check_remote(
    rclone: Rclone,
    remote_path: str,
    *,
    sha256: str,
    size: int,
    local: Path | None,
    mode: str = "auto",
    known_md5: str | None = None,
) -> RemoteCheck:
    """Is the remote copy the bytes the manifest describes? Never trusts a name or a size alone."""
    if mode not in VERIFY_MODES:
        raise VerifyError(f"unknown verify mode {mode!r}; use one of {', '.join(VERIFY_MODES)}")
    stat = rclone.stat(remote_path)
    if stat is None:
        return RemoteCheck(False, mode, "missing on the remote")
    if stat["size"] != size:
        return RemoteCheck(False, mode, f"remote size {stat['size']} != manifest {size}")
    hashes = stat["hashes"]
    if mode in ("auto", "sha256") and hashes.get("sha256"):
        ok = hashes["sha256"] == sha256
        return RemoteCheck(ok, "sha256", "remote sha256 matches" if ok else "remote sha256 differs")
    if mode in ("auto", "md5") and hashes.get("md5"):
        md5 = known_md5 or (md5_of(local) if local is not None and local.exists() else None)
        if md5 is not None:
            ok = hashes["md5"] == md5
            return RemoteCheck(
                ok, "md5", "remote md5 matches the local file's" if ok else "remote md5 differs", md5
            )
    if mode in ("sha256", "md5"):
        return RemoteCheck(
            False, mode, f"the backend does not report {mode} here; use --verify-mode download"
        )
    remote_sha, remote_size = rclone.sha256_of_remote(remote_path)
    ok = remote_sha == sha256 and remote_size == size
    return RemoteCheck(
        ok, "download", "downloaded copy's sha256 matches" if ok else "downloaded copy differs"
    )


def check_local(target: Target) -> list[str]:
    """Problems with the local archive against its manifest (empty when it verifies)."""
    problems = []
    sha, size = file_digest(target.path)
    if size != target.bytes:
        problems.append(f"bytes {size} != manifest {target.bytes}")
    if sha != target.sha256:
        problems.append("sha256 differs from the manifest")
    lines = bad_json = bad_payload = 0
    try:
        for line in iter_gzip_lines(target.path):
            lines += 1
            try:
                row = orjson.loads(line)
            except orjson.JSONDecodeError:
                bad_json += 1
                continue
            if isinstance(row, dict) and row.get("record_type") == "ws_frame" and not payload_matches(row):
                bad_payload += 1
    except ArchiveError as exc:
        problems.append(str(exc))
    if bad_json:
        problems.append(f"{bad_json} lines are not JSON")
    if bad_payload:
        problems.append(f"{bad_payload} envelopes whose payload_sha256 differs")
    if target.lines is not None and lines != target.lines and not any("gzip" in p for p in problems):
        problems.append(f"lines {lines} != manifest {target.lines}")
    return problems


def targets_from_manifest_dir(manifest_dir: Path, source: Path) -> list[Target]:
    """Every archive described by a per-file manifest (`pmws run`)."""
    if not manifest_dir.is_dir():
        raise VerifyError(f"{manifest_dir}: no such manifest directory")
    return [_target(read_manifest(p), source) for p in sorted(manifest_dir.glob("*.manifest.json"))]


def targets_for_paths(paths: list[Path], manifest_dir: Path, source: Path) -> list[Target]:
    out = []
    for path in paths:
        manifest = manifest_dir / f"{path.name}.manifest.json"
        if not manifest.exists():
            raise VerifyError(f"{path}: no manifest {manifest}")
        target = _target(read_manifest(manifest), source)
        target.path = path
        out.append(target)
    return out


def targets_from_sample(manifest_path: Path) -> list[Target]:
    """The outputs of a `pmws sample` (checkpoint 010b) manifest."""
    manifest = read_manifest(manifest_path)
    outputs = manifest.get("outputs")
    if not isinstance(outputs, list):
        raise VerifyError(f"{manifest_path}: no outputs list")
    out = []
    for record in outputs:
        path = resolve_output(manifest_path, record)
        session = str(manifest.get("session_id", ""))
        kind = str(record.get("kind"))
        out.append(
            Target(
                path.name,
                path,
                f"ws_sample/{kind}/{session}/{path.name}",
                str(record.get("sha256")),
                int(record.get("bytes", -1)),
                record.get("lines"),
            )
        )
    return out


def _target(manifest: dict[str, Any], source: Path) -> Target:
    relative = str(manifest.get("relative_path") or manifest.get("file"))
    recorded = Path(str(manifest.get("path", "")))
    path = recorded if recorded.exists() else source / relative
    return Target(
        str(manifest.get("file")),
        path,
        relative,
        str(manifest.get("sha256")),
        int(manifest.get("bytes", -1)),
        manifest.get("lines"),
    )


def verify(
    targets: list[Target], *, rclone: Rclone | None = None, remote: str | None = None, mode: str = "auto"
) -> list[Result]:
    """Check every target locally (if present) and on the remote (if given)."""
    results = []
    for target in targets:
        result = Result(target)
        if target.path.exists():
            problems = check_local(target)
            result.local = "ok" if not problems else "; ".join(problems)
            result.problems += [f"local: {p}" for p in problems]
        elif remote is None:
            result.local = "missing"
            result.problems.append("local: file is missing")
        else:
            result.local = "not here (shipped)"
        if remote is not None and rclone is not None:
            check = check_remote(
                rclone,
                join_remote(remote, target.relative_path),
                sha256=target.sha256,
                size=target.bytes,
                local=target.path,
                mode=mode,
            )
            result.remote = f"{'ok' if check.ok else 'FAIL'} ({check.mode}: {check.detail})"
            if not check.ok:
                result.problems.append(f"remote: {check.detail}")
        results.append(result)
    return results
