"""`pmws replay --config` from an rclone remote: S3 (moto) on loopback, read with the configured rclone.

The archive of tests/e2e/test_replay_protocol.py is copied to the bucket with the real rclone; `pmws replay`
(its own process, as a user runs it) serves it from there and from the local copy, and a websocket client
gets the same frames, in the same order, byte for byte, and Gamma lists the same tokens.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from websockets.asyncio.client import connect

from pmws.transfer.rclone import Rclone, which
from tests.conftest import TIME_FACTOR
from tests.e2e.conftest import invoke
from tests.e2e.test_replay_protocol import NAMES, SLUG, TOKENS, A, B, subscription, write_archive
from tests.e2e.test_upload import s3_endpoint, s3_remote

__all__ = ["s3_endpoint", "s3_remote"]  # fixtures
#: What a client subscribed to A and B gets of the archive (PONG and the other market's event are not its)
PLAYED = ["books", "change A", "change B", "change A+B", "market event", "trade A"]


def served(*args: str) -> tuple[list[str], list[dict[str, Any]], str]:
    """`pmws replay ARGS --speed max`: every frame a client subscribed to A and B gets, what Gamma lists
    for the market, and stderr. The client reads exactly as many frames as `replay finished` says it sent."""
    command = [sys.executable, "-m", "pmws", "replay", *args, "--speed", "max"]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert first.startswith("gamma_url: "), first + proc.communicate(timeout=30 * TIME_FACTOR)[1]
        urls = dict(
            line.strip().split(": ", 1) for line in [first, proc.stdout.readline(), proc.stdout.readline()]
        )
        listed = httpx.get(f"{urls['gamma_url']}/markets", params={"slug": SLUG}).json()

        async def client() -> list[str]:
            async with connect(urls["ws_url"]) as ws:
                await ws.send(subscription([A, B], initial_dump=False))
                finished = ""
                while not finished.startswith("replay finished"):
                    finished = await asyncio.to_thread(proc.stdout.readline)  # type: ignore[union-attr]
                sent = int(finished.split(" sent")[0].rsplit(" ", 1)[1])
                return [str(await ws.recv()) for _ in range(sent)]

        frames = asyncio.run(asyncio.wait_for(client(), 30 * TIME_FACTOR))
    finally:
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=10 * TIME_FACTOR)
    assert proc.returncode == 0, stderr
    return frames, listed, stderr


def test_a_remote_archive_replays_as_its_local_copy(tmp_path: Path, s3_remote: Any) -> None:
    remote, conf = s3_remote
    local = write_archive(Path("rec"))
    Rclone(config=str(conf)).run(["copy", str(local), remote])
    config = Path("pmws.yaml")
    config.write_text(f"upload:\n  rclone_config: {conf}\n")

    from_disk = served(str(local))
    from_s3 = served("--config", str(config), remote)
    assert [NAMES.get(f, f) for f in from_disk[0]] == PLAYED
    assert from_s3[0] == from_disk[0]  # the same frames, in the same order, byte for byte
    assert [m["clobTokenIds"] for m in from_s3[1]] == [m["clobTokenIds"] for m in from_disk[1]] != []
    assert from_s3[2] == from_disk[2] == ""  # no problem named


def test_without_the_config_the_remote_is_unknown_and_that_is_one_line(s3_remote: Any) -> None:
    remote, _ = s3_remote
    result = invoke("replay", remote)  # rclone's own config does not define the test's remote
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith(f"error: nothing to replay: {remote}: cannot list the remote (")
    assert len(result.stderr.strip().splitlines()) == 1


def test_an_unlistable_remote_beside_a_local_archive_is_a_named_problem_and_the_rest_replays(
    tmp_path: Path,
) -> None:
    local = write_archive(Path("rec"))
    frames, _, stderr = served(str(local), "nosuchremote:bucket/polymarket")
    assert [NAMES.get(f, f) for f in frames] == PLAYED
    assert "problem: nosuchremote:bucket/polymarket: cannot list the remote" in stderr


@pytest.mark.parametrize("content", ["nothing", "only-open"])
def test_a_listed_remote_without_a_closed_archive_is_exit_2(tmp_path: Path, content: str) -> None:
    root = tmp_path / "remote-root"
    root.mkdir()
    if content == "only-open":
        (root / ".polymarket_ws_raw_s1_20261201T03.jsonl.gz.open").write_bytes(b"")
    remote = f":local:{root}"
    result = invoke("replay", remote)
    assert result.exit_code == 2, result.output
    assert result.stderr.strip() == f"error: {remote}: no .jsonl.gz archive under this remote path"


def test_a_single_remote_file_replays() -> None:
    local = write_archive(Path("rec"))
    [ws_file] = (local / "ws_raw").rglob("*.jsonl.gz")
    frames, _, stderr = served(f":local:{ws_file.resolve()}")  # rclone lists a file by its name alone
    assert [NAMES.get(f, f) for f in frames] == PLAYED
    assert stderr == ""


def test_a_remote_file_whose_manifest_lists_its_tokens_is_streamed_once(
    tmp_path: Path, s3_remote: Any
) -> None:
    """Gamma's catalog comes from the manifest (`tokens_tracked`, as `pmws run` writes it): the ws_raw file is
    read from the bucket once, by the replay itself (the rest_checkpoints file, with no token list, is
    read for its summaries). Counted with a shim in front of the real rclone."""
    remote, conf = s3_remote
    local = write_archive(Path("rec"))
    (local / "manifests").mkdir()
    for path in local.rglob("*.jsonl.gz"):
        manifest: dict[str, Any] = {"file": path.name, "bytes": path.stat().st_size}
        if path.name.startswith("polymarket_ws_raw_"):
            manifest["tokens_tracked"] = [token.to_json() for token in TOKENS]
        (local / "manifests" / f"{path.name}.manifest.json").write_bytes(orjson.dumps(manifest))
    Rclone(config=str(conf)).run(["copy", str(local), remote])
    log, shim = tmp_path / "rclone.log", tmp_path / "rclone-shim"
    shim.write_text(f'#!/bin/sh\necho "$@" >> {log}\nexec {which("rclone")} "$@"\n')
    shim.chmod(0o755)
    config = Path("pmws.yaml")
    config.write_text(f"upload:\n  rclone_binary: {shim}\n  rclone_config: {conf}\n")

    frames, listed, stderr = served("--config", str(config), remote)
    assert [NAMES.get(f, f) for f in frames] == PLAYED and stderr == ""
    assert [m["clobTokenIds"] for m in listed] == [f'["{A}", "{B}"]']
    cats = [line.rsplit("/", 1)[-1] for line in log.read_text().splitlines() if " cat " in line]
    archives = [name for name in cats if name.endswith(".jsonl.gz")]
    assert archives.count("polymarket_ws_raw_s1_a.jsonl.gz") == 1, cats  # was 2 before the manifests listed
    assert archives.count("polymarket_rest_checkpoints_s1_a.jsonl.gz") == 2, cats
