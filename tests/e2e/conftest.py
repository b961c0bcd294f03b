"""End-to-end fixtures: a real simulator on loopback, a config pointing at it, the CLI runner."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from pmws.archive.reader import iter_gzip_lines
from pmws.cli import app
from pmws.sim import Faults, SimConfig, Simulator


@pytest.fixture
def sim_config() -> SimConfig:
    return SimConfig(rate_per_second=80.0, faults=Faults())


@pytest.fixture
def sim(sim_config: SimConfig) -> Iterator[Any]:
    handle = Simulator(sim_config).run_in_thread()
    try:
        yield handle
    finally:
        handle.stop()


def write_config(path: Path, sim: Any, **sections: dict[str, Any]) -> Path:
    """A config at `path` pointing at the simulator with fast, test-sized settings."""
    data: dict[str, Any] = {
        "endpoints": {"gamma_url": sim.gamma_url, "clob_url": sim.clob_url, "ws_url": sim.ws_url},
        "discovery": {"lookahead_seconds": 3600},
        "websocket": {
            "ping_interval_seconds": 0.5,
            "pong_timeout_seconds": 3,
            "stale_after_seconds": 2,
            "reconnect_initial_seconds": 0.1,
            "reconnect_max_seconds": 0.5,
        },
        "rest": {"timeout_seconds": 2, "max_attempts": 2, "retry_max_seconds": 0.5},
        "sample": {"duration_seconds": 3, "rest_checkpoint_interval_seconds": 1},
        "archive": {"flush_interval_seconds": 0.2},
    }
    for section, values in sections.items():
        data.setdefault(section, {}).update(values)
    path.write_text(yaml.safe_dump(data))
    return path


def invoke(*args: str) -> Any:
    result = CliRunner().invoke(app, list(args))
    return result


def read_jsonl_gz(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in iter_gzip_lines(path)]


def load_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())
