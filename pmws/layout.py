"""Every output path pmws writes, in one place. Relative roots resolve against the current directory."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

DISCOVERY_LATEST = "polymarket_btc_markets_latest.json"
SIMULATED = "simulated_"  # simulated discovery files never share a name with real ones


def new_session_id(now: datetime | None = None) -> str:
    """`20261124T015000Z-3fa2c1`: sortable by start time, unique across pods."""
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    return f"{moment:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


def discovery_latest(output_dir: str | Path, *, simulated: bool = False) -> Path:
    """`polymarket_btc_markets_latest.json`, or `…_simulated_latest.json` for the simulator's markets."""
    return Path(output_dir) / f"polymarket_btc_markets_{SIMULATED if simulated else ''}latest.json"


def discovery_snapshot(output_dir: str | Path, now: datetime, *, simulated: bool = False) -> Path:
    stamp = f"{now.astimezone(UTC):%Y%m%dT%H%M%SZ}"
    return Path(output_dir) / f"polymarket_btc_markets_{SIMULATED if simulated else ''}{stamp}.json"


def session_output(latest: str | Path, session_id: str) -> Path:
    """Where one sample session keeps its own copy of a "latest" output: `<dir>/sessions/<id>/<name>`."""
    path = Path(latest)
    return path.parent / "sessions" / session_id / path.name


@dataclass(frozen=True)
class SamplePaths:
    """Outputs of one `pmws sample` session (checkpoint 010b)."""

    ws_raw: Path
    rest_checkpoints: Path
    manifest: Path  # the latest sample's manifest and report (the seed's paths)
    report: Path
    session_manifest: Path  # this session's own, kept when the next sample replaces the latest
    session_report: Path


def sample_paths(
    output_dir: str | Path, session_id: str, manifest: str | Path, report: str | Path
) -> SamplePaths:
    root = Path(output_dir)
    return SamplePaths(
        ws_raw=root / "ws_raw" / session_id / f"polymarket_ws_raw_{session_id}.jsonl.gz",
        rest_checkpoints=root
        / "rest_checkpoints"
        / session_id
        / f"polymarket_rest_checkpoints_{session_id}.jsonl.gz",
        manifest=Path(manifest),
        report=Path(report),
        session_manifest=session_output(manifest, session_id),
        session_report=session_output(report, session_id),
    )
