"""Write a config file that points every endpoint at a running simulator."""

from __future__ import annotations

from pathlib import Path

import yaml

from pmws.archive.files import write_atomic


def write_sim_config(path: Path, gamma_url: str, clob_url: str, ws_url: str) -> None:
    """A ready-to-use config: endpoints at the simulator, short sample settings."""
    data = {
        "endpoints": {"gamma_url": gamma_url, "clob_url": clob_url, "ws_url": ws_url},
        "sample": {"duration_seconds": 20, "rest_checkpoint_interval_seconds": 5},
    }
    write_atomic(
        path,
        "# written by `pmws simulate --write-config`\n" + yaml.safe_dump(data, sort_keys=False),
    )
