"""The pmws exception family.

    PmwsError                  exit code 2 unless said otherwise
    ├── ConfigError            a config file, env var or flag is wrong (names the key)
    ├── DiscoveryError         the discovery file or Gamma's answer cannot be used
    ├── FeedError              the websocket endpoint cannot be reached or spoken to
    ├── RestError              the CLOB REST endpoint cannot be reached
    ├── ArchiveError           an output cannot be written or read back (disk full, corrupt gzip)
    ├── OutputLocked           another live process already records into this output (exit 2)
    ├── UploadError            rclone, the remote, or verification failed
    └── VerifyError            an archive does not match its manifest

The CLI turns each into one red line on stderr and `typer.Exit(exit_code)`.
"""

from __future__ import annotations


class PmwsError(Exception):
    """Base of every error pmws reports to a user."""

    exit_code: int = 2


class ConfigError(PmwsError):
    """Malformed config: unknown key, wrong type, unreadable file."""


class DiscoveryError(PmwsError):
    """Missing or malformed discovery output, or no usable market."""

    exit_code = 1


class FeedError(PmwsError):
    """The websocket endpoint is unreachable or refuses us."""

    exit_code = 1


class RestError(PmwsError):
    """An HTTP endpoint is unreachable or answers garbage."""

    exit_code = 1


class ArchiveError(PmwsError):
    """An archive cannot be written or read (full disk, permissions, corrupt gzip)."""

    exit_code = 1


class ArchiveUnreadable(ArchiveError):
    """The file itself could not be read (missing, permissions, I/O error), as opposed to a bad stream."""


class OutputLocked(PmwsError):
    """Another live recorder holds the output's lock; the message names it (pid, host, start)."""


class UploadError(PmwsError):
    """rclone is missing or failed, or a remote copy does not verify."""

    exit_code = 1


class VerifyError(PmwsError):
    """An archive does not match its manifest."""

    exit_code = 1


def describe_network_error(url: str, exc: BaseException) -> str:
    """One line that says which endpoint failed and why, without a traceback."""
    reason = str(exc) or type(exc).__name__
    lowered = reason.lower()
    if (
        "name or service not known" in lowered
        or "nodename nor servname" in lowered
        or ("temporary failure in name resolution" in lowered)
    ):
        reason = f"DNS lookup failed ({reason})"
    return f"cannot reach {url}: {reason}"
