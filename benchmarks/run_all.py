"""Every performance figure in one run, each next to the floor measured in the same run.

    python benchmarks/run_all.py [--quick] [--only 2 --sustain 30 --default-only]

1. ingest: pmws hot path vs a bare websockets receive loop (frames/s, CPU s/100k frames, ratio) with
   1/200/1000 tokens; and `pmws run` end to end (book-hash verification on).
2. sustained: `pmws run` at 1 000 frames/s: CPU % of one core, RSS start/end, p50/p99 frame-to-disk, with
   `websocket.read_batch_ms` 0 (the default) and 20, and with `run.verify_in_worker`; then the bare receive
   loop at the same rate (the floor). `--only 2 --default-only --sustain 30`: the default and the floor only.
3. re-read: `pmws gate` and `pmws verify` in MB/s of JSONL vs gunzip + sha256 + JSON parse of the same file.
4. discovery of 5 000 Gamma markets; one REST checkpoint of 500 tokens.
5. side by side with cryptofeed's raw-data recorder over wss:// (`benchmarks/peer_cryptofeed.py`; it builds
   cryptofeed's venv from PyPI on first use).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gzip
import hashlib
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _simproc import SimProcess  # noqa: E402
from ingest import (  # noqa: E402
    contender,
    discover_tokens,
    envelope_cost,
    envelope_table,
    real_frames,
    table,
)

from pmws.gamma import fetch_btc_markets  # noqa: E402
from pmws.markets import filter_live  # noqa: E402
from pmws.rest import checkpoint_books  # noqa: E402


def proc_stats(pid: int, *, children: bool = True) -> tuple[float, float]:
    """(cpu seconds, rss MB) of a process from /proc; with `children`, its child processes' too (the
    book-hash verifier worker of `pmws run`)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / ticks
    rss = (
        next(
            int(line.split()[1])
            for line in Path(f"/proc/{pid}/status").read_text().splitlines()
            if line.startswith("VmRSS")
        )
        / 1024
    )
    if children:
        for child in child_pids(pid):
            with contextlib.suppress(OSError, StopIteration):
                child_cpu, child_rss = proc_stats(child)
                cpu, rss = cpu + child_cpu, rss + child_rss
    return cpu, rss


def child_pids(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            found += [int(c) for c in (task / "children").read_text().split()]
    return found


def run_config(tmp: Path, endpoints: dict[str, Any], read_batch_ms: float = 0.0, **run: Any) -> Path:
    config = {
        "endpoints": endpoints,
        "run": {
            "output_dir": str(tmp / "rec"),
            "manifest_dir": str(tmp / "man"),
            "subscribe_ahead_seconds": 86400,
            "rediscover_interval_seconds": 60,
            "rest_checkpoint_interval_seconds": 60,
            **run,
        },
        "metrics": {"host": "127.0.0.1", "port": 0},
        "discovery": {"lookahead_seconds": 86400},
        "websocket": {"stale_after_seconds": 600, "read_batch_ms": read_batch_ms},
    }
    path = tmp / "run.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def metric(port: int, name: str) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        for line in response.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
    return float("nan")


def start_run(config: Path) -> tuple[subprocess.Popen[str], int]:
    """Start `pmws run`; its first line says where /metrics listens."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "pmws", "run", "--config", str(config), "--no-live"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        if "metrics http://" in line:
            # keep reading its output: a pipe nobody drains fills (64 kB of status lines, about an hour)
            lines: list[str] = []
            drain = threading.Thread(target=lines.extend, args=(proc.stdout,), daemon=True)
            drain.start()
            _OUTPUT[proc.pid] = (drain, lines)
            return proc, int(line.rsplit(":", 1)[1])
    raise RuntimeError(f"pmws run exited: {proc.wait()}")


_OUTPUT: dict[int, tuple[threading.Thread, list[str]]] = {}


def stop_run(proc: subprocess.Popen[str]) -> dict[str, Any]:
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)
    drain, lines = _OUTPUT.pop(proc.pid)
    drain.join(timeout=10)  # the rest of stdout, after the metrics line
    return json.loads(next(line for line in lines[::-1] if line.startswith("{")))


def measure_run(
    rate: float, warmup: float, seconds: float, read_batch_ms: float = 0.0, in_worker: bool = False
) -> dict[str, Any]:
    """`pmws run` against the simulator at `rate` (0 = full speed): frames, CPU and RSS over a window."""
    with SimProcess(rate=rate, markets_per_window=2) as sim, tempfile.TemporaryDirectory() as tmp:
        config = run_config(Path(tmp), sim.endpoints, read_batch_ms, verify_in_worker=in_worker)
        proc, port = start_run(config)
        time.sleep(warmup)
        f0, (c0, rss0), t0 = metric(port, "pmws_frames_total"), proc_stats(proc.pid), time.monotonic()
        time.sleep(seconds)
        f1, (c1, rss1), elapsed = (
            metric(port, "pmws_frames_total"),
            proc_stats(proc.pid),
            time.monotonic() - t0,
        )
        p50, p99 = metric(port, "pmws_frame_to_disk_p50_ms"), metric(port, "pmws_frame_to_disk_p99_ms")
        counters = stop_run(proc)["counters"]
        lag = stamp_lag(Path(tmp) / "rec")
    frames = f1 - f0
    return {
        "frames": frames,
        "seconds": elapsed,
        "frames_per_s": frames / elapsed,
        "cpu_seconds": c1 - c0,
        "cpu_per_100k": (c1 - c0) / max(1.0, frames) * 1e5,
        "cpu_percent": (c1 - c0) / elapsed * 100,
        "rss_start_mb": rss0,
        "rss_end_mb": rss1,
        "p50_ms": p50,
        "p99_ms": p99,
        "total_frames": counters["frames"],
        "hash_verified": counters["book_hash_verified"],
        "hash_mismatched": counters["book_hash_mismatched"],
        **lag,
    }


def stamp_lag(root: Path) -> dict[str, float]:
    """Receive stamp minus the simulator's event timestamp (epoch ms, taken as it generates the event),
    per frame: how late frames are stamped, sender queueing included (compare read_batch_ms settings)."""
    lags: list[float] = []
    for path in root.rglob("*.jsonl.gz"):
        with gzip.open(path) as fh:
            for line in fh:
                record = orjson.loads(line)
                if record.get("record_type") != "ws_frame" or not record.get("json"):
                    continue
                events = record["json"] if isinstance(record["json"], list) else [record["json"]]
                stamps = [int(e["timestamp"]) for e in events if str(e.get("timestamp", "")).isdigit()]
                if stamps:
                    lags.append(record["received_at_ns"] / 1e6 - max(stamps))
    lags.sort()
    if not lags:
        return {}
    at = lambda q: lags[min(len(lags) - 1, int(q * len(lags)))]  # noqa: E731
    return {"stamp_lag_p50_ms": at(0.5), "stamp_lag_p99_ms": at(0.99), "stamp_lag_max_ms": lags[-1]}


def floor_at(rate: float, seconds: float) -> dict[str, Any]:
    """The bare receive loop at a fixed rate: what receiving alone costs at that rate on this machine."""
    with SimProcess(rate=rate, markets_per_window=2) as sim:
        tokens = discover_tokens(sim.endpoints["gamma_url"], 16)  # what `pmws run` subscribes to here
        got = contender("floor", sim.endpoints["ws_url"], tokens, seconds)
    return {**got, "cpu_percent": got["cpu_seconds"] / got["seconds"] * 100}


def reread(seconds: float) -> dict[str, Any]:
    """Gate re-read throughput vs gunzip + sha256 + json.loads of the same file."""
    from pmws.gate import run_gate
    from pmws.transfer.verify import verify

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        with SimProcess(rate=0, markets_per_window=2) as sim:
            tokens = discover_tokens(sim.endpoints["gamma_url"], 4)
            tokens_file = tmp / "tokens.json"
            tokens_file.write_text(json.dumps([t.to_json() for t in tokens]))
            subprocess.run(
                [
                    sys.executable,
                    str(HERE / "_contender.py"),
                    "record",
                    "--ws-url",
                    sim.endpoints["ws_url"],
                    "--tokens-file",
                    str(tokens_file),
                    "--seconds",
                    str(seconds),
                    "--out",
                    str(tmp),
                ],
                check=True,
                capture_output=True,
            )
        path = tmp / "bench.jsonl.gz"
        t0 = time.perf_counter()
        compressed = path.read_bytes()
        hashlib.sha256(compressed).hexdigest()
        data = gzip.decompress(compressed)
        for line in data.splitlines():
            json.loads(line)
        floor = time.perf_counter() - t0
        manifest = tmp / "m.json"
        manifest.write_text(
            json.dumps(
                {
                    "selection": {"markets": []},
                    "outputs": [
                        {
                            "kind": "ws_raw",
                            "path": str(path),
                            "bytes": len(compressed),
                            "sha256": hashlib.sha256(compressed).hexdigest(),
                            "lines": data.count(b"\n"),
                        }
                    ],
                }
            )
        )
        t0 = time.perf_counter()
        outcome = run_gate(manifest, report_path=tmp / "r.md")
        gate = time.perf_counter() - t0
        assert not [c for c in outcome.checks if c.name == "checksums_match" and not c.passed]
        t0 = time.perf_counter()
        report = verify([], manifest_dir=tmp, sample_manifest=manifest, source=tmp)
        verified = time.perf_counter() - t0
        assert all(not r.problems for r in report.results), [r.problems for r in report.results]
    mb = len(data) / 1e6
    return {
        "mb": mb,
        "floor_mb_s": mb / floor,
        "gate_mb_s": mb / gate,
        "ratio": floor / gate,
        "verify_mb_s": mb / verified,
        "verify_ratio": floor / verified,
    }


def discovery_and_rest() -> dict[str, Any]:
    with SimProcess(rate=20, markets_per_window=1000) as sim:  # the simulator's limit: 4 000 markets

        async def go() -> dict[str, Any]:
            async with httpx.AsyncClient(timeout=60) as client:
                t0 = time.perf_counter()
                fetched = await fetch_btc_markets(
                    client,
                    sim.endpoints["gamma_url"],
                    now=datetime.now(UTC),
                    windows=["5m", "15m", "1h", "4h"],
                    lookahead_seconds=86400 * 400,
                    max_pages=200,
                )
                markets = filter_live(fetched.objects, datetime.now(UTC)).markets
                discovery = time.perf_counter() - t0
                tokens = [t.token_id for m in markets for t in m.tokens][:500]
                t0 = time.perf_counter()
                checkpoint = await checkpoint_books(
                    client, sim.endpoints["clob_url"], tokens, session_id="b", checkpoint_sequence=1
                )
                rest = time.perf_counter() - t0
            return {
                "markets": len(markets),
                "discovery_s": discovery,
                "requests": fetched.requests,
                "rest_tokens": len(tokens),
                "rest_s": rest,
                "rest_ok": checkpoint.ok,
                "rest_books": len(checkpoint.books or []),
            }

        return asyncio.run(go())


def peer_section(seconds: float, rounds: int) -> dict[str, Any]:
    """Section 5; a cryptofeed that cannot be installed here is reported, not fatal."""
    import peer_cryptofeed

    try:
        python = peer_cryptofeed.cryptofeed_python()
    except SystemExit as exc:
        print(f"not measured: {exc}")
        return {}
    with tempfile.TemporaryDirectory(prefix="pmws-peer-") as tmp:
        measured = peer_cryptofeed.measure(seconds, 4, rounds, python, Path(tmp))
    print(f"4 tokens, {seconds:g} s per run, median of {rounds} rounds\n")
    print(peer_cryptofeed.table(measured))
    return measured


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short durations (a smoke run, not the figures)")
    parser.add_argument("--only", default="1,2,3,4,5", help="sections to run, e.g. 3,4")
    parser.add_argument("--sustain", type=float, help="seconds of each sustained run (default 60, quick 10)")
    parser.add_argument(
        "--default-only", action="store_true", help="sustained: the default settings and the floor only"
    )
    args = parser.parse_args()
    only = set(args.only.split(","))
    seconds, sustain = (2.0, 10.0) if args.quick else (8.0, 60.0)
    sustain = args.sustain or sustain
    variants = ((0.0, False),) if args.default_only else ((0.0, False), (20.0, False), (0.0, True))
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{platform.platform()}\n"
    )
    from ingest import measure

    full: dict[str, Any] = {}
    sustained: dict[str, Any] = {}
    r: dict[str, Any] = {}
    d: dict[str, Any] = {}
    if "1" in only:
        print("## 1. Ingest (hot path vs bare receive loop)\n")
        print(
            table(
                measure(seconds, [1, 200, 1000], modes=("floor", "reference", "sample", "run", "run-worker"))
            )
        )
        print(f"\nThe same {len(real_frames())} captured frames enveloped with each token count:\n")
        print(envelope_table(envelope_cost([1, 200, 1000])))
        full = measure_run(0, 2, seconds)
        print(
            f"\n`pmws run` end to end: {full['frames_per_s']:,.0f} frames/s, "
            f"{full['cpu_per_100k']:.2f} CPU s/100k frames, RSS {full['rss_end_mb']:.0f} MB, "
            f"hashes verified {full['hash_verified']:,} mismatched {full['hash_mismatched']}"
        )
    if "2" in only:
        print("\n## 2. Sustained 1 000 frames/s\n")
        print(
            "| read_batch_ms | CPU % of one core | RSS start → end | frame-to-disk p50 / p99 | frames/s "
            "| receive stamp − event time p50 / p99 / max |"
        )
        print("|---|---|---|---|---|---|")
        for batch, worker in variants:
            s = measure_run(1000, 3, sustain, read_batch_ms=batch, in_worker=worker)
            sustained[f"read_batch_ms={batch:g}" + (" verify_in_worker" if worker else "")] = s
            print(
                f"| {batch:g}{', verify_in_worker' if worker else ''} | {s['cpu_percent']:.1f} "
                f"| {s['rss_start_mb']:.0f} → {s['rss_end_mb']:.0f} MB "
                f"| {s['p50_ms']:.0f} / {s['p99_ms']:.0f} ms | {s['frames_per_s']:.0f} "
                f"| {s.get('stamp_lag_p50_ms', 0):.1f} / {s.get('stamp_lag_p99_ms', 0):.1f} / "
                f"{s.get('stamp_lag_max_ms', 0):.1f} ms |"
            )
        bare = floor_at(1000, min(sustain, 20.0))
        sustained["floor"] = bare
        print(
            f"\nfloor: a bare receive loop at the same rate uses {bare['cpu_percent']:.1f} % of one core "
            f"({bare['cpu_seconds'] / bare['frames'] * 1e6:.0f} µs per frame)"
        )
    if "3" in only:
        print("\n## 3. Gate re-read\n")
        r = reread(seconds)
        print(
            f"{r['mb']:.0f} MB JSONL: floor (gunzip + sha256 + json.loads) {r['floor_mb_s']:.0f} MB/s; "
            f"`pmws gate` {r['gate_mb_s']:.0f} MB/s ({r['ratio']:.0%}); "
            f"`pmws verify` {r['verify_mb_s']:.0f} MB/s ({r['verify_ratio']:.0%})"
        )
    if "4" in only:
        print("\n## 4. Discovery and REST\n")
        d = discovery_and_rest()
        print(
            f"discover {d['markets']:,} markets in {d['discovery_s']:.2f} s ({d['requests']} requests); "
            f"REST checkpoint of {d['rest_tokens']} tokens in {d['rest_s'] * 1000:.0f} ms "
            f"({d['rest_books']} books)"
        )
    peer: dict[str, Any] = {}
    if "5" in only:
        print("\n## 5. Side by side with cryptofeed's raw recorder (wss://)\n")
        peer = peer_section(seconds, rounds=1 if args.quick else 3)
    print(
        json.dumps(
            {"run": full, "sustained": sustained, "reread": r, "discovery": d, "peer": peer}, default=str
        ),
        file=sys.stderr,
    )


if __name__ == "__main__":
    orjson.dumps({})  # the same JSON library the recorder uses is importable
    main()
