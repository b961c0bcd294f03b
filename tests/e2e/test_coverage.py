"""Per-token coverage against the simulator: a token gone blind on a busy connection, and a quiet market."""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from pmws.coverage import TokenState
from pmws.envelope import payload_of
from tests.conftest import TIME_FACTOR
from tests.e2e.test_run import manifests, record, run_config, ws_lines


def wait_until(predicate: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout * TIME_FACTOR
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def _events(parsed: Any) -> list[dict[str, Any]]:
    items = parsed if isinstance(parsed, list) else [parsed]
    return [e for e in items if isinstance(e, dict)]


def metrics_text(holder: dict[str, Any]) -> str:
    port = holder["server"].port
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5 * TIME_FACTOR) as response:
        return response.read().decode()


def blind_one_token(sim: Any, seen: dict[str, Any]) -> Callable[[dict[str, Any]], None]:
    """During a run: blind a token that is live, then note checkpoints, /metrics and states as it recovers."""

    def during(holder: dict[str, Any]) -> None:
        assert wait_until(lambda: "recorder" in holder, 5)
        recorder = holder["recorder"]
        cov = recorder.coverage

        def live_token() -> str | None:
            return next((t for t, c in cov.tokens.items() if c.state is TokenState.LIVE), None)

        assert wait_until(lambda: live_token() is not None, 10)
        token = live_token()
        seen["token"], seen["ok_at_fault"] = token, recorder.rest.ok
        sim.sim.faults.blind_tokens.add(token)  # the server silently stops sending this token's events
        assert wait_until(lambda: cov.blind_events >= 1, 10)
        seen["ok_at_blind"] = recorder.rest.ok
        seen["metrics_blind"] = metrics_text(holder)
        seen["others"] = {t: c.state for t, c in cov.tokens.items() if t != token}
        assert wait_until(lambda: cov.state(token) is TokenState.LIVE, 10)
        seen["metrics_after"] = metrics_text(holder)

    return during


def token_state_line(metrics: str, token: str) -> str:
    (line,) = [x for x in metrics.splitlines() if x.startswith("pmws_token_state{") and token in x]
    return line


def assert_detected_and_recovered(seen: dict[str, Any], counters: dict[str, int]) -> list[dict[str, Any]]:
    token = seen["token"]
    assert "metrics_after" in seen, seen
    # Detected within two checkpoints after the fault (+1: one may have been in flight at the fault).
    assert seen["ok_at_blind"] - seen["ok_at_fault"] <= 3
    assert counters["token_blind_events"] == 1 and counters["token_resubscribes"] == 1
    assert counters["token_recoveries"] == 1
    assert TokenState.BLIND not in seen["others"].values()
    assert "pmws_token_blind_events_total 1.0" in seen["metrics_blind"]
    assert 'state="live"' in token_state_line(seen["metrics_after"], token)
    assert 'pmws_tokens_by_state{state="blind"} 0.0' in seen["metrics_after"]
    rows = ws_lines()
    blind = [r for r in rows if r.get("event") == "token_blind"]
    assert [r["token_id"] for r in blind] == [token]
    assert blind[0]["rest_hash"] != blind[0]["feed_hash"]
    assert blind[0]["market_slug"] and blind[0]["last_agreeing_checkpoint_age_seconds"] > 0
    assert blind[0]["last_message_age_seconds"] > 0
    after = rows[rows.index(blind[0]) :]
    assert any(r.get("event") == "resubscribe" and r["assets_ids"] == [token] for r in after)
    assert token in {
        e.get("asset_id")
        for r in after
        if r["record_type"] == "ws_frame" and r["json"]
        for e in _events(orjson.loads(payload_of(r)))
        if e.get("event_type") == "book"
    }
    return rows


def test_blind_token_is_detected_resubscribed_and_recovers(tmp_path: Path, sim: Any) -> None:
    seen: dict[str, Any] = {}
    config = run_config(tmp_path, sim, run={"rest_checkpoint_interval_seconds": 1.0})
    outcome, _ = record(config, 30.0, during=blind_one_token(sim, seen), sim=sim, stop_after_during=True)
    assert_detected_and_recovered(seen, outcome.counters)
    assert outcome.counters["reconnects"] == 0 and outcome.counters["token_resubscribe_reconnects"] == 0
    (manifest,) = manifests()  # the hour's file: blind events in the period, token states at its close
    assert manifest["counters"]["token_blind_events"] == 1
    assert manifest["counters"]["token_resubscribes"] == 1
    assert manifest["token_states_at_close"]["blind"] == 0
    assert sum(manifest["token_states_at_close"].values()) == 4


def test_blind_token_that_a_resubscribe_does_not_fix_reconnects_its_link(tmp_path: Path, sim: Any) -> None:
    sim.sim.faults.blind_until_reconnect = True
    seen: dict[str, Any] = {}
    config = run_config(
        tmp_path,
        sim,
        run={"rest_checkpoint_interval_seconds": 1.0},
        websocket={"resubscribe_timeout_seconds": 1.5 * TIME_FACTOR},
    )
    outcome, _ = record(config, 30.0, during=blind_one_token(sim, seen), sim=sim, stop_after_during=True)
    rows = assert_detected_and_recovered(seen, outcome.counters)
    assert 'pmws_tokens_by_state{state="blind"} 1.0' in seen["metrics_blind"]
    assert 'state="blind"' in token_state_line(seen["metrics_blind"], seen["token"])
    assert outcome.counters["token_resubscribe_reconnects"] == 1 and outcome.counters["reconnects"] == 1
    events = [r["event"] for r in rows if r["record_type"] == "lifecycle"]
    assert events.index("resubscribe_timeout") < events.index("disconnect")
    disconnect = next(r for r in rows if r.get("event") == "disconnect")
    assert disconnect["reason"] == "resubscribe_timeout"


def test_quiet_market_is_not_churned(tmp_path: Path, sim: Any) -> None:
    sim.sim.faults.silent = True  # books on subscribe, then nothing trades: /books stays equal
    states: dict[str, Any] = {}

    def watch(holder: dict[str, Any]) -> None:
        assert wait_until(lambda: "recorder" in holder, 5)
        time.sleep(5.5 * TIME_FACTOR)
        states.update(holder["recorder"].coverage.by_state())
        states["ready"] = holder["recorder"].ready()[0]

    config = run_config(
        tmp_path,
        sim,
        run={"rest_checkpoint_interval_seconds": 1},  # the floor (config.RULES)
        websocket={"stale_after_seconds": 2.2},  # three stale periods over the run
    )
    outcome, _ = record(config, 7.0, during=watch, sim=sim)
    assert outcome.counters["stale_feed_events"] == 0
    assert outcome.counters["reconnects"] == 0
    assert outcome.counters["token_blind_events"] == 0
    assert states[TokenState.QUIET] > 0 and states[TokenState.BLIND] == 0 and states[TokenState.LIVE] == 0
    assert states["ready"] is True
    assert not [r for r in ws_lines() if r.get("event") in ("stale_feed", "token_blind")]
