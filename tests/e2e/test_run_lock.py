"""Two recorders and one directory: the output lock, a lock left by kill -9, shards sharing a directory."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from pmws.archive.reader import iter_gzip_lines
from pmws.errors import OutputLocked
from tests.conftest import TIME_FACTOR
from tests.e2e.test_run import (
    MANIFESTS,
    ROOT,
    assert_sent_exactly_once,
    record,
    run_config,
    start_run,
    wait_for,
)
from tests.e2e.test_run import ws_lines as closed_ws_lines


def open_files(tmp_path: Path) -> list[Path]:
    return list((tmp_path / ROOT).rglob(".*.open"))


def stop_quietly(sim: Any, *procs: subprocess.Popen[str]) -> list[str]:
    """Silence the simulator (no frame in flight), SIGTERM each recorder, expect exit 0 from each."""
    sim.sim.faults.silent = True
    time.sleep(0.5 * TIME_FACTOR)
    for proc in procs:
        proc.send_signal(signal.SIGTERM)
    outputs = []
    for proc in procs:
        output, _ = proc.communicate(timeout=20 * TIME_FACTOR)
        assert proc.returncode == 0, output
        outputs.append(output)
    return outputs


def test_a_second_recorder_of_the_same_shard_exits_2_and_the_first_loses_nothing(
    tmp_path: Path, sim: Any
) -> None:
    config = run_config(tmp_path, sim)
    first = start_run(tmp_path, config)
    wait_for(lambda: len(sim.sim.sent_frames) > 50 and len(open_files(tmp_path)) == 2)
    live_files = {p: p.stat().st_size for p in open_files(tmp_path)}

    second = start_run(tmp_path, config)
    output, _ = second.communicate(timeout=20 * TIME_FACTOR)
    assert second.returncode == 2, output
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1 and "output already being written by" in lines[0], output
    assert f"pid {first.pid} on host {socket.gethostname()}" in lines[0] and "since 20" in lines[0]
    assert sorted(open_files(tmp_path)) == sorted(live_files)  # untouched, still being written
    assert not list((tmp_path / ROOT).rglob("*.salvaged")) and not list((tmp_path / MANIFESTS).glob("*.json"))

    assert first.poll() is None
    stop_quietly(sim, first)
    assert not open_files(tmp_path)
    manifests = [json.loads(p.read_text()) for p in (tmp_path / MANIFESTS).glob("*.manifest.json")]
    assert len(manifests) == 2 and not any(m["recovered"] for m in manifests)
    assert_sent_exactly_once(sim, closed_ws_lines(tmp_path / ROOT))  # zero frames lost


HOLD_LOCK = """
import sys, time
from pathlib import Path
from pmws.lock import acquire
held = acquire([Path("rec"), Path("rec-manifests")], owner="run-shard-0of1",
               session_id="20261201T000000Z-dead01", command="pmws run", session_root=Path("rec"))
print("held", flush=True)
time.sleep(600)
"""


def test_a_lock_left_by_a_process_killed_with_sigkill_does_not_block_a_restart(
    tmp_path: Path, sim: Any
) -> None:
    config = run_config(tmp_path, sim)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK], cwd=tmp_path, stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout is not None and holder.stdout.readline() == "held\n"
    with pytest.raises(OutputLocked, match=f"pid {holder.pid} on host"):
        record(config, 1, sim=sim)
    holder.kill()
    holder.communicate(timeout=5 * TIME_FACTOR)
    assert (tmp_path / ROOT / ".pmws-run-shard-0of1.lock").exists()  # left behind, stale

    outcome, _ = record(config, 2.5, sim=sim)
    assert outcome.error is None
    assert_sent_exactly_once(sim, closed_ws_lines(tmp_path / ROOT))
    assert not (tmp_path / ROOT / f".pmws-session-{outcome.session_id}.lock").exists()  # released


def test_two_shards_in_one_directory_both_run_and_never_salvage_each_other(tmp_path: Path, sim: Any) -> None:
    procs = []
    for index in (0, 1):
        here = tmp_path / f"config{index}"
        here.mkdir()
        shared = {"output_dir": str(tmp_path / ROOT), "manifest_dir": str(tmp_path / MANIFESTS)}
        run = {"shard_index": index, "shard_count": 2, "subscribe_ahead_seconds": 3600, **shared}
        procs.append(start_run(tmp_path, run_config(here, sim, run=run)))
        # the second starts while the first's `.open` files are being written: it must leave them alone
        wait_for(lambda n=index: len(open_files(tmp_path)) == 2 * (n + 1))
    wait_for(lambda: len(sim.sim.sent_frames) > 300)
    assert all(proc.poll() is None for proc in procs)
    assert not list((tmp_path / ROOT).rglob("*.salvaged"))
    outputs = stop_quietly(sim, *procs)
    assert all('"salvaged":0' in output for output in outputs), outputs
    manifests = [json.loads(p.read_text()) for p in (tmp_path / MANIFESTS).glob("*.manifest.json")]
    assert len(manifests) == 4 and not any(m["recovered"] for m in manifests)
    assert {m["shard"] for m in manifests} == {"0/2", "1/2"}
    assert_sent_exactly_once(sim, closed_ws_lines(tmp_path / ROOT))


def test_a_start_finishes_a_cut_salvage_and_repairs_manifests_before_recording(
    tmp_path: Path, sim: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pmws.archive.salvage import salvage_orphans
    from pmws.config import Archive
    from tests.unit.test_salvage import Killed, closed_archive, make_orphan

    root = tmp_path / ROOT
    orphan, complete, _ = make_orphan(root, session="20261201T000000Z-0000aa")

    def killed_after_rename(step: str) -> None:
        if step == "renamed":
            raise Killed(step)

    with pytest.raises(Killed):  # a previous start was killed mid-salvage: final next to its `.open`
        salvage_orphans(
            root, manifest_dir=tmp_path / MANIFESTS, settings=Archive(), on_step=killed_after_rename
        )
    good = closed_archive(root, "20261201T000000Z-0000bb", [b'{"record_type": "lifecycle"}\n'])
    bad = closed_archive(root, "20261201T000000Z-0000cc", [b"not json\n"])

    outcome, _ = record(run_config(tmp_path, sim), 2.5, sim=sim)
    assert outcome.error is None and outcome.recovery is not None
    assert [m.lines for m in outcome.salvaged] == [len(complete)]
    assert [m.file for m in outcome.recovery.repaired] == [good.name]
    assert len(outcome.recovery.problems) == 1 and bad.name in outcome.recovery.problems[0]
    assert orphan.with_name(orphan.name + ".salvaged").exists() and not orphan.exists()
    manifests = {p.name for p in (tmp_path / MANIFESTS).glob("*.manifest.json")}
    assert f"{good.name}.manifest.json" in manifests and f"{bad.name}.manifest.json" not in manifests
    ours = sorted(root.rglob(f"polymarket_ws_raw_{outcome.session_id}_*.jsonl.gz"))
    rows = [json.loads(line) for path in ours for line in iter_gzip_lines(path)]
    recovery = [r for r in rows if r.get("event") == "startup_recovery"]
    assert len(recovery) == 1 and recovery[0]["repaired_manifests"] == [good.name]
    assert_sent_exactly_once(sim, rows)
