"""Memory soak: `pmws run` against the simulator for a long time; is the recorder's RSS flat?

    nice -n 19 python benchmarks/soak.py [--minutes 30] [--rate 2200] [--tokens 800] [--every 10]
    nice -n 19 python benchmarks/soak.py --tracemalloc [--minutes 5] [--top 15]

Samples the recorder's RSS (from /proc, the recorder process only: the simulator runs in its own process
without recording its frames) every `--every` seconds, prints the series and the least-squares slope in MB/min
after a warm-up (the first 20 % of the samples are excluded), and a verdict against the target: flat = under
0.1 MB/min after warm-up.

Markets come from every window length (5m … 4h), so 5m markets end and new ones are subscribed during the
soak, as in production. `--tracemalloc` runs the same recorder in this process instead, with tracemalloc on,
and prints the top allocation growth (by source line) between a snapshot after the warm-up and each later one.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import sys
import tempfile
import threading
import time
import tracemalloc
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _simproc import SimProcess  # noqa: E402
from run_all import metric, proc_stats, run_config, start_run, stop_run  # noqa: E402

#: The target: RSS after warm-up grows by less than this.
FLAT_MB_PER_MIN = 0.1
WINDOWS = 4  # 5m, 15m, 1h, 4h: the simulator lists `markets_per_window` of each, two tokens per market
WINDOW_SECONDS = 4 * 3600  # the longest


def slope_per_minute(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, MB) points, in MB per minute."""
    n = len(points)
    if n < 2:
        return math.nan
    mean_t = sum(t for t, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    spread = sum((t - mean_t) ** 2 for t, _ in points)
    return sum((t - mean_t) * (y - mean_y) for t, y in points) / spread * 60 if spread else math.nan


def after_warmup(points: list[tuple[float, float]], fraction: float = 0.2) -> list[tuple[float, float]]:
    return points[int(len(points) * fraction) :]


def soak_config(tmp: Path, endpoints: dict[str, Any], tokens: int, rotate_seconds: int) -> Path:
    """A `pmws run` config that subscribes every listed market: about `tokens` tokens."""
    return run_config(
        tmp,
        endpoints,
        subscribe_ahead_seconds=markets_per_window(tokens) * WINDOW_SECONDS,
        rotate_interval_seconds=rotate_seconds,
    )


def markets_per_window(tokens: int) -> int:
    return max(1, math.ceil(tokens / (2 * WINDOWS)))


def soak(minutes: float, rate: float, tokens: int, every: float, rotate_seconds: int) -> dict[str, Any]:
    """RSS of `pmws run` every `every` seconds for `minutes`."""
    series: list[dict[str, float]] = []
    with (
        SimProcess(rate=rate, markets_per_window=markets_per_window(tokens)) as sim,
        tempfile.TemporaryDirectory(prefix="pmws-soak-") as tmp,
    ):
        proc, port = start_run(soak_config(Path(tmp), sim.endpoints, tokens, rotate_seconds))
        t0 = time.monotonic()
        end = t0 + minutes * 60
        print("| minute | RSS MB | frames/s | subscribed |\n|---|---|---|---|", flush=True)
        last_frames, last_t = 0.0, t0
        while time.monotonic() < end and proc.poll() is None:
            time.sleep(max(0.0, min(every, end - time.monotonic())))
            now = time.monotonic()
            _, rss = proc_stats(proc.pid)
            frames = metric(port, "pmws_frames_total")
            subscribed = metric(port, "pmws_subscribed_assets")
            rate_seen = (frames - last_frames) / (now - last_t)
            last_frames, last_t = frames, now
            series.append({"t": now - t0, "rss_mb": rss, "frames_per_s": rate_seen, "subscribed": subscribed})
            print(f"| {(now - t0) / 60:.2f} | {rss:.1f} | {rate_seen:,.0f} | {subscribed:.0f} |", flush=True)
        if proc.poll() is not None:
            raise SystemExit(f"pmws run exited early with {proc.returncode}")
        counters = stop_run(proc)["counters"]
    return {"series": series, "counters": counters}


def trace(minutes: float, rate: float, tokens: int, top: int, snapshots: int, rotate_seconds: int) -> None:
    """The recorder in this process under tracemalloc: top growth by line after the warm-up."""
    from pmws.config import load_config
    from pmws.run import run_recorder

    with (
        SimProcess(rate=rate, markets_per_window=markets_per_window(tokens)) as sim,
        tempfile.TemporaryDirectory(prefix="pmws-soak-") as tmp,
    ):
        config = load_config(soak_config(Path(tmp), sim.endpoints, tokens, rotate_seconds))
        config.metrics.enabled = False
        tracemalloc.start(1)
        stop = asyncio.Event()
        loop_box: list[asyncio.AbstractEventLoop] = []

        async def main() -> None:
            loop_box.append(asyncio.get_running_loop())
            outcome = await run_recorder(config, stop=stop)
            print(f"frames recorded: {outcome.counters.get('frames')}", flush=True)

        runner = threading.Thread(target=asyncio.run, args=(main(),), daemon=True)
        runner.start()
        period = minutes * 60 / (snapshots + 1)
        time.sleep(period)  # warm-up
        base = tracemalloc.take_snapshot()
        print(
            f"\nwarm-up done: traced {tracemalloc.get_traced_memory()[0] / 1e6:.1f} MB, "
            f"RSS {proc_stats(os.getpid(), children=False)[1]:.1f} MB",
            flush=True,
        )
        filters = [tracemalloc.Filter(False, tracemalloc.__file__)]
        base = base.filter_traces(filters)
        for index in range(1, snapshots + 1):
            time.sleep(period)
            snap = tracemalloc.take_snapshot().filter_traces(filters)
            traced, peak = tracemalloc.get_traced_memory()
            _, rss = proc_stats(os.getpid(), children=False)
            print(
                f"\n## +{index * period / 60:.1f} min after warm-up: traced {traced / 1e6:.1f} MB "
                f"(peak {peak / 1e6:.1f} MB), RSS {rss:.1f} MB; top growth by line\n"
            )
            for stat in snap.compare_to(base, "lineno")[:top]:
                frame = stat.traceback[0]
                print(
                    f"{stat.size_diff / 1e6:+8.2f} MB {stat.count_diff:+9d} blocks "
                    f"({stat.size / 1e6:7.2f} MB now)  {frame.filename}:{frame.lineno}",
                    flush=True,
                )
        loop_box[0].call_soon_threadsafe(stop.set)
        runner.join(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--rate", type=float, default=2200.0, help="simulator frames/s overall")
    parser.add_argument("--tokens", type=int, default=800, help="about this many subscribed tokens")
    parser.add_argument("--every", type=float, default=10.0, help="seconds between RSS samples")
    parser.add_argument("--rotate-seconds", type=int, default=3600, help="run.rotate_interval_seconds")
    parser.add_argument("--tracemalloc", action="store_true", help="in-process, print top growth by line")
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--snapshots", type=int, default=4, help="tracemalloc snapshots after the warm-up")
    args = parser.parse_args()
    print(
        f"soak: {args.minutes:g} min, simulator {args.rate:g} frames/s, ~{args.tokens} tokens, "
        f"RSS every {args.every:g} s, rotation every {args.rotate_seconds} s\n",
        flush=True,
    )
    if args.tracemalloc:
        trace(args.minutes, args.rate, args.tokens, args.top, args.snapshots, args.rotate_seconds)
        return
    result = soak(args.minutes, args.rate, args.tokens, args.every, args.rotate_seconds)
    points = [(s["t"], s["rss_mb"]) for s in result["series"]]
    kept = after_warmup(points)
    slope = slope_per_minute(kept)
    rates = [s["frames_per_s"] for s in result["series"][1:]]
    verdict = "FLAT" if slope < FLAT_MB_PER_MIN else "GROWING"
    print(
        f"\nRSS {points[0][1]:.1f} → {points[-1][1]:.1f} MB over {points[-1][0] / 60:.1f} min; "
        f"mean {sum(rates) / max(1, len(rates)):,.0f} frames/s; "
        f"slope after warm-up (from minute {kept[0][0] / 60:.1f}, {len(kept)} samples): {slope:+.3f} MB/min"
        f"\nverdict: {verdict} (target: flat = under {FLAT_MB_PER_MIN} MB/min after warm-up)"
    )
    print(json.dumps({"slope_mb_per_min": slope, "verdict": verdict, **result}), file=sys.stderr)


if __name__ == "__main__":
    main()
