"""Who may write where: OS locks for output directories and recording sessions.

Two kinds of lock, both `fcntl.flock` on a hidden file, so the kernel frees them when the holder dies
(even by kill -9): a stale lock file never blocks a restart, only a live holder does.

* **Output lock** (`.pmws-<owner>.lock` in each output directory): one recorder per shard (or one `sample`
  per manifest) at a time. Taken before anything is touched; a second taker fails with the holder's pid,
  host, start time and session, read from the JSON the holder wrote into the file.
* **Session lock** (`.pmws-session-<session_id>.lock` in the archive root): held by a live session for
  its whole life. A `.open` file names its session, so salvage can prove its writer is gone by taking
  that session's lock without blocking: held means a live writer (maybe another shard sharing the
  directory), and the file is left alone.

Lock files are hidden and end in `.lock`: upload and verify never take them for archives.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from pmws.errors import ArchiveError, OutputLocked

LOCK_PREFIX = ".pmws-"
LOCK_SUFFIX = ".lock"


def is_lock_file(name: str) -> bool:
    return name.startswith(LOCK_PREFIX) and name.endswith(LOCK_SUFFIX)


def output_lock_path(directory: Path, owner: str) -> Path:
    """`<dir>/.pmws-<owner>.lock`; `owner` names what is locked (e.g. `run-shard-0of2`)."""
    safe = "".join(c if c.isalnum() or c in "-_." else "-" for c in owner)
    return directory / f"{LOCK_PREFIX}{safe}{LOCK_SUFFIX}"


@contextlib.contextmanager
def recovery_lock(root: Path) -> Iterator[None]:
    """One recovery (salvage, manifest repair) at a time per archive root, waiting for the other.

    Recorders of several shards (and `pmws verify --repair-manifests`) may share a root; a file whose
    session left no lock counts as gone to each of them, so without this two could salvage it at once.
    """
    fh = _open(root / f"{LOCK_PREFIX}recovery{LOCK_SUFFIX}")
    try:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        yield
    finally:
        fh.close()


@contextlib.contextmanager
def try_lock(path: Path) -> Iterator[bool]:
    """Take `path`'s lock without waiting: inside, True while this process holds it, False if another does.

    For a lock of its own file name (the upload ledger's `<ledger>.lock`); ArchiveError if it cannot be
    created."""
    fh = _open(path)
    try:
        yield _try_flock(fh)
    finally:
        fh.close()


def session_lock_path(root: Path, session_id: str) -> Path:
    return root / f"{LOCK_PREFIX}session-{session_id}{LOCK_SUFFIX}"


@dataclass
class HeldLocks:
    """Locks this process holds; `release()` (or leaving the `with`) frees them."""

    files: list[tuple[Path, IO[bytes]]] = field(default_factory=list)
    unlink_on_release: set[Path] = field(default_factory=set)

    def release(self) -> None:
        for path, fh in reversed(self.files):
            if path in self.unlink_on_release:
                # Session ids are never reused: deleting the file while holding it is safe.
                with contextlib.suppress(OSError):
                    path.unlink()
            with contextlib.suppress(OSError):
                fh.close()  # closing the descriptor releases the flock
        self.files.clear()

    def __enter__(self) -> HeldLocks:
        return self

    def __exit__(self, *_: object) -> None:
        self.release()


def _open(path: Path) -> IO[bytes]:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return open(path, "a+b")  # noqa: SIM115 - held until release()
    except OSError as exc:
        raise ArchiveError(
            f"{path.parent}: not writable (cannot create lock file {path.name}: {exc.strerror or exc})"
        ) from exc


def _try_flock(fh: IO[bytes]) -> bool:
    try:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def holder_text(path: Path) -> str:
    """`pid 123 on host h since 2026-…Z (session …)` from a lock file, or what is known."""
    try:
        info = json.loads(path.read_text(encoding="utf-8") or "{}")
    except (OSError, ValueError):
        info = {}
    if not isinstance(info, dict) or "pid" not in info:
        return "another process (no holder details in the lock file yet)"
    session = f"session {info['session_id']}, " if info.get("session_id") else ""
    return (
        f"pid {info.get('pid')} on host {info.get('host')} since {info.get('started_at_utc')} "
        f"({session}{info.get('command')})"
    )


def _stamp(fh: IO[bytes], *, session_id: str | None, command: str) -> None:
    info = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started_at_utc": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "session_id": session_id,
        "command": command,
    }
    fh.seek(0)
    fh.truncate()
    fh.write(json.dumps(info, sort_keys=True).encode() + b"\n")
    fh.flush()


def acquire(
    directories: list[Path],
    *,
    owner: str,
    session_id: str | None,
    command: str,
    session_root: Path | None = None,
) -> HeldLocks:
    """Take the output lock of `owner` in every directory (and the session lock), or OutputLocked.

    Nothing is written but the lock files: call this before salvage, before binding ports.
    """
    held = HeldLocks()
    seen: set[Path] = set()
    try:
        for directory in directories:
            path = output_lock_path(directory, owner)
            key = path.resolve()
            if key in seen:  # one directory given twice (manifests beside archives): one lock
                continue
            seen.add(key)
            fh = _open(path)
            if not _try_flock(fh):
                fh.close()
                raise OutputLocked(
                    f"{path}: output already being written by {holder_text(path)}; "
                    f"two {command} processes for the same output would destroy each other's files"
                )
            _stamp(fh, session_id=session_id, command=command)
            held.files.append((path, fh))
        if session_root is not None and session_id is not None:
            path = session_lock_path(session_root, session_id)
            fh = _open(path)
            if not _try_flock(fh):  # a session id is unique: only a bug gets here
                fh.close()
                raise OutputLocked(f"{path}: session {session_id} is already live ({holder_text(path)})")
            _stamp(fh, session_id=session_id, command=command)
            held.files.append((path, fh))
            held.unlink_on_release.add(path)
    except BaseException:
        held.release()
        raise
    return held


@contextlib.contextmanager
def session_gone(root: Path, session_id: str | None) -> Iterator[bool]:
    """While inside, True if the session's writer is provably gone (its lock taken here), else False.

    A file of no known session, or whose session left no lock file (older pmws), counts as gone: the
    output lock already keeps a second recorder of the same shard away.
    """
    if session_id is None:
        yield True
        return
    path = session_lock_path(root, session_id)
    if not path.exists():
        yield True
        return
    try:
        fh = open(path, "r+b")  # noqa: SIM115 - closed below
    except FileNotFoundError:  # released (and removed) just now: the writer is gone
        yield True
        return
    except OSError as exc:
        raise ArchiveError(f"{path}: cannot open lock file ({exc.strerror or exc})") from exc
    try:
        if not _try_flock(fh):
            yield False
            return
        yield True
    finally:
        fh.close()


def session_live(root: Path, session_id: str | None) -> bool:
    """Does a live process hold this session's lock right now?"""
    with session_gone(root, session_id) as gone:
        return not gone


def remove_stale_session_lock(root: Path, session_id: str) -> None:
    """Delete a dead session's lock file (only if nobody holds it)."""
    path = session_lock_path(root, session_id)
    try:
        fh = open(path, "r+b")  # noqa: SIM115 - closed below
    except OSError:
        return
    try:
        if _try_flock(fh):
            with contextlib.suppress(OSError):
                path.unlink()
    finally:
        fh.close()
