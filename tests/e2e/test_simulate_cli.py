"""`pmws simulate` as a user runs it: prints the endpoints, writes a config other commands can use."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml
from typer.testing import CliRunner

from pmws.cli import app
from tests.conftest import TIME_FACTOR


def test_simulate_prints_urls_and_writes_a_config_discover_can_use(tmp_path: Path) -> None:
    config = tmp_path / "sim.yaml"
    proc = subprocess.Popen(
        [sys.executable, "-m", "pmws", "simulate", "--write-config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20 * TIME_FACTOR
        while not config.exists():
            assert time.monotonic() < deadline and proc.poll() is None, "simulator did not start"
            time.sleep(0.05)
        endpoints = yaml.safe_load(config.read_text())["endpoints"]
        assert endpoints["ws_url"].startswith("ws://127.0.0.1:") and endpoints["ws_url"].endswith(
            "/ws/market"
        )
        result = CliRunner().invoke(app, ["discover", "--config", str(config)])
        assert result.exit_code == 0, result.output
        assert Path("data/discovery/polymarket_btc_markets_latest.json").exists()
        assert "btc-updown-5m-" in result.output
    finally:
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=10 * TIME_FACTOR)
    assert proc.returncode == 0, output
    for key in ("gamma_url:", "clob_url:", "ws_url:"):
        assert key in output
    assert "Traceback" not in output
