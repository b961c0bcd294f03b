"""The one subprocess in pmws: rclone, called with argument lists (never a shell string).

The user's own rclone config and remotes are honoured (`--config` only when one is set). Anything rclone
prints passes through `Redactor` before it reaches a message: values of secret-looking keys in the rclone
config, and of `RCLONE_CONFIG_*` secret variables, never appear in pmws output, logs or the ledger.
"""

from __future__ import annotations

import configparser
import hashlib
import json
import os
import re
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pmws.errors import UploadError

SECRET_KEY = re.compile(r"(secret|password|pass|token|key|credential|sas_url|client_secret)", re.I)


@dataclass
class Redactor:
    """Replaces every known secret value with `***`."""

    secrets: set[str] = field(default_factory=set)

    @classmethod
    def from_sources(cls, config_path: str | None, env: Mapping[str, str]) -> Redactor:
        found: set[str] = set()
        for name, value in env.items():
            if name.startswith("RCLONE_") and SECRET_KEY.search(name) and value:
                found.add(value)
        if config_path and Path(config_path).is_file():
            parser = configparser.RawConfigParser()
            try:
                parser.read(config_path)
            except configparser.Error:
                pass
            for section in parser.sections():
                for key, value in parser.items(section):
                    if SECRET_KEY.search(key) and value:
                        found.add(value)
        return cls({s for s in found if len(s) >= 4})

    def __call__(self, text: str) -> str:
        for secret in sorted(self.secrets, key=len, reverse=True):
            text = text.replace(secret, "***")
        return text


@dataclass
class Rclone:
    """rclone at `binary`, with an optional `--config` file."""

    binary: str = "rclone"
    config: str | None = None
    timeout: float = 3600.0
    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    redact: Redactor = field(init=False)

    def __post_init__(self) -> None:
        resolved = shutil.which(self.binary)
        if resolved is None:
            raise UploadError(
                f"rclone not found: {self.binary!r} (install rclone or set upload.rclone_binary)"
            )
        self.binary = resolved
        self.redact = Redactor.from_sources(self.config or self._default_config(), self.env)

    def _default_config(self) -> str | None:
        return self.env.get("RCLONE_CONFIG") or str(Path.home() / ".config" / "rclone" / "rclone.conf")

    def command(self, *args: str) -> list[str]:
        base = [self.binary]
        if self.config:
            base += ["--config", self.config]
        return base + list(args)

    def run(self, *args: str) -> str:
        """Run rclone; its stdout, or UploadError with its first error line (redacted)."""
        try:
            done = subprocess.run(
                self.command(*args),
                capture_output=True,
                text=True,
                timeout=self.timeout,
                env=dict(self.env),
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise UploadError(f"rclone {args[0]} timed out after {self.timeout:g}s") from None
        except OSError as exc:
            raise UploadError(f"cannot run rclone: {exc.strerror or exc}") from None
        if done.returncode != 0:
            raise UploadError(f"rclone {args[0]} failed: {self.redact(_first_error(done.stderr))}")
        return done.stdout

    def copyto(self, local: Path, remote: str) -> None:
        self.run("copyto", str(local), remote)

    def stat(self, remote: str) -> dict[str, Any] | None:
        """Size and hashes the backend reports for one remote file, or None if it is not there."""
        try:
            listing = json.loads(
                self.run("lsjson", "--hash", "--files-only", "--no-mimetype", remote) or "[]"
            )
        except UploadError as exc:
            if "not found" in str(exc).lower() or "doesn't exist" in str(exc).lower():
                return None
            raise
        except json.JSONDecodeError:
            raise UploadError(f"rclone lsjson returned something that is not JSON for {remote}") from None
        name = remote.rstrip("/").rsplit("/", 1)[-1].rsplit(":", 1)[-1]
        for entry in listing:
            if entry.get("Name") == name or len(listing) == 1:
                return {
                    "size": entry.get("Size"),
                    "hashes": {k.lower(): v for k, v in (entry.get("Hashes") or {}).items()},
                }
        return None

    def sha256_of_remote(self, remote: str) -> tuple[str, int]:
        """Read the remote copy back (`rclone cat`) and hash it: (sha256, bytes)."""
        sha = hashlib.sha256()
        size = 0
        try:
            with subprocess.Popen(
                self.command("cat", remote),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=dict(self.env),
            ) as proc:
                assert proc.stdout is not None
                while chunk := proc.stdout.read(1 << 20):
                    sha.update(chunk)
                    size += len(chunk)
                stderr = proc.stderr.read().decode("utf-8", "replace") if proc.stderr else ""
                code = proc.wait(timeout=self.timeout)
        except OSError as exc:
            raise UploadError(f"cannot run rclone: {exc.strerror or exc}") from None
        if code != 0:
            raise UploadError(f"rclone cat failed: {self.redact(_first_error(stderr))}")
        return sha.hexdigest(), size

    def deletefile(self, remote: str) -> None:
        self.run("deletefile", remote)


def _first_error(stderr: str) -> str:
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if "ERROR" in line or "Failed" in line or "error" in line.lower()]
    return (errors or lines or ["no error output"])[0][:300]


def join_remote(remote: str, *parts: str) -> str:
    """`remote:base` + relative parts, with exactly one slash between them."""
    base = remote.rstrip("/")
    tail = "/".join(p.strip("/") for p in parts if p)
    if base.endswith(":"):
        return base + tail
    return f"{base}/{tail}" if tail else base
