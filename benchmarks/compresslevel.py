"""`archive.compresslevel`: CPU and bytes per frame at each level, on real frames (the blaster's cycle).

    python benchmarks/compresslevel.py [--frames 50000] [--levels 4,5,6,7]

The captured frames (benchmarks/_blaster.py: 52 real Polymarket frames, 639 B on average) are enveloped
as `pmws run` writes them, then compressed the way `GzipJsonlFile` does (zlib-ng, gzip wrapper, ~1 MB
batches, a sync flush per batch), once per level. CPU is this thread's time for the compression alone.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from zlib_ng import zlib_ng as zlib

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _blaster import cycle_assets, cycle_frames  # noqa: E402

from pmws.envelope import ConnectionContext, TrackedToken, build_envelope  # noqa: E402

BATCH_BYTES = 1024 * 1024


def envelopes(frames: int) -> list[bytes]:
    """`frames` envelope lines of the blaster's cycle, stamped 1 ms apart."""
    cycle = cycle_frames()
    tokens = tuple(TrackedToken("slug", market, asset, "Up", "") for market, asset in cycle_assets())
    context = ConnectionContext("S", 1, "wss://ws-subscriptions-clob.polymarket.com/ws/market", tokens)
    start = time.time_ns()
    lines = []
    for n in range(frames):
        line, _ = build_envelope(
            cycle[n % len(cycle)],
            binary=False,
            context=context,
            received_ns=start + n * 1_000_000,
            message_sequence=n + 1,
            global_sequence=n + 1,
        )
        lines.append(line)
    return lines


def measure(lines: list[bytes], level: int) -> tuple[float, float]:
    """(CPU µs per frame, compressed bytes per frame) at `level`."""
    batches, batch, size = [], [], 0
    for line in lines:
        batch.append(line)
        size += len(line)
        if size >= BATCH_BYTES:
            batches.append(b"".join(batch))
            batch, size = [], 0
    batches.append(b"".join(batch))
    deflate = zlib.compressobj(level, zlib.DEFLATED, 31)
    out = 0
    t0 = time.thread_time()
    for data in batches:
        out += len(deflate.compress(data)) + len(deflate.flush(zlib.Z_SYNC_FLUSH))
    out += len(deflate.flush(zlib.Z_FINISH))
    return (time.thread_time() - t0) / len(lines) * 1e6, out / len(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--frames", type=int, default=50_000)
    parser.add_argument("--levels", default="4,5,6,7")
    args = parser.parse_args()
    lines = envelopes(args.frames)
    raw = sum(len(line) for line in lines) / len(lines)
    print(f"{args.frames:,} envelopes of the blaster's real frames, {raw:,.0f} B each uncompressed\n")
    print("| level | CPU µs per frame | bytes per frame | ratio |")
    print("|---|---|---|---|")
    for level in (int(x) for x in args.levels.split(",")):
        cpu, size = min((measure(lines, level) for _ in range(3)), key=lambda r: r[0])
        print(f"| {level} | {cpu:.2f} | {size:.0f} | {raw / size:.1f}x |")


if __name__ == "__main__":
    main()
