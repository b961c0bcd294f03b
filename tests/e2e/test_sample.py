"""`pmws discover` + `pmws sample` + `pmws gate` against the simulator over real loopback sockets."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from tests.conftest import TIME_FACTOR, no_traceback
from tests.e2e.conftest import invoke, load_json, read_jsonl_gz, write_config

MANIFEST = Path("data/manifests/checkpoint_010b_ws_raw_sample.json")
REPORT = Path("reports/checkpoints/checkpoint_010b_ws_raw_sample.md")


def run_sample(tmp_path: Path, sim: Any, *extra: str, **sections: dict[str, Any]) -> Any:
    """Run `pmws sample`; the simulator goes quiet 0.5 s before the end so no frame is left in flight."""
    config = write_config(tmp_path / "pmws.yaml", sim, **sections)
    duration = float(extra[extra.index("--duration-seconds") + 1]) if "--duration-seconds" in extra else 3.0
    quiet = threading.Timer(duration - 0.5, lambda: setattr(sim.sim.faults, "silent", True))
    quiet.start()
    try:
        return invoke("sample", "--config", str(config), "--discover", "--no-live", *extra)
    finally:
        quiet.cancel()


def outputs(manifest: dict[str, Any]) -> dict[str, Path]:
    return {o["kind"]: Path(o["path"]) for o in manifest["outputs"]}


def failing_checks(manifest: dict[str, Any]) -> list[str]:
    return manifest["gate"]["failing_checks"]


def test_live_refresh_seconds_sets_the_status_line_cadence(tmp_path: Path, sim: Any) -> None:
    result = run_sample(tmp_path, sim, "--market-limit", "1", sample={"live_refresh_seconds": 0.5})
    assert result.exit_code == 0, result.output
    assert result.output.count("[pmws] t=") >= 3  # a 5 s floor (the old code) printed only the first


def test_sample_passes_and_records_every_frame_with_the_seed_envelope(tmp_path: Path, sim: Any) -> None:
    result = run_sample(tmp_path, sim, "--market-limit", "2")
    assert result.exit_code == 0, result.output
    assert "WS_RAW_SAMPLE_PASS" in result.output
    manifest = load_json(MANIFEST)
    assert manifest["gate"]["verdict"] == "WS_RAW_SAMPLE_PASS"
    assert len(manifest["selection"]["markets"]) == 2
    files = outputs(manifest)
    session = manifest["session_id"]
    assert files["ws_raw"] == Path(
        f"data/ws_sample/polymarket/ws_raw/{session}/polymarket_ws_raw_{session}.jsonl.gz"
    )
    assert files["rest_checkpoints"] == Path(
        f"data/ws_sample/polymarket/rest_checkpoints/{session}/polymarket_rest_checkpoints_{session}.jsonl.gz"
    )
    envelopes = read_jsonl_gz(files["ws_raw"])
    tokens = {t["token_id"] for m in manifest["selection"]["markets"] for t in m["tokens"]}
    assert len(tokens) == 4
    for env in envelopes:
        assert set(env["subscription"]["assets_ids"]) == tokens
        frame_tokens = {t["token_id"] for t in env["tokens_tracked"]}
        assert frame_tokens <= tokens
        if env["json"] is not None and "price_changes" in env["raw_text"]:
            assert frame_tokens  # a price change names the tokens it moves
        assert env["payload_sha256"] == hashlib.sha256(env["raw_text"].encode()).hexdigest()
    # every frame the simulator sent arrived, exactly once, byte-identical
    sent = [f.payload for f in sim.sim.sent_frames]
    assert [e["raw_text"].encode() for e in envelopes] == sent
    types = Counter(t for e in envelopes for t in e["classified_event_types"])
    assert types["book"] >= 1 and types["price_change"] >= 1
    assert manifest["counts"]["frames"] == len(envelopes)
    rest_rows = read_jsonl_gz(files["rest_checkpoints"])
    assert sum(r["ok"] for r in rest_rows) >= 2
    for row in rest_rows:
        assert "set-cookie" not in row["response_headers"]
        assert {b["asset_id"] for b in row["response"]["raw_response_json"]} == tokens
    assert REPORT.read_text().count("WS_RAW_SAMPLE_PASS") >= 1
    again = invoke("gate")
    assert again.exit_code == 0, again.output


def test_no_market_data_needs_review(tmp_path: Path, sim: Any) -> None:
    sim.sim.faults.pong_only = True
    result = run_sample(tmp_path, sim)
    assert result.exit_code == 1, result.output
    manifest = load_json(MANIFEST)
    assert manifest["gate"]["verdict"] == "WS_RAW_SAMPLE_NEEDS_REVIEW"
    assert failing_checks(manifest) == ["ws_market_data_received"]
    assert manifest["stale_feed_events"] >= 1  # PONGs alone are a stale feed, replaced


def test_books_failing_needs_review_and_failures_are_rows(tmp_path: Path, sim: Any) -> None:
    sim.sim.faults.books_status = 500
    result = run_sample(tmp_path, sim)
    assert result.exit_code == 1, result.output
    manifest = load_json(MANIFEST)
    assert failing_checks(manifest) == ["rest_checkpoints_ok"]
    rows = read_jsonl_gz(outputs(manifest)["rest_checkpoints"])
    assert rows and all(r["ok"] is False and r["status_code"] == 500 and r["error"] for r in rows)


def test_one_flipped_byte_fails_the_gate(tmp_path: Path, sim: Any) -> None:
    assert run_sample(tmp_path, sim).exit_code == 0
    manifest = load_json(MANIFEST)
    path = outputs(manifest)["ws_raw"]
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    result = invoke("gate", "--manifest", str(MANIFEST))
    assert result.exit_code == 1, result.output
    assert "WS_RAW_SAMPLE_NEEDS_REVIEW" in result.output
    assert "checksums_match" in failing_checks(load_json(MANIFEST))


def test_a_manifest_with_wrong_shaped_fields_is_a_one_line_error_never_a_verdict(
    tmp_path: Path, sim: Any
) -> None:
    assert run_sample(tmp_path, sim).exit_code == 0
    good = MANIFEST.read_text()
    for field, value in (("selection", {"markets": "abc"}), ("rest", "x"), ("endpoints", [1])):
        MANIFEST.write_text(json.dumps({**json.loads(good), field: value}))
        result = invoke("gate", "--manifest", str(MANIFEST))
        assert result.exit_code == 1, (field, result.output)
        assert "not a sample manifest pmws can check" in result.output and no_traceback(result)
        assert "WS_RAW_SAMPLE_PASS" not in result.output


def test_tampered_payload_with_valid_gzip_fails_the_gate(tmp_path: Path, sim: Any) -> None:
    assert run_sample(tmp_path, sim).exit_code == 0
    manifest = load_json(MANIFEST)
    path = outputs(manifest)["ws_raw"]
    lines = gzip.decompress(path.read_bytes()).splitlines(keepends=True)
    lines[-1] = lines[-1].replace(b'"price', b'"prise', 1)
    path.write_bytes(gzip.compress(b"".join(lines)))
    assert invoke("gate").exit_code == 1
    assert "checksums_match" in failing_checks(load_json(MANIFEST))


def test_dropped_connection_loses_and_duplicates_nothing(tmp_path: Path, sim: Any) -> None:
    sim.sim.faults.drop_after_frames = 25
    result = run_sample(tmp_path, sim, "--duration-seconds", "4")
    assert result.exit_code == 0, result.output
    manifest = load_json(MANIFEST)
    assert manifest["reconnects"] >= 1
    envelopes = read_jsonl_gz(outputs(manifest)["ws_raw"])
    sent = [f.payload for f in sim.sim.sent_frames]
    assert [e["raw_text"].encode() for e in envelopes] == sent
    assert [e["global_message_sequence"] for e in envelopes] == list(range(1, len(envelopes) + 1))
    by_connection: dict[int, list[int]] = {}
    for env in envelopes:
        by_connection.setdefault(env["connection_sequence"], []).append(env["message_sequence"])
    assert len(by_connection) >= 2
    assert sorted(by_connection) == list(range(1, len(by_connection) + 1))
    for sequences in by_connection.values():
        assert sequences == list(range(1, len(sequences) + 1))
    connects = [c["connection_sequence"] for c in manifest["connections"] if c["event"] == "connect"]
    assert connects == list(range(1, len(connects) + 1))
    assert set(by_connection) <= set(connects)  # the last connection may close before its first frame
    assert any(
        c["event"] == "disconnect" and "no close frame" in c["reason"] for c in manifest["connections"]
    )


def test_bad_frames_are_kept_and_counted(tmp_path: Path, sim: Any) -> None:
    faults = sim.sim.faults
    faults.send_non_json_every, faults.send_binary_every, faults.send_unknown_event_every = 5, 7, 6
    result = run_sample(tmp_path, sim)
    assert result.exit_code == 0, result.output
    manifest = load_json(MANIFEST)
    counts = manifest["counts"]
    assert counts["json_errors"] >= 1 and counts["binary_frames"] >= 1
    assert counts["unknown_event_types"].get("settlement_preview", 0) >= 1
    envelopes = read_jsonl_gz(outputs(manifest)["ws_raw"])
    binary = [e for e in envelopes if e["opcode"] == "binary"]
    assert len(binary) == counts["binary_frames"]


def test_unreachable_websocket_is_one_line_not_a_traceback(tmp_path: Path, sim: Any) -> None:
    config = write_config(tmp_path / "c.yaml", sim, endpoints={"ws_url": "ws://127.0.0.1:9/ws/market"})
    result = invoke("sample", "--config", str(config), "--discover", "--no-live")
    assert result.exit_code == 1
    assert "cannot reach ws://127.0.0.1:9/ws/market" in result.output
    assert no_traceback(result)


def test_missing_discovery_file_says_what_to_do(tmp_path: Path, sim: Any) -> None:
    config = write_config(tmp_path / "c.yaml", sim)
    result = invoke("sample", "--config", str(config), "--no-live")
    assert result.exit_code == 1
    assert "pmws discover" in result.output


def test_ctrl_c_stops_cleanly_with_valid_files(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "pmws", "sample", "--simulate", "--no-live", "--duration-seconds", "60"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 20 * TIME_FACTOR
    ws_dir = tmp_path / "data/ws_sample/polymarket/ws_raw"
    while time.monotonic() < deadline and not any(ws_dir.glob("*/*.jsonl.gz")):
        time.sleep(0.2)
    time.sleep(2.5 * TIME_FACTOR)
    proc.send_signal(signal.SIGINT)
    output, _ = proc.communicate(timeout=20 * TIME_FACTOR)
    manifest = load_json(tmp_path / MANIFEST)
    assert manifest["stopped_by"] == "signal SIGINT", output
    assert manifest["duration_seconds_actual"] < 30
    for path in outputs(manifest).values():
        read_jsonl_gz(tmp_path / path)  # complete gzip members
    assert proc.returncode in (0, 1), output
    assert "Traceback" not in output


def test_read_batching_loses_nothing_and_reads_in_batches(tmp_path: Path, sim: Any) -> None:
    # websocket.read_batch_ms: when idle, reading pauses so frames are processed together (CPU at low
    # rates); every frame must still arrive exactly once and in order, only stamped up to that much later.
    result = run_sample(tmp_path, sim, "--market-limit", "2", websocket={"read_batch_ms": 150})
    assert result.exit_code == 0, result.output
    manifest = load_json(MANIFEST)
    assert manifest["gate"]["verdict"] == "WS_RAW_SAMPLE_PASS"
    envelopes = read_jsonl_gz(outputs(manifest)["ws_raw"])
    assert [e["raw_text"].encode() for e in envelopes] == [f.payload for f in sim.sim.sent_frames]
    stamps = [e["received_at_ns"] for e in envelopes]
    gaps = [b - a for a, b in zip(stamps, stamps[1:], strict=False)]
    # at 80 frames/s a frame comes every ~12 ms; batched reads leave ≥100 ms holes between batches
    assert sum(g > 100_000_000 for g in gaps) >= 5, gaps
    assert max(gaps) < 1_000_000_000


def test_a_second_sample_writing_the_same_manifest_exits_2_naming_the_first(tmp_path: Path, sim: Any) -> None:
    from pmws.lock import acquire

    held = acquire([MANIFEST.parent], owner=f"sample-{MANIFEST.name}", session_id=None, command="pmws sample")
    with held:
        result = run_sample(tmp_path, sim, "--duration-seconds", "1")
    assert result.exit_code == 2, result.output
    assert f"output already being written by pid {os.getpid()}" in result.output
    assert not MANIFEST.exists() and not list(Path("data").rglob("*.jsonl.gz"))


def test_a_checkpoint_with_one_failed_batch_is_not_a_successful_checkpoint(tmp_path: Path, sim: Any) -> None:
    """Each row is one POST of one batch: a checkpoint whose second batch failed has a successful row but
    is a failed checkpoint, and the gate must not count its rows as checkpoints."""
    sim.sim.faults.books_fail_every = 2  # one token per batch, two per market: every checkpoint loses one
    result = run_sample(tmp_path, sim, rest={"batch_size": 1, "max_attempts": 1})
    assert result.exit_code == 1, result.output
    manifest = load_json(MANIFEST)
    assert manifest["rest"]["ok"] == 0 and manifest["rest"]["failed"] >= 2
    assert failing_checks(manifest) == ["rest_checkpoints_ok"]
    assert manifest["gate"]["verdict"] == "WS_RAW_SAMPLE_NEEDS_REVIEW"


def test_rest_attempts_of_a_checkpoint_still_retrying_at_the_end_are_rows(tmp_path: Path, sim: Any) -> None:
    """The sample ends while a checkpoint waits to retry: the attempts it made are in the file, counted."""
    sim.sim.faults.books_status = 503
    rest = {"max_attempts": 10, "retry_max_seconds": 5, "timeout_seconds": 2}
    result = run_sample(tmp_path, sim, rest=rest, sample={"rest_checkpoint_interval_seconds": 30})
    assert result.exit_code == 1, result.output
    manifest = load_json(MANIFEST)
    rows = read_jsonl_gz(outputs(manifest)["rest_checkpoints"])
    assert len(rows) >= 2 and all(r["ok"] is False and r["status_code"] == 503 for r in rows)
    assert manifest["rest"]["failed_attempts"] == len(rows) and manifest["rest"]["failed"] == 1
