"""Replay benchmark: `pmws replay --speed max` in frames/s against `pmws sample`'s ingest rate, same machine.

    python benchmarks/replay.py [--seconds 5] [--tokens 4]

1. The simulator at full speed is recorded for `--seconds` by pmws's ingest hot path (`benchmarks/ingest.py`'s
   `record` contender, the code `pmws sample` runs): its frames/s is the ingest rate, its archive the input.
2. `pmws replay ARCHIVE --speed max` (its own process) serves that archive to a bare websockets client that
   subscribes to the same tokens and counts frames until the replay goes quiet.
Prints both rates, the ratio, and CPU seconds per 100 k frames of the replay process and of the bare client.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from websockets.asyncio.client import connect

from pmws.protocol import subscribe_message

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _simproc import SimProcess  # noqa: E402
from ingest import discover_tokens  # noqa: E402

QUIET_SECONDS = 2.0  # the replay is over when no frame came for this long


def ingest(seconds: float, token_count: int, out: Path) -> tuple[dict[str, Any], list[str]]:
    """pmws's ingest contender against the simulator; leaves its archive in `out`."""
    with SimProcess(rate=0, markets_per_window=max(3, token_count // 8 + 1)) as sim:
        tokens = discover_tokens(sim.endpoints["gamma_url"], token_count)
        tokens_file = out / "tokens.json"
        tokens_file.write_text(json.dumps([t.to_json() for t in tokens]))
        args = [sys.executable, str(HERE / "_contender.py"), "record", "--ws-url", sim.endpoints["ws_url"]]
        args += ["--tokens-file", str(tokens_file), "--seconds", str(seconds), "--out", str(out)]
        done = subprocess.run(args, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1]), [t.token_id for t in tokens]


def cpu_of(pid: int) -> float:
    """User + system CPU seconds of a process so far (/proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def receive_all(ws_url: str, token_ids: list[str], pid: int) -> dict[str, float]:
    """Subscribe, count every frame until the replay has been quiet for QUIET_SECONDS."""
    frames, first, last = 0, 0.0, 0.0
    async with connect(ws_url, ping_interval=None, max_size=None) as ws:
        c0, mine0 = cpu_of(pid), cpu_of(os.getpid())
        await ws.send(subscribe_message(token_ids))
        while True:
            try:
                await asyncio.wait_for(ws.recv(), QUIET_SECONDS)
            except TimeoutError:
                break
            last = time.perf_counter()
            first = first or last
            frames += 1
        used = cpu_of(pid) - c0  # includes QUIET_SECONDS of idling, which costs next to nothing
        client = cpu_of(os.getpid()) - mine0
    return {
        "frames": frames,
        "seconds": last - first,
        "server_cpu_seconds": used,
        "client_cpu_seconds": client,
    }


def replay(archive: Path, token_ids: list[str]) -> dict[str, float]:
    """`pmws replay --speed max` in its own process, drained by a bare client in this one."""
    args = [sys.executable, "-m", "pmws", "replay", str(archive), "--speed", "max"]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        started = time.perf_counter()
        ws_url = ""
        for line in proc.stdout:
            if line.startswith("ws_url: "):
                ws_url = line.split(" ", 1)[1].strip()
                break
        if not ws_url:
            raise SystemExit(f"pmws replay did not start: {proc.stderr.read() if proc.stderr else ''}")
        startup = time.perf_counter() - started
        return {**asyncio.run(receive_all(ws_url, token_ids, proc.pid)), "startup_seconds": startup}
    finally:
        proc.terminate()
        proc.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--tokens", type=int, default=4)
    args = parser.parse_args()
    out = Path(tempfile.mkdtemp(prefix="pmws-bench-replay-"))
    try:
        recorded, token_ids = ingest(args.seconds, args.tokens, out)
        archive = out / "bench.jsonl.gz"
        played = replay(archive, token_ids)
    finally:
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        size = sum(p.stat().st_size for p in out.glob("*.gz")) / 1e6
        shutil.rmtree(out, ignore_errors=True)
    ingest_rate = recorded["frames"] / recorded["seconds"]
    replay_rate = played["frames"] / played["seconds"]
    print("| | frames | frames/s | CPU s/100k frames |")
    print("|---|---|---|---|")
    print(
        f"| pmws sample ingest | {recorded['frames']:,} | {ingest_rate:,.0f} | "
        f"{recorded['cpu_seconds'] / recorded['frames'] * 1e5:.2f} |"
    )
    print(
        f"| pmws replay --speed max | {played['frames']:,} | {replay_rate:,.0f} | "
        f"{played['server_cpu_seconds'] / played['frames'] * 1e5:.2f} server, "
        f"{played['client_cpu_seconds'] / played['frames'] * 1e5:.2f} client |"
    )
    print(
        f"\nreplay / ingest = {replay_rate / ingest_rate:.2f}  (archive {size:.1f} MB, "
        f"replay start-up {played['startup_seconds']:.1f} s, peak child RSS {peak:.0f} MB)"
    )


if __name__ == "__main__":
    main()
