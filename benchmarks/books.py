"""`pmws books` throughput against the floor of reading the same archives, and its peak RSS at two sizes.

    python benchmarks/books.py [--seconds 6] [--hours 2 8]

1. Records `pmws run` against the simulator (its own process, full speed) for `--seconds` into one hour.
2. Builds two archives by copying that hour into consecutive hours (times shifted, names, manifests), so
   the larger holds `hours[1] / hours[0]` times the frames of the smaller with the same mix.
3. For each archive, in separate processes: the floor (gunzip + orjson.loads of every line of every file,
   nothing else) and `pmws books` (read + merge + gaps + replica window + tracker + Parquet) with each
   `--workers` value (default 1, and 0: the auto choice users get), each with its peak RSS (VmHWM; with
   workers, the largest process's). Prints frames/s and MB/s (compressed archive bytes), the ratio to the
   floor, and RSS.
4. For the smaller archive, where the CPU goes (one process each): the floor, the reader, the builder without
   Parquet over every token and over each half of a 2-worker split, and the best ratio to the floor that 2
   workers on 2 cores could reach with no overhead at all.
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

import orjson
import yaml
from zlib_ng import gzip_ng

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _simproc import SimProcess  # noqa: E402

HOUR_NS = 3600 * 1_000_000_000


def peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def record(seconds: float, out: Path) -> Path:
    """`pmws run` against a full-speed simulator for `seconds`; returns its output directory."""

    from pmws.config import load_config
    from pmws.run import run_recorder

    sim = SimProcess(rate=0.0)
    try:
        endpoints = yaml.safe_load(sim.config.read_text())["endpoints"]
        out.mkdir(parents=True, exist_ok=True)
        config = out / "run.yaml"
        run = {
            "output_dir": str(out / "rec"),
            "manifest_dir": str(out / "rec-manifests"),
            "rotate_interval_seconds": 3600,
            "subscribe_ahead_seconds": 86400,
            "rest_checkpoint_interval_seconds": 2,
        }
        data = {"endpoints": endpoints, "run": run, "metrics": {"enabled": False}}
        config.write_text(yaml.safe_dump(data))

        async def main() -> None:
            stop = asyncio.Event()
            asyncio.get_running_loop().call_later(seconds, stop.set)
            await run_recorder(load_config(config, env={}), stop=stop)

        asyncio.run(main())
    finally:
        sim.stop()
    return out / "rec"


def replicate(source: Path, hours: int, out: Path) -> Path:
    """`hours` consecutive hourly copies of every archive under `source` (times shifted by k hours)."""
    from pmws.archive.digest import file_digest
    from pmws.read.sources import period_start_of_name
    from pmws.rotation import archive_name, session_of_name

    root = out / "rec"
    manifests = out / "rec-manifests"
    manifests.mkdir(parents=True, exist_ok=True)
    for path in sorted(source.rglob("*.jsonl.gz")):
        kind = "ws_raw" if "ws_raw" in path.name else "rest_checkpoints"
        session = session_of_name(path.name)
        start_ns = period_start_of_name(path.name)
        assert session and start_ns is not None
        lines = list(gzip_ng.open(path, "rb"))
        names = [archive_name(root, kind, session, start_ns // 10**9 + k * 3600, 3600) for k in range(hours)]
        for k, name in enumerate(names):
            name.final.parent.mkdir(parents=True, exist_ok=True)
            with gzip_ng.open(name.final, "wb", compresslevel=7) as fh:
                for line in lines:
                    fh.write(shift(line, k * HOUR_NS))
            digest, size = file_digest(name.final)
            manifest = {"file": name.final.name, "bytes": size, "sha256": digest, "period_seconds": 3600}
            if k + 1 < hours:
                manifest["rotated_to"] = names[k + 1].final.name
            (manifests / f"{name.final.name}.manifest.json").write_bytes(orjson.dumps(manifest))
    return root


def shift(line: bytes, by_ns: int) -> bytes:
    if not by_ns:
        return line
    row = orjson.loads(line)
    for key in ("received_at_ns", "at_ns"):
        if isinstance(row.get(key), int):
            row[key] += by_ns
    from pmws.envelope import utc_text
    from pmws.read import utc_to_ns

    for key in ("received_at_utc", "at_utc", "requested_at_utc", "completed_at_utc"):
        ns = utc_to_ns(row.get(key))
        if ns is not None:
            row[key] = utc_text(ns + by_ns)
    return orjson.dumps(row) + b"\n"


def child_floor(root: Path) -> dict[str, Any]:
    from pmws.archive.reader import iter_gzip_lines

    files = sorted(root.rglob("*.jsonl.gz"))
    size = sum(p.stat().st_size for p in files)
    t0 = time.perf_counter()
    lines = frames = 0
    for path in files:
        for line in iter_gzip_lines(path):
            if line:
                row = orjson.loads(line)
                lines += 1
                frames += row.get("record_type") == "ws_frame"
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "frames": frames, "lines": lines, "bytes": size, "rss_mb": peak_rss_mb()}


def _cpu() -> float:
    """CPU seconds of this process (every thread) and of its finished children (the workers)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def child_books(root: Path, out: Path, workers: int) -> dict[str, Any]:
    from pmws.books import auto_workers, build_books
    from pmws.read import open_archives

    reader = open_archives(root)
    workers = auto_workers(reader, workers)
    t0, cpu0 = time.perf_counter(), _cpu()
    result = build_books(reader, out, snapshot_interval_seconds=60, overwrite=True, workers=workers)
    seconds = time.perf_counter() - t0
    return {
        "workers": workers,
        "seconds": seconds,
        "cpu": _cpu() - cpu0,
        "frames": result.report.frames,
        "bytes": result.report.bytes_read,
        "rss_mb": max(peak_rss_mb(), resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024),
        "rows": result.rows,
        "hashes": result.hashes["hash"],
        "problems": len(result.report.problems),
    }


def child_split(root: Path) -> dict[str, float]:
    """CPU seconds (this process) of each layer of `pmws books` on one archive: the floor, the reader, and
    the builder without Parquet over every token and over each half of a 2-worker split (each reads all)."""
    from pmws.read import open_archives
    from pmws.read.booksbuild import BookBuilder

    class Counting:
        def add(self, table: str, hour: int, row: tuple[Any, ...]) -> None:
            pass

        def hour_of(self, ns: int) -> int:
            return ns // HOUR_NS

    cpu = time.process_time
    start = cpu()
    child_floor(root)
    split = {"floor": cpu() - start}
    start = cpu()
    for _ in open_archives(root):
        pass
    split["read"] = cpu() - start
    for index, count in ((0, 1), (0, 2), (1, 2)):
        builder = BookBuilder(Counting(), snapshot_interval_seconds=60, shard=(index, count))
        start = cpu()
        for record in open_archives(root):
            builder.on_record(record)
        builder.finish()
        split[f"build {index}/{count}"] = cpu() - start
    return split


def in_child(mode: str, *args: Path) -> dict[str, Any]:
    command = [sys.executable, __file__, "--child", mode, *map(str, args)]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def split_report(split: dict[str, float], books_cpu: float | None, hours: int) -> None:
    """Where `pmws books`'s CPU goes, and the best ratio to the floor 2 workers on 2 cores could reach."""
    print(f"\nWhere the CPU goes ({hours} h archive, CPU seconds, one process each):\n")
    print("| layer | CPU s |\n|---|---|")
    names = {
        "floor": "floor: gunzip + orjson.loads of every line",
        "read": "reader: + Record, receive-order merge, replica window, gaps",
        "build 0/1": "+ builder (tracker, hash per change, rows), every token, no Parquet",
        "build 0/2": "+ builder, worker 0 of 2 (reads every line, builds its tokens)",
        "build 1/2": "+ builder, worker 1 of 2",
    }
    for key, name in names.items():
        print(f"| {name} | {split[key]:.2f} |")
    if books_cpu is None:
        return
    parquet = max(0.0, books_cpu - split["build 0/1"])
    print(f"| `pmws books`, 1 process (+ Parquet and the rest: {parquet:.2f}) | {books_cpu:.2f} |")
    worker = max(split["build 0/2"], split["build 1/2"]) + parquet / 2
    print(
        f"\nBest case for 2 workers on 2 cores (no overhead, perfect overlap): the busier worker's "
        f"{worker:.2f} CPU s against the floor's {split['floor']:.2f}: "
        f"{split['floor'] / worker:.2f} of the floor."
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=6.0, help="recording length of the base hour")
    parser.add_argument("--hours", type=int, nargs=2, default=[2, 8], help="the two archive sizes, in hours")
    parser.add_argument(
        "--workers", type=int, nargs="+", default=[1, 0], help="books.workers values to run (0: auto)"
    )
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        mode, *paths = args.child
        if mode == "floor":
            result: dict[str, Any] = child_floor(Path(paths[0]))
        elif mode == "split":
            result = child_split(Path(paths[0]))
        else:
            result = child_books(Path(paths[0]), Path(paths[1]), int(paths[2]))
        print(json.dumps(result))
        return
    work = Path(tempfile.mkdtemp(prefix="pmws-books-bench-"))
    one_process_cpu: float | None = None
    try:
        base = record(args.seconds, work / "base")
        print(f"machine: {os.cpu_count()} cores; base hour recorded in {args.seconds:g} s\n")
        print(
            "| archive | frames | MB (gz) | floor frames/s | floor MB/s | books workers | books frames/s "
            "| books MB/s | ratio | floor RSS | largest RSS |"
        )
        print("|---|---|---|---|---|---|---|---|---|---|---|")
        for hours in args.hours:
            root = replicate(base, hours, work / f"h{hours}")
            floor = in_child("floor", root)
            mb = floor["bytes"] / 1e6
            for workers in args.workers:
                books = in_child("books", root, work / f"books{hours}", Path(str(workers)))
                ratio = floor["seconds"] / books["seconds"]
                print(
                    f"| {hours} h | {floor['frames']:,} | {mb:.1f} "
                    f"| {floor['frames'] / floor['seconds']:,.0f} | {mb / floor['seconds']:.1f} "
                    f"| {books['workers']} | {books['frames'] / books['seconds']:,.0f} "
                    f"| {mb / books['seconds']:.1f} | {ratio:.2f} | {floor['rss_mb']:.0f} MB "
                    f"| {books['rss_mb']:.0f} MB |"
                )
                print(f"<!-- rows {books['rows']} hashes {books['hashes']} problems {books['problems']} -->")
                if workers == 1 and hours == args.hours[0]:
                    one_process_cpu = books["cpu"]
        split_report(in_child("split", work / f"h{args.hours[0]}"), one_process_cpu, args.hours[0])
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
