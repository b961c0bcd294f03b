"""`pmws run` against the simulator over real loopback sockets: rotation, gaps, rollover, lifecycle."""

from __future__ import annotations

import asyncio
import json
import os
import resource
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from pmws.archive.digest import file_digest
from pmws.archive.reader import iter_gzip_lines
from pmws.config import load_config
from pmws.envelope import payload_of
from pmws.read import open_archives
from pmws.run import RunOutcome, run_recorder
from tests.conftest import TIME_FACTOR
from tests.e2e.conftest import write_config

ROOT = Path("rec")
MANIFESTS = Path("rec-manifests")


def run_config(tmp_path: Path, sim: Any, **sections: dict[str, Any]) -> Path:
    base: dict[str, dict[str, Any]] = {
        "run": {
            "output_dir": str(ROOT),
            "manifest_dir": str(MANIFESTS),
            "rotate_interval_seconds": 3600,
            "rediscover_interval_seconds": 0.5,
            "rest_checkpoint_interval_seconds": 1,
            "subscribe_ahead_seconds": 0,
            "status_interval_seconds": 60,
        },
        "metrics": {"port": 0, "host": "127.0.0.1"},
        "discovery": {"windows": ["5m", "15m"]},
    }
    for section, values in sections.items():
        base.setdefault(section, {}).update(values)
    return write_config(tmp_path / "run.yaml", sim, **base)


def record(
    config_path: Path,
    seconds: float,
    *,
    sim: Any,
    during: Callable[[Any], None] | None = None,
    clock: Callable[[], datetime] | None = None,
    stop_after_during: bool = False,
) -> tuple[RunOutcome, Any]:
    """Run the recorder in this process for `seconds`, calling `during(recorder)` from a thread midway.

    The simulator goes quiet 0.5 s before the stop, so no frame is still in flight when the recorder stops
    (frames sent after a client decided to stop can never be received, by any recorder). With
    `stop_after_during`, `seconds` is a bound: the run stops 1.5 s after `during` returns or fails (a
    scenario paced by the recorder's own REST checkpoints then neither waits nor races a fixed clock).
    """
    config = load_config(config_path, env={})
    holder: dict[str, Any] = {}

    async def main() -> RunOutcome:
        stop = asyncio.Event()

        def ready(recorder: Any, server: Any) -> None:
            holder["recorder"], holder["server"] = recorder, server

        def stop_in(delay: float) -> None:
            loop.call_later(max(0.0, delay - 0.5), lambda: setattr(sim.sim.faults, "silent", True))
            loop.call_later(delay, stop.set)

        def scenario() -> None:
            assert during is not None
            try:
                during(holder)
            finally:
                if stop_after_during:
                    loop.call_soon_threadsafe(stop_in, 1.5)

        loop = asyncio.get_running_loop()
        if during is not None:
            threading.Thread(target=scenario, daemon=True).start()
        stop_in(seconds * TIME_FACTOR)
        kwargs: dict[str, Any] = {"clock": clock} if clock else {}
        return await run_recorder(
            config,
            stop=stop,
            on_ready=ready,
            **kwargs,
        )

    return asyncio.run(main()), holder


def ws_lines(root: Path = ROOT) -> list[dict[str, Any]]:
    """Every line of every closed ws_raw file, in file (period) order."""
    rows: list[dict[str, Any]] = []
    for path in sorted((root / "ws_raw").rglob("*.jsonl.gz"), key=lambda p: p.name):
        rows.extend(json.loads(line) for line in iter_gzip_lines(path))
    return rows


def frames(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(
        (r for r in rows if r["record_type"] == "ws_frame"), key=lambda r: r["global_message_sequence"]
    )


def manifests(kind: str = "ws_raw") -> list[dict[str, Any]]:
    found = [json.loads(p.read_text()) for p in MANIFESTS.glob("*.manifest.json")]
    return [m for m in found if m["kind"] == kind]


def assert_sent_exactly_once(sim: Any, rows: list[dict[str, Any]]) -> None:
    """Every frame the simulator sent is archived exactly once, each connection's frames in order.

    Across connections only the multiset can match: separate TCP streams interleave freely. The one frame
    allowed to be missing is a trailing PONG answering a PING sent as the recorder stopped (still in flight).
    """
    recorded = frames(rows)
    by_shard: dict[str | None, list[int]] = {}  # recorders of several shards may share a directory
    for row in recorded:
        by_shard.setdefault(row.get("shard"), []).append(row["global_message_sequence"])
    for sequences in by_shard.values():
        assert sequences == list(range(1, len(sequences) + 1))
    got: dict[tuple[str | None, int], list[bytes]] = {}
    for row in recorded:
        got.setdefault((row.get("shard"), row["connection_sequence"]), []).append(payload_of(row))
    sent: dict[int, list[bytes]] = {}
    for frame in sim.sim.sent_frames:
        sent.setdefault(frame.connection_id, []).append(frame.payload)
    # Match each connection's frames to a recorded connection, whole first; only then may a connection
    # match without its trailing PONG (several connections can carry the same frames, e.g. PONGs alone).
    unclaimed = Counter(tuple(payloads) for payloads in got.values())
    partial = []
    for payloads in map(tuple, sent.values()):
        if unclaimed[payloads]:
            unclaimed[payloads] -= 1
        else:
            partial.append(payloads)
    missing = []
    for payloads in partial:
        short = payloads[:-1]
        if payloads[-1:] == (b"PONG",) and (not short or unclaimed[short]):
            unclaimed[short] -= bool(short)
        else:
            missing.append(payloads)
    assert not missing and not +unclaimed, (missing, +unclaimed)


def test_rotation_closes_valid_manifested_files_and_leaves_no_open_file(tmp_path: Path, sim: Any) -> None:
    too_old: list[str] = []
    seen: set[str] = set()

    def watch(_: Any) -> None:
        for _ in range(12):
            time.sleep(0.3)
            now = int(time.time())
            allowed = {time.strftime("%Y%m%dT%H%M%S", time.gmtime(now - back)) for back in (0, 1, 2)}
            for path in ROOT.rglob(".*.open"):
                seen.add(path.name)
                if path.name.split("_")[-1].split(".")[0] not in allowed:
                    too_old.append(path.name)  # only the current period (and one closing) may be open

    config = run_config(tmp_path, sim, run={"rotate_interval_seconds": 1})
    outcome, _ = record(config, 4.0, during=watch, sim=sim)
    assert outcome.error is None
    assert seen and not too_old
    assert not list(ROOT.rglob(".*.open"))
    closed = sorted((ROOT / "ws_raw").rglob("*.jsonl.gz"))
    assert len(closed) >= 3
    by_name = {m["file"]: m for m in manifests()}
    for path in closed:
        manifest = by_name[path.name]
        assert (manifest["sha256"], manifest["bytes"]) == file_digest(path)
        assert manifest["lines"] == sum(1 for _ in iter_gzip_lines(path))
        assert manifest["recovered"] is False
        assert "date=" in str(path) and "hour=" in str(path)
    rows = ws_lines()
    assert_sent_exactly_once(sim, rows)
    rotations = [r for r in rows if r.get("event") == "rotation"]
    assert len(rotations) == len(closed)
    assert manifests("rest_checkpoints")


def test_forced_drop_archives_every_frame_once_with_gap_records(tmp_path: Path, sim: Any) -> None:
    sim.sim.faults.drop_after_frames = 40
    outcome, _ = record(run_config(tmp_path, sim), 3.0, sim=sim)
    assert outcome.counters["reconnects"] >= 1
    rows = ws_lines()
    assert_sent_exactly_once(sim, rows)
    events = [r["event"] for r in rows if r["record_type"] == "lifecycle"]
    first_drop = events.index("disconnect")
    assert events[first_drop + 1 : first_drop + 4] == ["reconnect_scheduled", "connect", "subscribe"]
    disconnect = next(r for r in rows if r.get("event") == "disconnect")
    assert "no close frame" in disconnect["reason"]


def test_silent_stall_is_detected_replaced_and_loses_nothing(tmp_path: Path, sim: Any) -> None:
    def stall(_: Any) -> None:
        time.sleep(1.0 * TIME_FACTOR)
        sim.sim.faults.frozen = True  # the market moves on (/books changes), the socket sends nothing
        time.sleep(2.5 * TIME_FACTOR)
        sim.sim.faults.frozen = False

    outcome, _ = record(
        run_config(tmp_path, sim, websocket={"stale_after_seconds": 1}), 5.0, during=stall, sim=sim
    )
    assert outcome.counters["stale_feed_events"] >= 1
    rows = ws_lines()
    stale = [r for r in rows if r.get("event") == "stale_feed"]
    assert stale and stale[0]["seconds_without_market_data"] >= 1
    assert_sent_exactly_once(sim, rows)
    assert outcome.counters["market_data_messages"] > 0


def test_unanswered_pings_replace_the_connection_and_the_gap_starts_at_its_last_frame(
    tmp_path: Path, sim: Any
) -> None:
    def mute(_: Any) -> None:
        time.sleep(1.0 * TIME_FACTOR)
        sim.sim.faults.ping_unanswered = True
        time.sleep(2.5 * TIME_FACTOR)
        sim.sim.faults.ping_unanswered = False

    websocket = {"ping_interval_seconds": 0.5, "pong_timeout_seconds": 1, "stale_after_seconds": 60}
    outcome, _ = record(run_config(tmp_path, sim, websocket=websocket), 5.0, during=mute, sim=sim)
    assert outcome.counters["pong_timeouts"] >= 1 and outcome.counters["reconnects"] >= 1
    rows = ws_lines()
    (timeout, *_) = [r for r in rows if r.get("event") == "pong_timeout"]
    assert 0 <= timeout["seconds_without_frames"] < 1  # frames kept coming: only PONGs stopped
    # (frames in flight when the recorder aborts the connection are lost to any client: the gap says so)
    gaps = [g.row for g in open_archives(ROOT, manifest_dirs=[MANIFESTS]) if g.record_type == "gap"]
    pong_gaps = [g for g in gaps if g["cause"] == "pong_timeout"]
    assert pong_gaps and pong_gaps[0]["start_ns"] == timeout["at_ns"] - int(
        timeout["seconds_without_frames"] * 1e9
    )


def test_more_assets_than_the_connection_limit_use_several_connections(tmp_path: Path, sim: Any) -> None:
    config = run_config(
        tmp_path, sim, websocket={"max_assets_per_connection": 2}, run={"subscribe_ahead_seconds": 900}
    )
    outcome, _ = record(config, 2.5, sim=sim)
    initial = [s for s in sim.sim.subscriptions if s[1] == "initial"]
    assert len(initial) >= 2
    assert all(len(assets) <= 2 for _, _, assets in initial)
    all_assets = [a for _, _, assets in initial for a in assets]
    assert len(all_assets) == len(set(all_assets))
    rows = frames(ws_lines())
    assert len({r["connection_sequence"] for r in rows}) >= 2
    assert_sent_exactly_once(sim, ws_lines())
    assert outcome.error is None


def test_rollover_subscribes_the_new_window_and_unsubscribes_the_old(tmp_path: Path, sim: Any) -> None:
    offset = {"seconds": 0.0}
    sim.sim.clock = lambda: time.time() + offset["seconds"]

    def clock() -> datetime:
        return datetime.now(UTC) + timedelta(seconds=offset["seconds"])

    def advance(_: Any) -> None:
        time.sleep(1.5 * TIME_FACTOR)
        offset["seconds"] = 300.0

    config = run_config(tmp_path, sim, discovery={"windows": ["5m"]}, run={"post_end_grace_seconds": 0})
    outcome, holder = record(config, 3.5, during=advance, clock=clock, sim=sim)
    assert outcome.error is None
    kinds = [(kind, tuple(assets)) for _, kind, assets in sim.sim.subscriptions]
    first = kinds[0][1]
    assert ("unsubscribe", first) in kinds or ("unsubscribe", tuple(reversed(first))) in kinds
    added = [assets for kind, assets in kinds if kind == "subscribe"]
    assert added and not set(added[0]) & set(first)
    connections = {c for c, _, _ in sim.sim.subscriptions}
    assert len(connections) == 1  # changed on the open connection, no reconnect
    events = [r.get("event") for r in ws_lines() if r["record_type"] == "lifecycle"]
    assert "unsubscribe" in events
    recorder = holder["recorder"]  # nothing is kept for the tokens no longer recorded (memory in long runs)
    kept = [recorder.tokens, recorder.stats.tokens, recorder.tracker.held_tokens()]
    assert not [token for token in first for place in kept if token in place]
    assert all(token in recorder.stats.tokens for token in added[-1])
    # every token tracked in a file's period, gone ones too (for pmws replay); the +300 s clock may cross an
    # hour, and then two files share the tokens
    lists = [[t["token_id"] for t in m["tokens_tracked"]] for m in manifests() if m["kind"] == "ws_raw"]
    assert lists and all(listed == sorted(listed) for listed in lists)
    listed = {token for tokens in lists for token in tokens}
    assert set(first) | set(added[-1]) <= listed
    assert {t["token_id"] for r in ws_lines() for t in r.get("tokens_tracked") or []} <= listed


def test_bad_frames_kept_and_counted_rest_faults_counted_and_retried(tmp_path: Path, sim: Any) -> None:
    faults = sim.sim.faults
    faults.send_non_json_every, faults.send_binary_every, faults.send_unknown_event_every = 4, 9, 6
    faults.books_status, faults.books_retry_after = 429, 0.1
    outcome, _ = record(run_config(tmp_path, sim), 2.5, sim=sim)
    counters = outcome.counters
    assert counters["parser_json_errors"] >= 1 and counters["parser_unknown_event_types"] >= 1
    assert counters["binary_frames"] >= 1
    assert counters["rest_attempts_failed"] >= 2 and counters["rest_checkpoints_failed"] >= 1
    assert_sent_exactly_once(sim, ws_lines())
    per_file = manifests()
    assert sum(m["counters"]["parser_json_errors"] for m in per_file) == counters["parser_json_errors"]
    rest_rows = [
        json.loads(line)
        for p in (ROOT / "rest_checkpoints").rglob("*.jsonl.gz")
        for line in iter_gzip_lines(p)
    ]
    assert {r["attempt"] for r in rest_rows} >= {1, 2}
    assert all(r["status_code"] == 429 for r in rest_rows)


def test_books_verify_and_rest_agrees_with_the_rebuilt_books(tmp_path: Path, sim: Any) -> None:
    outcome, _ = record(run_config(tmp_path, sim), 3.0, sim=sim)
    counters = outcome.counters
    assert counters["book_hash_verified"] > 50
    assert counters["book_hash_mismatched"] == 0
    assert counters["rest_book_agree"] >= 1
    assert counters["divergences"] == 0


def test_hashes_verified_in_a_worker_are_counted_exactly_in_every_file(tmp_path: Path, sim: Any) -> None:
    config = run_config(tmp_path, sim, run={"verify_in_worker": True, "rotate_interval_seconds": 1})
    outcome, holder = record(config, 3.5, sim=sim)
    assert outcome.error is None and holder["recorder"].tracker.failed is None
    counters = outcome.counters
    assert counters["book_hash_verified"] > 50 and counters["book_hash_mismatched"] == 0
    assert counters["rest_book_agree"] >= 1 and counters["divergences"] == 0
    per_file = manifests()
    assert len(per_file) >= 3
    for name in ("book_hash_verified", "book_hash_mismatched", "rest_book_agree", "frames"):
        assert sum(m["counters"][name] for m in per_file) == counters[name], name
    # every hash-carrying change the simulator sent was verified: none skipped, none sampled
    changes = sum(
        1
        for r in frames(ws_lines())
        for e in (r["json"] if isinstance(r["json"], list) else [r["json"]] if r["json"] else [])
        for c in (e.get("price_changes") or [])
        if c.get("hash")
    )
    books = sum(
        1
        for r in frames(ws_lines())
        for e in (r["json"] if isinstance(r["json"], list) else [r["json"]] if r["json"] else [])
        if e.get("event_type") == "book"
    )
    assert counters["book_hash_verified"] + counters["book_hash_pending"] == changes + books


def test_metrics_health_and_readiness(tmp_path: Path, sim: Any) -> None:
    answers: dict[str, Any] = {}

    def probe(holder: dict[str, Any]) -> None:
        time.sleep(1.5 * TIME_FACTOR)
        port = holder["server"].port
        for path in ("/metrics", "/healthz", "/readyz"):
            with urllib.request.urlopen(
                f"http://127.0.0.1:{port}{path}", timeout=5 * TIME_FACTOR
            ) as response:
                answers[path] = (response.status, response.read().decode())

    record(run_config(tmp_path, sim), 2.5, during=probe, sim=sim)
    assert answers["/healthz"][0] == 200
    assert answers["/readyz"][0] == 200
    metrics = answers["/metrics"][1]
    for name in (
        "pmws_frames_total",
        "pmws_reconnects_total",
        "pmws_stale_feed_events_total",
        "pmws_divergences_total",
        "pmws_book_hash_verified_total",
        'pmws_connections{state="subscribed"}',
    ):
        assert name in metrics


def start_run(tmp_path: Path, config: Path, **kwargs: Any) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "pmws", "run", "--config", str(config), "--no-live"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        **kwargs,
    )


def wait_for(predicate: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout * TIME_FACTOR
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_sigterm_closes_everything_and_exits_zero(tmp_path: Path, sim: Any) -> None:
    proc = start_run(tmp_path, run_config(tmp_path, sim))
    wait_for(lambda: len(sim.sim.sent_frames) > 50)
    sim.sim.faults.silent = True
    time.sleep(0.5 * TIME_FACTOR)
    proc.send_signal(signal.SIGTERM)
    began = time.monotonic()
    output, _ = proc.communicate(timeout=15 * TIME_FACTOR)
    assert proc.returncode == 0, output
    assert time.monotonic() - began < 10 * TIME_FACTOR
    assert not list((tmp_path / ROOT).rglob(".*.open"))
    assert_sent_exactly_once(sim, ws_lines(tmp_path / ROOT))
    assert "Traceback" not in output


def test_kill_9_then_restart_salvages_the_orphan(tmp_path: Path, sim: Any) -> None:
    config = run_config(tmp_path, sim, archive={"flush_interval_seconds": 0.2})
    proc = start_run(tmp_path, config)
    wait_for(lambda: len(sim.sim.sent_frames) > 150)
    time.sleep(0.5 * TIME_FACTOR)
    proc.kill()
    proc.communicate(timeout=5 * TIME_FACTOR)
    sent_before_kill = [f.payload for f in sim.sim.sent_frames]
    orphans = list((tmp_path / ROOT).rglob(".*.open"))
    assert len(orphans) == 2
    second = start_run(tmp_path, config)
    wait_for(lambda: any((tmp_path / ROOT).rglob("*.salvaged")))
    second.send_signal(signal.SIGTERM)
    output, _ = second.communicate(timeout=15 * TIME_FACTOR)
    assert second.returncode == 0, output
    recovered = [json.loads(p.read_text()) for p in (tmp_path / MANIFESTS).glob("*.json")]
    recovered = [m for m in recovered if m["recovered"]]
    assert {m["kind"] for m in recovered} == {"ws_raw", "rest_checkpoints"}
    ws = next(m for m in recovered if m["kind"] == "ws_raw")
    path = tmp_path / ROOT / ws["relative_path"]
    rows = [json.loads(line) for line in iter_gzip_lines(path)]
    got = [r["raw_text"].encode() for r in rows if r["record_type"] == "ws_frame"]
    assert got == sent_before_kill[: len(got)]  # a prefix: nothing reordered or invented
    assert len(sent_before_kill) - len(got) <= 80  # at most ~1 s of frames at 80 frames/s
    assert all(p.exists() for p in (tmp_path / ROOT).rglob("*.open.salvaged"))  # orphan kept


def test_full_disk_is_a_clear_error_not_a_silent_loss(tmp_path: Path, sim: Any) -> None:
    config = run_config(tmp_path, sim, archive={"flush_interval_seconds": 0.1})

    def small_files() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))

    # coverage's own data file (when the suite measures subprocesses) would hit the same size limit
    unmeasured = {k: v for k, v in os.environ.items() if not k.startswith("COVERAGE_")}
    proc = start_run(tmp_path, config, preexec_fn=small_files, env=unmeasured)
    output, _ = proc.communicate(timeout=30 * TIME_FACTOR)
    assert proc.returncode == 1, output
    assert "write failed" in output and "File too large" in output
    assert "Traceback" not in output


def test_unwritable_output_directory(tmp_path: Path, sim: Any) -> None:
    blocker = tmp_path / "blocked"
    blocker.write_text("a file where a directory should be")
    config = run_config(tmp_path, sim, run={"output_dir": str(blocker / "sub")})
    proc = start_run(tmp_path, config)
    output, _ = proc.communicate(timeout=20 * TIME_FACTOR)
    assert proc.returncode == 1
    assert "not writable" in output and "Traceback" not in output


@pytest.mark.parametrize("bad", [{"run": {"shard_index": 3, "shard_count": 2}}])
def test_bad_shard_is_a_config_error(tmp_path: Path, sim: Any, bad: dict[str, Any]) -> None:
    proc = start_run(tmp_path, run_config(tmp_path, sim, **bad))
    output, _ = proc.communicate(timeout=20 * TIME_FACTOR)
    assert proc.returncode == 2 and "run.shard_index 3" in output


def test_two_shards_split_the_markets_with_no_token_twice(tmp_path: Path, sim: Any) -> None:
    procs = []
    for index in (0, 1):
        shard_dir = tmp_path / f"shard{index}"
        shard_dir.mkdir()
        config = run_config(
            shard_dir, sim, run={"shard_index": index, "shard_count": 2, "subscribe_ahead_seconds": 3600}
        )
        procs.append((shard_dir, start_run(shard_dir, config)))
    wait_for(lambda: len(sim.sim.sent_frames) > 300)
    time.sleep(1.0 * TIME_FACTOR)
    for _, proc in procs:
        proc.send_signal(signal.SIGTERM)
    tokens_by_shard = []
    for shard_dir, proc in procs:
        output, _ = proc.communicate(timeout=15 * TIME_FACTOR)
        assert proc.returncode == 0, output
        rows = ws_lines(shard_dir / ROOT)
        subscribed = {a for r in rows if r.get("event") == "subscribe" for a in r["assets_ids"]}
        seen = {t["token_id"] for r in rows if r["record_type"] == "ws_frame" for t in r["tokens_tracked"]}
        assert seen and seen <= subscribed
        assert {r["shard"] for r in rows if r["record_type"] == "lifecycle"} == {f"{shard_dir.name[-1]}/2"}
        tokens_by_shard.append(subscribed)
    assert not tokens_by_shard[0] & tokens_by_shard[1]
    initial = {a for _, kind, assets in sim.sim.subscriptions if kind == "initial" for a in assets}
    assert tokens_by_shard[0] | tokens_by_shard[1] == initial
    # every market's two tokens stayed on one shard
    markets = {}
    for market in sim.sim.markets():
        ids = json.loads(market["clobTokenIds"])
        markets[market["conditionId"]] = set(ids)
    for ids in markets.values():
        if ids & initial:
            assert ids <= tokens_by_shard[0] or ids <= tokens_by_shard[1]


def test_http_429_on_connect_honours_retry_after_and_never_gives_up(
    tmp_path: Path, sim: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    sim.sim.faults.ws_reject_status = 429

    def lift(_: Any) -> None:
        time.sleep(2.0 * TIME_FACTOR)
        sim.sim.faults.ws_reject_status = None

    outcome, _ = record(run_config(tmp_path, sim), 4.5, during=lift, sim=sim)
    rows = ws_lines()
    failures = [r for r in rows if r.get("event") == "connect_failed"]
    assert failures and "HTTP 429" in failures[0]["reason"]
    delays = [r["delay_seconds"] for r in rows if r.get("event") == "reconnect_scheduled"]
    assert delays and min(delays) >= 1.0  # the simulator's Retry-After: 1, over a 0.1 s backoff floor
    assert outcome.counters["connect_failures"] >= 1
    assert outcome.counters["market_data_messages"] > 0  # connected once the 429s stopped
    shown = [line for line in capsys.readouterr().err.splitlines() if "HTTP 429" in line]
    assert len(shown) == 1 and shown[0].endswith("; retrying")  # why nothing arrives: said once, not per try


def test_wrong_shaped_gamma_answer_is_a_discovery_failed_line(tmp_path: Path, sim: Any) -> None:
    def break_gamma_once_recording(holder: dict[str, Any]) -> None:
        deadline = time.monotonic() + 10 * TIME_FACTOR
        while not (holder.get("recorder") and holder["recorder"].tokens) and time.monotonic() < deadline:
            time.sleep(0.05)
        sim.sim.faults.gamma_wrong_shape = True

    outcome, _ = record(run_config(tmp_path, sim), 2.5, sim=sim, during=break_gamma_once_recording)
    assert outcome.error is None
    failed = [r for r in ws_lines() if r.get("event") == "discovery_failed"]
    assert failed and all("/markets/keyset: Gamma answered list" in r["reason"] for r in failed)
    assert outcome.counters["discovery_failures"] == len(failed)
