"""Outputs a user does not expect to lose: per-session sample manifests, simulated vs real discovery,
a failed discovery keeping the previous file, gate on read-only outputs, file modes, invalid UTF-8 frames."""

from __future__ import annotations

import base64
import json
import os
import stat
from collections.abc import Iterator
from hashlib import sha256
from pathlib import Path
from typing import Any

import pytest

from pmws.errors import ArchiveError
from pmws.sim.ws import INVALID_UTF8
from tests.conftest import no_traceback
from tests.e2e.conftest import invoke, load_json, read_jsonl_gz
from tests.e2e.test_sample import MANIFEST, REPORT, outputs, run_sample

LATEST = Path("data/discovery/polymarket_btc_markets_latest.json")
SIMULATED_LATEST = Path("data/discovery/polymarket_btc_markets_simulated_latest.json")


def session_manifest(session: str) -> Path:
    return MANIFEST.parent / "sessions" / session / MANIFEST.name


def session_report(session: str) -> Path:
    return REPORT.parent / "sessions" / session / REPORT.name


def test_each_sample_keeps_its_own_manifest_and_report(tmp_path: Path, sim: Any) -> None:
    assert run_sample(tmp_path, sim).exit_code == 0
    first = load_json(MANIFEST)["session_id"]
    sim.sim.faults.silent = False
    assert run_sample(tmp_path, sim).exit_code == 0
    second = load_json(MANIFEST)["session_id"]
    assert first != second
    for session in (first, second):
        kept = load_json(session_manifest(session))
        assert kept["session_id"] == session and kept["gate"]["verdict"] == "WS_RAW_SAMPLE_PASS"
        assert session in session_report(session).read_text()
    assert load_json(MANIFEST)["session_manifest_path"] == str(session_manifest(second))
    result = invoke("gate", "--session", first)
    assert result.exit_code == 0, result.output
    assert "WS_RAW_SAMPLE_PASS" in result.output
    assert load_json(MANIFEST)["session_id"] == second  # gating an old session leaves the latest alone
    # the first session's archives are still checked against their own manifest
    path = outputs(load_json(session_manifest(first)))["ws_raw"]
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    assert invoke("gate", "--session", first).exit_code == 1
    assert invoke("gate").exit_code == 0
    missing = invoke("gate", "--session", "20990101T000000Z-000000")
    assert missing.exit_code == 1 and "manifest not found" in missing.output


def test_simulated_discovery_never_feeds_a_real_sample(tmp_path: Path, sim: Any) -> None:
    config = tmp_path / "pmws.yaml"
    # a real discovery (here: the simulator standing in for Gamma) first
    from tests.e2e.conftest import write_config

    write_config(config, sim)
    assert invoke("discover", "--config", str(config)).exit_code == 0
    real = LATEST.read_bytes()
    assert json.loads(real)["simulated"] is False
    simulated = invoke("sample", "--simulate", "--no-live", "--duration-seconds", "2")
    assert simulated.exit_code in (0, 1), simulated.output
    assert LATEST.read_bytes() == real  # the real discovery file is untouched
    assert json.loads(SIMULATED_LATEST.read_text())["simulated"] is True
    manifest = load_json(MANIFEST)
    assert manifest["simulated"] is True
    assert manifest["selection"]["discovery_file"] == str(SIMULATED_LATEST)
    # a discovery file marked simulated at the real path (copied, or written by an older pmws) is refused
    LATEST.write_bytes(SIMULATED_LATEST.read_bytes())
    result = invoke("sample", "--config", str(config), "--no-live")
    assert result.exit_code == 1, result.output
    assert "simulated" in result.output and "pmws discover" in result.output
    assert no_traceback(result)


def test_gate_prints_its_verdict_when_the_report_cannot_be_written(
    tmp_path: Path, sim: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert run_sample(tmp_path, sim).exit_code == 0
    REPORT.unlink()
    REPORT.mkdir()  # writing the report fails, for root too
    result = invoke("gate")
    assert result.exit_code == 0, result.output
    assert "WS_RAW_SAMPLE_PASS" in result.output
    assert "not written" in result.output and str(REPORT) in result.output
    path = outputs(load_json(MANIFEST))["ws_raw"]
    path.write_bytes(path.read_bytes()[:-8])
    result = invoke("gate")
    assert result.exit_code == 1, result.output
    assert "WS_RAW_SAMPLE_NEEDS_REVIEW" in result.output
    before = MANIFEST.read_bytes()

    def read_only(path: Path, data: object) -> None:
        raise ArchiveError(f"{path}: cannot write (Read-only file system)")

    monkeypatch.setattr("pmws.gate.write_sample_manifest", read_only)  # root ignores chmod; a read-only mount
    result = invoke("gate")
    assert result.exit_code == 1, result.output
    assert "WS_RAW_SAMPLE_NEEDS_REVIEW" in result.output and "Read-only file system" in result.output
    assert MANIFEST.read_bytes() == before


@pytest.fixture
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def test_manifests_reports_and_discovery_follow_the_umask(tmp_path: Path, sim: Any, umask_022: None) -> None:
    assert run_sample(tmp_path, sim).exit_code == 0
    manifest = load_json(MANIFEST)
    files = [
        MANIFEST,
        REPORT,
        session_manifest(manifest["session_id"]),
        session_report(manifest["session_id"]),
        LATEST,
        *Path("data/discovery").glob("polymarket_btc_markets_2*.json"),
        *outputs(manifest).values(),
    ]
    modes = {str(f): oct(stat.S_IMODE(f.stat().st_mode)) for f in files}
    assert set(modes.values()) == {"0o644"}, modes
    assert len(files) == 8


def test_invalid_utf8_text_frame_is_recorded_as_such_and_recording_goes_on(tmp_path: Path, sim: Any) -> None:
    sim.sim.faults.send_invalid_utf8_every = 15
    result = run_sample(tmp_path, sim, "--duration-seconds", "4")
    assert result.exit_code == 0, result.output
    manifest = load_json(MANIFEST)
    disconnects = [c for c in manifest["connections"] if c["event"] == "disconnect"]
    assert disconnects and all("1007" in d["reason"] for d in disconnects[:-1]), disconnects
    assert "not valid UTF-8" in disconnects[0]["reason"]
    assert "no close frame" not in disconnects[0]["reason"]
    # the rejected frame has no envelope; its exact bytes are kept in the disconnect record
    kept = base64.b64decode(disconnects[0]["invalid_text_frame_base64"])
    assert kept == INVALID_UTF8 and disconnects[0]["invalid_text_frame_sha256"] == sha256(kept).hexdigest()
    envelopes = read_jsonl_gz(outputs(manifest)["ws_raw"])
    assert len({e["connection_sequence"] for e in envelopes}) >= 2  # reconnected and kept recording
