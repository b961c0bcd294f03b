"""cryptofeed's raw-data recorder on the simulator's wss feed, measured in its own process; prints JSON.

Runs inside the separate cryptofeed venv that benchmarks/peer_cryptofeed.py builds: imports cryptofeed and the
standard library only (never pmws).

    python benchmarks/_cryptofeed_peer.py --ws-url wss://... --tokens-file F --seconds S --out DIR
        [--loop uvloop|asyncio] [--max-queue N|none]

A minimal Feed subclass for a custom "POLYMARKET" exchange: one websocket endpoint (the simulator), one
channel ("market"), the same subscribe frame pmws sends (pmws.protocol.subscribe_message), a message handler
that only counts frames. Recording is cryptofeed's own:
`FeedHandler(raw_data_collection=AsyncFileCallback(out))` sets `Connection.raw_data_callback`, which every
WSAsyncConn awaits with each frame (and each frame it sends) before the feed's handler sees it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import sys
import time
from importlib.metadata import version
from pathlib import Path

from cryptofeed import FeedHandler
from cryptofeed.connection import WebsocketEndpoint
from cryptofeed.defines import L2_BOOK
from cryptofeed.feed import Feed
from cryptofeed.raw_data_collection import AsyncFileCallback
from cryptofeed.symbols import Symbols

EXCHANGE = "POLYMARKET"


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def polymarket_feed(url: str, tokens: list[str], options: dict[str, object]) -> type[Feed]:
    """A Feed class for the simulator's market channel (token ids are their own symbols)."""
    Symbols.set(EXCHANGE, {t: t for t in tokens}, {})  # no REST symbol lookup

    class Polymarket(Feed):
        id = EXCHANGE
        websocket_endpoints = [WebsocketEndpoint(url, options=options)]
        rest_endpoints: list[object] = []
        websocket_channels = {L2_BOOK: "market"}
        frames = 0

        async def subscribe(self, conn):
            assets = [t for chan in conn.subscription.values() for t in chan]
            # byte for byte what pmws.protocol.subscribe_message sends (orjson's compact form)
            body = {"assets_ids": assets, "type": "market", "custom_feature_enabled": True}
            await conn.write(json.dumps(body, separators=(",", ":")))

        async def message_handler(self, msg, conn, timestamp):
            Polymarket.frames += 1

    return Polymarket


def disk_usage(directory: Path) -> tuple[int, int]:
    """(bytes, non-empty lines) of every file cryptofeed wrote."""
    size = lines = 0
    for path in directory.iterdir():
        data = path.read_bytes()
        size += len(data)
        lines += sum(1 for line in data.split(b"\n") if line)
    return size, lines


def peak_rss_mb() -> float:
    """Peak RSS of this process image (VmHWM: ru_maxrss would carry over a big parent's peak across exec)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ws-url", required=True)
    parser.add_argument("--tokens-file", type=Path, required=True)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--loop", choices=["uvloop", "asyncio"], default="uvloop")  # cryptofeed's default
    parser.add_argument("--max-queue", default="none")  # "none": cryptofeed's default (unbounded)
    args = parser.parse_args()
    tokens = [t["token_id"] for t in json.loads(args.tokens_file.read_text())]
    out = args.out / "raw"
    out.mkdir(parents=True, exist_ok=True)
    options: dict[str, object] = {}
    if args.max_queue != "none":
        options["max_queue"] = int(args.max_queue)

    raw = AsyncFileCallback(str(out))  # defaults: 10 000 lines buffered per write (+ fsync), 100 MB rotation
    handler = FeedHandler(
        config={"uvloop": args.loop == "uvloop", "log": {"disabled": True}}, raw_data_collection=raw
    )
    feed_class = polymarket_feed(args.ws_url, tokens, options)
    handler.add_feed(feed_class(subscription={L2_BOOK: tokens}))
    loop = asyncio.new_event_loop()  # uvloop's when FeedHandler installed its policy
    asyncio.set_event_loop(loop)
    handler.run(start_loop=False, install_signal_handlers=False)

    async def measure() -> dict[str, float]:
        deadline = time.monotonic() + 30
        while feed_class.frames == 0:
            if time.monotonic() > deadline:
                raise SystemExit("cryptofeed received no frame in 30 s")
            await asyncio.sleep(0.01)
        f0, c0, t0 = feed_class.frames, cpu(), time.perf_counter()
        await asyncio.sleep(args.seconds)
        frames, elapsed, used = feed_class.frames - f0, time.perf_counter() - t0, cpu() - c0
        await handler.stop_async(loop)  # stops the feeds and flushes the raw recorder's buffer to disk
        return {"frames": frames, "seconds": elapsed, "cpu_seconds": used}

    result: dict[str, object] = dict(loop.run_until_complete(measure()))
    result["frames_total"] = feed_class.frames
    handler.close(loop)
    size, lines = disk_usage(out)
    result.update(
        bytes_on_disk=size,
        lines=lines,
        rss_mb=peak_rss_mb(),
        loop=type(loop).__module__.split(".")[0],
        max_queue=args.max_queue,
        cryptofeed=version("cryptofeed"),
        websockets=version("websockets"),
        python=sys.version.split()[0],
        files=sorted(p.name for p in out.iterdir()),
    )
    print(json.dumps(result))
    sys.stdout.flush()
    os._exit(0)  # skip atexit: AsyncFileCallback's handler would append a blank line after we measured


if __name__ == "__main__":
    main()
