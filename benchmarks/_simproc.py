"""Start `pmws simulate` in a subprocess at full speed and read back its endpoints."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml


class SimProcess:
    """The simulator in its own process, so it does not share a core's GIL with what is measured."""

    def __init__(self, *, rate: float = 0.0, markets_per_window: int = 3, extra: list[str] | None = None):
        self.dir = Path(tempfile.mkdtemp(prefix="pmws-bench-"))
        self.config = self.dir / "sim.yaml"
        args = [
            sys.executable,
            "-m",
            "pmws",
            "simulate",
            "--rate",
            str(rate),
            "--write-config",
            str(self.config),
            "--markets-per-window",
            str(markets_per_window),
            "--no-record",
            *(extra or []),
        ]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 30
        while not self.config.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"simulator did not start: {self.proc.stderr.read() if self.proc.stderr else ''}"
                )
            time.sleep(0.05)
        self.endpoints: dict[str, Any] = yaml.safe_load(self.config.read_text())["endpoints"]

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()

    def __enter__(self) -> SimProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
