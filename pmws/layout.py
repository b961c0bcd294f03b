"""Every output path pmws writes, in one place. Relative roots resolve against the current directory."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

DISCOVERY_LATEST = "polymarket_btc_markets_latest.json"


def new_session_id(now: datetime | None = None) -> str:
    """`20261124T015000Z-3fa2c1`: sortable by start time, unique across pods."""
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    return f"{moment:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


def discovery_latest(output_dir: str | Path) -> Path:
    return Path(output_dir) / DISCOVERY_LATEST


def discovery_snapshot(output_dir: str | Path, now: datetime) -> Path:
    return Path(output_dir) / f"polymarket_btc_markets_{now.astimezone(UTC):%Y%m%dT%H%M%SZ}.json"


@dataclass(frozen=True)
class SamplePaths:
    """Outputs of one `pmws sample` session (checkpoint 010b)."""

    ws_raw: Path
    rest_checkpoints: Path
    manifest: Path
    report: Path


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
    )
