"""One contender, measured in its own process: prints a JSON line {frames, seconds, cpu_seconds, rss_mb, ...}.

python benchmarks/_contender.py floor  --ws-url URL --tokens-file F --seconds S
python benchmarks/_contender.py record --ws-url URL --tokens-file F --seconds S --out DIR
python benchmarks/_contender.py run    --ws-url URL --tokens-file F --seconds S --out DIR

floor: a bare websockets receive loop; record: `pmws sample`'s hot path (Link → envelope → gzip writer);
run: `pmws run`'s (the Recorder as the Link's handler: rotating archive, stats, coverage, every book hash
verified), without discovery and REST.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import sys
import time
from pathlib import Path

from websockets.asyncio.client import connect

from pmws.archive.writer import ArchiveWriter, GzipJsonlFile, LatencyStats
from pmws.config import Archive, Config, Websocket
from pmws.envelope import TrackedToken
from pmws.feed import Link, Sequencer
from pmws.protocol import subscribe_message
from pmws.sample import SampleHandler


def rss_mb() -> float:
    """Peak RSS of this process image (VmHWM: ru_maxrss would carry over a big parent's peak across exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def pid_cpu(pid: int | None) -> float:
    """CPU seconds of another process (0 for none)."""
    if pid is None:
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def floor(url: str, tokens: list[TrackedToken], seconds: float) -> dict[str, float]:
    """A bare websockets receive loop that discards every frame."""
    frames = 0
    async with connect(url, ping_interval=None, max_size=None) as ws:
        await ws.send(subscribe_message([t.token_id for t in tokens]))
        c0, t0 = cpu(), time.perf_counter()
        deadline = t0 + seconds
        while time.perf_counter() < deadline:
            await ws.recv()
            frames += 1
        elapsed = time.perf_counter() - t0
    return {"frames": frames, "seconds": elapsed, "cpu_seconds": cpu() - c0}


async def reference(url: str, tokens: list[TrackedToken], seconds: float, out: Path) -> dict[str, float]:
    """Issue 14's yardstick: the per-frame work that matters and nothing else, written in the loop.

    orjson parse, SHA-256 of the payload, an envelope line with `raw_text` and the spliced `json`, zlib-ng
    level 7 in a writer thread. No classification, stats, sequencing across links or back-pressure.
    """
    import threading
    from binascii import b2a_hex
    from hashlib import sha256
    from queue import SimpleQueue

    import orjson
    from zlib_ng import zlib_ng as zlib

    batches: SimpleQueue[list[bytes] | None] = SimpleQueue()

    def compress() -> None:
        deflate = zlib.compressobj(7, zlib.DEFLATED, 31)
        with open(out / "reference.jsonl.gz", "wb") as fh:
            while (batch := batches.get()) is not None:
                fh.write(deflate.compress(b"".join(batch)))
            fh.write(deflate.flush())

    thread = threading.Thread(target=compress)
    thread.start()
    template = b'{"received_at_ns":%d,"seq":%d,"payload_sha256":"%b","raw_text":%b,"json":%b}\n'
    frames, written, pending, size = 0, 0, [], 0
    async with connect(url, ping_interval=None, max_size=None) as ws:
        await ws.send(subscribe_message([t.token_id for t in tokens]))
        c0, t0, m0 = cpu(), time.perf_counter(), time.thread_time()
        deadline = t0 + seconds
        while time.perf_counter() < deadline:
            message = await ws.recv()
            received_ns = time.time_ns()
            payload = message.encode() if isinstance(message, str) else message
            orjson.loads(payload)
            frames += 1
            line = template % (
                received_ns,
                frames,
                b2a_hex(sha256(payload).digest()),
                orjson.dumps(message),
                payload,
            )
            pending.append(line)
            size += len(line)
            if size > 1 << 20:
                batches.put(pending)
                written += len(pending)
                pending, size = [], 0
        elapsed, used, main_cpu = time.perf_counter() - t0, cpu() - c0, time.thread_time() - m0
    batches.put(pending)
    written += len(pending)
    batches.put(None)
    thread.join()
    size = (out / "reference.jsonl.gz").stat().st_size
    return {
        "frames": frames,
        "seconds": elapsed,
        "cpu_seconds": used,
        "main_cpu_seconds": main_cpu,
        "bytes_on_disk": size,
        "lines": written,
    }


async def record(
    url: str,
    tokens: list[TrackedToken],
    seconds: float,
    out: Path,
    read_batch_ms: float = 0.0,
    compresslevel: int = Archive.compresslevel,
) -> dict[str, float]:
    """pmws's hot path: the same Link + envelope + gzip writer `sample` and `run` use."""
    latency = LatencyStats()
    archive = GzipJsonlFile(out / "bench.jsonl.gz", compresslevel=compresslevel)
    writer = ArchiveWriter(archive, flush_interval=1.0, latency=latency)
    handler = SampleHandler(writer, frozenset(t.token_id for t in tokens))
    stop = asyncio.Event()
    settings = Websocket(stale_after_seconds=3600, ping_interval_seconds=10, read_batch_ms=read_batch_ms)
    link = Link(
        slot=0,
        url=url,
        tokens=tuple(tokens),
        settings=settings,
        handler=handler,
        sequencer=Sequencer(),
        session_id="bench",
        stop=stop,
        fail_fast=True,
    )
    task = asyncio.create_task(link.run())
    while handler.stats.frames == 0:
        await asyncio.sleep(0.01)
    f0, c0, t0, m0 = handler.stats.frames, cpu(), time.perf_counter(), time.thread_time()
    await asyncio.sleep(seconds)
    frames, elapsed, used = handler.stats.frames - f0, time.perf_counter() - t0, cpu() - c0
    main_cpu = time.thread_time() - m0
    stop.set()
    await task
    summary = await writer.close()
    return {
        "frames": frames,
        "seconds": elapsed,
        "cpu_seconds": used,
        "main_cpu_seconds": main_cpu,
        "bytes_on_disk": summary.bytes,
        "lines": summary.lines,
        "p50_ms": latency.percentile(0.5) or 0,
        "p99_ms": latency.percentile(0.99) or 0,
    }


async def run_path(
    url: str,
    tokens: list[TrackedToken],
    seconds: float,
    out: Path,
    read_batch_ms: float = 0.0,
    in_worker: bool = False,
    compresslevel: int = Archive.compresslevel,
) -> dict[str, float]:
    """`pmws run`'s per-frame path: its Recorder handles every frame of one Link (no discovery, no REST)."""
    from pmws.run import Recorder

    config = Config()
    config.endpoints.ws_url = url
    config.run.output_dir, config.run.manifest_dir = str(out / "rec"), str(out / "man")
    config.websocket.stale_after_seconds = 3600
    config.websocket.read_batch_ms = read_batch_ms
    config.run.verify_in_worker = in_worker
    config.archive.compresslevel = compresslevel
    recorder = Recorder(config, stop=asyncio.Event(), session_id="bench")
    recorder.ws.roll_if_due()
    for token in tokens:
        recorder.tokens[token.token_id] = token
        recorder.tracker.set_metadata(token.token_id, "5", False)
    recorder.coverage.track(recorder.tokens)
    recorder.pool.start(0, tuple(tokens))
    stats = recorder.stats
    while stats.frames == 0:
        await asyncio.sleep(0.01)
    worker = recorder.tracker._proc.pid if recorder.tracker._proc is not None else None
    f0, c0, t0, m0, w0 = stats.frames, cpu(), time.perf_counter(), time.thread_time(), pid_cpu(worker)
    await asyncio.sleep(seconds)
    frames, elapsed, used = stats.frames - f0, time.perf_counter() - t0, cpu() - c0
    main_cpu, worker_cpu = time.thread_time() - m0, pid_cpu(worker) - w0
    await recorder.pool.shutdown()
    await recorder.ws.close()
    await recorder.rest_archive.close()
    recorder.tracker.close()
    closed = recorder.ws.closed_files
    counters = recorder.counters()
    return {
        "frames": frames,
        "seconds": elapsed,
        "cpu_seconds": used + worker_cpu,  # the verifier worker's CPU counted with the recorder's
        "main_cpu_seconds": main_cpu,
        "worker_cpu_seconds": worker_cpu,
        "bytes_on_disk": sum(m.bytes for m in closed),
        "lines": sum(m.lines for m in closed),
        "hash_verified": counters["book_hash_verified"],
        "hash_mismatched": counters["book_hash_mismatched"],
        "hash_pending": counters["book_hash_pending"],
        "frames_total": stats.frames,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["floor", "reference", "record", "run"])
    parser.add_argument("--ws-url", required=True)
    parser.add_argument("--tokens-file", type=Path, required=True)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--out", type=Path, default=Path("."))
    parser.add_argument("--read-batch-ms", type=float, default=0.0, help="websocket.read_batch_ms")
    parser.add_argument("--verify-in-worker", action="store_true", help="run: run.verify_in_worker")
    parser.add_argument(
        "--compresslevel", type=int, default=Archive.compresslevel, help="archive.compresslevel"
    )
    args = parser.parse_args()
    tokens = [TrackedToken(**t) for t in json.loads(args.tokens_file.read_text())]
    if args.mode == "floor":
        result = asyncio.run(floor(args.ws_url, tokens, args.seconds))
    elif args.mode == "reference":
        result = asyncio.run(reference(args.ws_url, tokens, args.seconds, args.out))
    elif args.mode == "record":
        result = asyncio.run(
            record(args.ws_url, tokens, args.seconds, args.out, args.read_batch_ms, args.compresslevel)
        )
    else:
        result = asyncio.run(
            run_path(
                args.ws_url,
                tokens,
                args.seconds,
                args.out,
                args.read_batch_ms,
                args.verify_in_worker,
                args.compresslevel,
            )
        )
    result["rss_mb"] = rss_mb()
    print(json.dumps(result))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
