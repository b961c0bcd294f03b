"""Is a remote copy exactly the bytes a manifest describes? Shared by `pmws upload` and `pmws verify`.

The size always, then SHA-256 where the backend reports it (local, SFTP…), else MD5 (S3, GCS) against an MD5
of bytes whose sha256 matched the manifest, else the remote copy read back (`rclone cat`) and hashed. The mode
used is always reported.
"""

from __future__ import annotations

from dataclasses import dataclass

from pmws.archive.digest import Digests, Hasher
from pmws.errors import ConfigError
from pmws.transfer.rclone import Rclone

VERIFY_MODES = ("auto", "sha256", "md5", "download")


def check_mode(mode: str) -> str:
    """The verify mode, or ConfigError naming the key."""
    if mode not in VERIFY_MODES:
        raise ConfigError(f"upload.verify_mode must be one of {', '.join(VERIFY_MODES)}, got {mode!r}")
    return mode


def remote_digests(rclone: Rclone, remote_path: str) -> Digests:
    """Read the remote copy back (`rclone cat`) and hash it."""
    hasher = Hasher(with_md5=False)
    rclone.cat_remote(remote_path, hasher)
    return hasher.digests()


@dataclass(frozen=True)
class RemoteCheck:
    ok: bool
    mode: str  # the mode used: sha256 | md5 | download (or the one asked for, when it could not be used)
    detail: str
    md5: str | None = None  # the local MD5 compared with the remote's, for the ledger

    def describe(self) -> str:
        return f"{'ok' if self.ok else 'FAIL'} ({self.mode})"


def check_remote(
    rclone: Rclone,
    remote_path: str,
    *,
    sha256: str,
    size: int,
    mode: str = "auto",
    local_md5: str | None = None,
) -> RemoteCheck:
    """Is the remote copy exactly the bytes the manifest describes? Never a name or a size alone.

    `local_md5` must be the MD5 of bytes whose sha256 equals `sha256` (computed in the same read), so an MD5
    match proves the remote copy is the manifest's file.
    """
    entry = rclone.remote_entry(remote_path)
    if entry is None:
        return RemoteCheck(False, mode, "missing on the remote")
    if entry.size != size:
        return RemoteCheck(False, mode, f"remote size {entry.size} != manifest {size}")
    remote_sha, remote_md5 = entry.hashes.get("sha256"), entry.hashes.get("md5")
    if mode in ("auto", "sha256") and remote_sha:
        ok = remote_sha == sha256
        return RemoteCheck(ok, "sha256", "remote sha256 matches" if ok else "remote sha256 differs")
    if mode in ("auto", "md5") and remote_md5 and local_md5:
        ok = remote_md5 == local_md5
        return RemoteCheck(ok, "md5", "remote md5 matches" if ok else "remote md5 differs", local_md5)
    if mode == "sha256":
        return RemoteCheck(False, mode, "the remote reports no SHA-256 (use --verify-mode md5 or download)")
    if mode == "md5":
        why = "no local MD5 to compare with" if remote_md5 else "the remote reports no MD5"
        return RemoteCheck(False, mode, f"{why} (use --verify-mode download)")
    got = remote_digests(rclone, remote_path)
    if got.bytes != size:
        return RemoteCheck(False, "download", f"downloaded {got.bytes} bytes, manifest says {size}")
    ok = got.sha256 == sha256
    return RemoteCheck(
        ok, "download", "downloaded copy matches" if ok else "downloaded copy's sha256 differs"
    )
