"""`pmws upload` / `pmws verify` with the real rclone: a local-directory remote and S3 (moto) on loopback."""

from __future__ import annotations

import json
import os
import shutil
import socket
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from moto.server import ThreadedMotoServer
from typer.testing import CliRunner

from pmws.archive import GzipJsonlFile
from pmws.cli import app
from pmws.envelope import ConnectionContext, TrackedToken, build_envelope
from pmws.manifest import write_manifest
from pmws.rotating import file_manifest

SECRET = "SUPERSECRETKEY123"
SOURCE = Path("rec")
MANIFESTS = Path("manifests")
LEDGER = Path("ledger.jsonl")
CONTEXT = ConnectionContext("S", 1, "wss://x", (TrackedToken("m", "0xc", "111", "Up", "t"),))


def archive(name: str, hour: str, frames: int = 20, *, closed: bool = True, old: bool = True) -> Path:
    """A real recorder archive (envelopes) with its manifest, like `pmws run` leaves them."""
    directory = SOURCE / "ws_raw" / "date=2026-11-24" / f"hour={hour}"
    final = directory / name
    lines = [
        build_envelope(
            json.dumps({"event_type": "book", "asset_id": "111", "n": i}).encode(),
            binary=False,
            context=CONTEXT,
            received_ns=1_790_000_000_000_000_000 + i,
            message_sequence=i,
            global_sequence=i,
        )[0]
        for i in range(1, frames + 1)
    ]
    writer = GzipJsonlFile(final, open_path=directory / f".{name}.open")
    writer.write_lines(lines, sync_flush=True)
    if not closed:
        writer.abandon()
        return directory / f".{name}.open"
    summary = writer.close()
    manifest = file_manifest(
        kind="ws_raw",
        summary=summary,
        root=SOURCE,
        session_id="S",
        shard=None,
        period_start=None,
        interval=None,
        first_ns=None,
        last_ns=None,
        first_sequence=1,
        last_sequence=frames,
        frames=frames,
        events={},
        records={},
        counters={},
        recovered=False,
    )
    write_manifest(MANIFESTS / f"{name}.manifest.json", manifest)
    if old:
        past = time.time() - 3600
        os.utime(final, (past, past))
    return final


def config(tmp_path: Path, remote: str, rclone_conf: Path, **upload: Any) -> Path:
    path = tmp_path / "upload.yaml"
    settings = {
        "source": str(SOURCE),
        "manifest_dir": str(MANIFESTS),
        "remote": remote,
        "rclone_config": str(rclone_conf),
        "ledger_path": str(LEDGER),
        "min_age_seconds": 60,
        **upload,
    }
    path.write_text(json.dumps({"upload": settings}))
    return path


def invoke(*args: str) -> Any:
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "300"})


def ledger_events() -> list[tuple[str, str]]:
    return [(r["event"], r["relative_path"]) for r in map(json.loads, LEDGER.read_text().splitlines())]


@pytest.fixture
def local_remote(tmp_path: Path) -> tuple[str, Path, Path]:
    target = tmp_path / "remote-root"
    conf = tmp_path / "rclone.conf"
    conf.write_text("[localarch]\ntype = local\n")
    return f"localarch:{target}", target, conf


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def s3_server() -> Iterator[int]:
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield port
    finally:
        server.stop()


@pytest.fixture
def s3_remote(tmp_path: Path, s3_server: int) -> tuple[str, Path]:
    conf = tmp_path / "rclone.conf"
    conf.write_text(
        "[s3test]\ntype = s3\nprovider = Other\naccess_key_id = testing\n"
        f"secret_access_key = {SECRET}\nendpoint = http://127.0.0.1:{s3_server}\nregion = us-east-1\n"
        "force_path_style = true\n"
    )
    bucket = f"b{int(time.time() * 1000) % 10**9}"
    from pmws.rclone import Rclone

    Rclone(config=str(conf)).run("mkdir", f"s3test:{bucket}")
    return f"s3test:{bucket}/orderbooks", conf


def test_only_closed_old_manifested_files_go_and_dry_run_changes_nothing(
    tmp_path: Path, local_remote: Any
) -> None:
    remote, root, conf = local_remote
    good = archive("a.jsonl.gz", "01")
    archive("open.jsonl.gz", "02", closed=False)
    archive("recent.jsonl.gz", "03", old=False)
    orphan = SOURCE / "ws_raw" / "date=2026-11-24" / "hour=04" / "nomanifest.jsonl.gz"
    orphan.parent.mkdir(parents=True)
    orphan.write_bytes(good.read_bytes())
    os.utime(orphan, (time.time() - 3600,) * 2)
    cfg = config(tmp_path, remote, conf)
    dry = invoke("upload", "--config", str(cfg), "--dry-run", "--cleanup-after-verify")
    assert dry.exit_code == 0, dry.output
    assert "would upload" in dry.output and not root.exists() and not LEDGER.exists() and good.exists()
    result = invoke("upload", "--config", str(cfg))
    assert result.exit_code == 0, result.output
    shipped = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    assert shipped == ["manifests/a.jsonl.gz.manifest.json", "ws_raw/date=2026-11-24/hour=01/a.jsonl.gz"]
    assert good.exists()  # no cleanup asked
    assert ("verified", "ws_raw/date=2026-11-24/hour=01/a.jsonl.gz") in ledger_events()
    for reason in ("hidden", "modified", "no manifest"):
        assert reason in result.output


def test_cleanup_deletes_only_verified_files_and_reruns_are_idempotent(
    tmp_path: Path, local_remote: Any
) -> None:
    remote, root, conf = local_remote
    first, second = archive("a.jsonl.gz", "01"), archive("b.jsonl.gz", "02")
    cfg = config(tmp_path, remote, conf)
    result = invoke("upload", "--config", str(cfg), "--cleanup-after-verify")
    assert result.exit_code == 0, result.output
    assert not first.exists() and not second.exists()
    assert (MANIFESTS / "a.jsonl.gz.manifest.json").exists()  # the record of what was shipped stays
    events = [e for e, _ in ledger_events()]
    assert events.count("uploaded") == 2 and events.count("verified") == 2 and events.count("deleted") == 2
    assert all(
        json.loads(line).get("verify_mode") == "sha256"
        for line in LEDGER.read_text().splitlines()
        if '"verified"' in line
    )
    again = invoke("upload", "--config", str(cfg), "--cleanup-after-verify")
    assert again.exit_code == 0 and [e for e, _ in ledger_events()].count("uploaded") == 2
    verified = invoke("verify", "--config", str(cfg), "--remote", remote)
    assert verified.exit_code == 0, verified.output


def test_a_corrupted_or_truncated_remote_copy_is_caught_and_blocks_deletion(
    tmp_path: Path, local_remote: Any
) -> None:
    remote, root, conf = local_remote
    local = archive("a.jsonl.gz", "01")
    cfg = config(tmp_path, remote, conf)
    assert invoke("upload", "--config", str(cfg)).exit_code == 0
    copy = root / "ws_raw/date=2026-11-24/hour=01/a.jsonl.gz"
    data = bytearray(copy.read_bytes())
    data[len(data) // 2] ^= 0xFF
    copy.write_bytes(bytes(data))
    result = invoke("verify", "--config", str(cfg), "--remote", remote)
    assert result.exit_code == 1 and "remote sha256 differs" in result.output
    cleanup = invoke("upload", "--config", str(cfg), "--cleanup-after-verify")
    assert cleanup.exit_code == 1 and local.exists()
    healed = invoke("upload", "--config", str(cfg))  # the failure made the next run upload it again
    assert healed.exit_code == 0 and "ok (sha256)" in healed.output
    copy.write_bytes(bytes(data[:100]))  # truncated
    result = invoke("verify", "--config", str(cfg), "--remote", remote)
    assert result.exit_code == 1 and "remote size" in result.output
    blocked = invoke("upload", "--config", str(cfg), "--cleanup-after-verify")
    assert blocked.exit_code == 1 and local.exists()


def test_rclone_failing_midway_deletes_nothing_and_a_rerun_completes(
    tmp_path: Path, local_remote: Any
) -> None:
    remote, root, conf = local_remote
    files = [archive(f"{c}.jsonl.gz", f"0{i}") for i, c in enumerate("abc")]
    real = shutil.which("rclone")
    counter = tmp_path / "calls"
    flaky = tmp_path / "flaky-rclone"
    flaky.write_text(
        "#!/bin/sh\n"
        f"n=$(cat {counter} 2>/dev/null || echo 0); n=$((n+1)); echo $n > {counter}\n"
        'case " $* " in *" copyto "*) if [ "$n" -ge 5 ]; then\n'
        '  echo "ERROR : network down" >&2; exit 1; fi;;\n'
        "esac\n"
        f'exec {real} "$@"\n'
    )
    flaky.chmod(flaky.stat().st_mode | stat.S_IEXEC)
    cfg = config(tmp_path, remote, conf, rclone_binary=str(flaky))
    result = invoke("upload", "--config", str(cfg), "--cleanup-after-verify")
    assert result.exit_code == 1 and "network down" in result.output
    assert all(f.exists() for f in files)  # nothing deleted after a failure
    fixed = config(tmp_path, remote, conf)
    rerun = invoke("upload", "--config", str(fixed), "--cleanup-after-verify")
    assert rerun.exit_code == 0, rerun.output
    assert not any(f.exists() for f in files)


def test_a_local_file_changed_after_its_manifest_is_refused(tmp_path: Path, local_remote: Any) -> None:
    remote, root, conf = local_remote
    changed = archive("a.jsonl.gz", "01")
    data = changed.read_bytes()
    changed.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    os.utime(changed, (time.time() - 3600,) * 2)
    result = invoke("upload", "--config", str(config(tmp_path, remote, conf)), "--cleanup-after-verify")
    assert result.exit_code == 1 and "refused" in result.output
    assert changed.exists() and not root.exists()
    assert ledger_events() == [("refused", "ws_raw/date=2026-11-24/hour=01/a.jsonl.gz")]


def test_s3_verifies_by_md5_or_download_and_never_shows_a_credential(tmp_path: Path, s3_remote: Any) -> None:
    remote, conf = s3_remote
    first = archive("a.jsonl.gz", "01")
    cfg = config(tmp_path, remote, conf)
    result = invoke("upload", "--config", str(cfg), "--cleanup-after-verify")
    assert result.exit_code == 0, result.output
    assert "ok (md5)" in result.output and not first.exists()
    archive("b.jsonl.gz", "02")
    download = invoke("upload", "--config", str(cfg), "--verify-mode", "download")
    assert download.exit_code == 0 and "ok (download)" in download.output
    remote_check = invoke("verify", "--config", str(cfg), "--remote", remote)
    assert remote_check.exit_code == 0, remote_check.output
    bad = config(tmp_path, "s3test:no-such-bucket-here/x", conf)
    archive("c.jsonl.gz", "03")
    failing = invoke("upload", "--config", str(bad))
    assert failing.exit_code == 1
    for text in (result.output, download.output, remote_check.output, failing.output, LEDGER.read_text()):
        assert SECRET not in text


def test_verify_local_archives_and_a_sample_manifest(tmp_path: Path) -> None:
    good = archive("a.jsonl.gz", "01")
    result = invoke("verify", "--manifest-dir", str(MANIFESTS), "--config", str(tmp_path / "none.yaml"))
    assert result.exit_code == 2  # a missing config file is a config error
    cfg = tmp_path / "c.yaml"
    cfg.write_text(json.dumps({"upload": {"source": str(SOURCE), "manifest_dir": str(MANIFESTS)}}))
    assert invoke("verify", "--config", str(cfg)).exit_code == 0
    sample = tmp_path / "sample.json"
    sample.write_text(
        json.dumps(
            {
                "session_id": "S",
                "outputs": [
                    {
                        "kind": "ws_raw",
                        "path": str(good),
                        "bytes": good.stat().st_size,
                        "sha256": json.loads((MANIFESTS / "a.jsonl.gz.manifest.json").read_text())["sha256"],
                        "lines": 20,
                    }
                ],
            }
        )
    )
    assert invoke("verify", "--manifest", str(sample)).exit_code == 0
    good.write_bytes(good.read_bytes()[:-5])
    broken = invoke("verify", "--manifest", str(sample))
    assert broken.exit_code == 1 and "FAIL" in broken.output


def test_missing_rclone_and_missing_remote_are_clear_errors(tmp_path: Path, local_remote: Any) -> None:
    remote, _, conf = local_remote
    archive("a.jsonl.gz", "01")
    missing = invoke(
        "upload", "--config", str(config(tmp_path, remote, conf, rclone_binary="no-such-rclone"))
    )
    assert (
        missing.exit_code == 1 and "rclone not found" in missing.output and "Traceback" not in missing.output
    )
    no_remote = invoke("upload", "--config", str(config(tmp_path, "", conf)))
    assert no_remote.exit_code == 2 and "upload.remote is not set" in no_remote.output
