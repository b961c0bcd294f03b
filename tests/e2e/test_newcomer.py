"""A newcomer's session with no config file: `pmws run --simulate`, then `pmws verify` in the same directory,
`pmws verify DIR`, and `pmws upload --dry-run` that finds a mistyped remote before the real run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from pmws.cli import app
from tests.conftest import TIME_FACTOR
from tests.e2e.test_upload import archive, local_remote, write_config

__all__ = ["local_remote"]  # the fixture, used below


def invoke(*args: str) -> Any:
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "250"})


def record_with_defaults(seconds: float) -> str:
    """`pmws run --simulate` with no config in the current directory until SIGTERM; its output."""
    env = {**os.environ, "PMWS_METRICS__PORT": "0"}  # the one default a parallel test run could collide on
    proc = subprocess.Popen(
        [sys.executable, "-m", "pmws", "run", "--simulate", "--no-live"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    deadline = time.monotonic() + 20 * TIME_FACTOR
    while not list(Path("raw_orderbooks").rglob(".*.open")):
        assert time.monotonic() < deadline and proc.poll() is None, "the recorder did not start"
        time.sleep(0.05)
    time.sleep(seconds * TIME_FACTOR)
    proc.send_signal(signal.SIGTERM)
    output, _ = proc.communicate(timeout=30 * TIME_FACTOR)
    assert proc.returncode == 0, output
    return output


def test_run_then_verify_in_the_same_directory_with_no_config() -> None:
    record_with_defaults(2)
    manifests = sorted(Path("raw_orderbooks/manifests").glob("*.manifest.json"))
    archives = sorted(Path("raw_orderbooks/polymarket").rglob("*.jsonl.gz"))
    assert manifests and len(manifests) == len(archives)  # nothing written outside the working directory

    everything = invoke("verify")
    assert everything.exit_code == 0, everything.output
    assert f"{len(archives)} archives, 0 failed" in everything.output

    under_dir = invoke("verify", "raw_orderbooks/polymarket/ws_raw")
    ws_raw = [a for a in archives if "ws_raw" in a.parts]
    assert under_dir.exit_code == 0 and f"{len(ws_raw)} archives, 0 failed" in under_dir.output

    data = bytearray(ws_raw[0].read_bytes())
    data[len(data) // 2] ^= 0xFF
    ws_raw[0].write_bytes(bytes(data))
    broken = invoke("verify", "raw_orderbooks/polymarket")
    assert broken.exit_code == 1 and f"{len(archives)} archives, 1 failed" in broken.output


def test_verify_an_empty_directory_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "nothing").mkdir()
    result = invoke("verify", str(tmp_path / "nothing"))
    assert result.exit_code == 1 and "no archives (*.jsonl.gz) under this directory" in result.stderr


def test_an_archive_with_no_manifest_under_a_directory_fails() -> None:
    path = archive("a.jsonl.gz", 1)
    for manifest in Path("manifests").glob("*"):
        manifest.unlink()
    result = invoke("verify", "--manifest-dir", "manifests", str(path.parent))
    assert result.exit_code == 1 and "no manifest" in result.stderr


def test_a_dry_run_checks_the_remote_exists(local_remote: Any) -> None:
    remote, root, conf = local_remote
    archive("a.jsonl.gz", 1)
    typo = invoke("upload", "--config", str(write_config("nosuchremote:x", conf)), "--dry-run")
    assert typo.exit_code == 1, typo.output
    assert typo.stderr.count("\n") == 1 and "didn't find section in config file" in typo.stderr

    fine = invoke("upload", "--config", str(write_config(remote, conf)), "--dry-run")
    assert fine.exit_code == 0, fine.output
    assert "would upload" in fine.output and not root.exists()  # a remote directory not there yet is fine
