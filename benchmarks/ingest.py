"""Ingest benchmark: pmws's recording hot paths vs a bare websockets receive loop, same sender, same run.

    python benchmarks/ingest.py [--seconds 5] [--tokens 4,200,1000] [--sender blaster|sim] [--rounds 3]

Contenders (benchmarks/_contender.py, each in its own process): the floor (a bare websockets receive loop),
`pmws sample`'s hot path, and `pmws run`'s (every book hash verified), in the recorder's process (`run`) or in
the verifier worker (`run-worker`, run.verify_in_worker; its CPU counted with the recorder's). The sender
is benchmarks/_blaster.py: real captured frames (639 B on average), pre-encoded, sent in bulk from a process
of its own, so the receiver is what is measured; `--sender sim` uses the simulator (a Python sender that
caps the floor well below what the receiver can take). Prints frames/s, CPU seconds per 100 k frames and
the ratio to the floor for each token count; with several rounds, each contender's median round.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from pmws.envelope import TrackedToken
from pmws.gamma import fetch_btc_markets
from pmws.markets import filter_live

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _simproc import SimProcess  # noqa: E402


def discover_tokens(gamma_url: str, count: int) -> list[TrackedToken]:
    async def fetch() -> list[Any]:
        async with httpx.AsyncClient(timeout=30) as client:
            got = await fetch_btc_markets(
                client,
                gamma_url,
                now=datetime.now(UTC),
                windows=["5m", "15m", "1h", "4h"],
                lookahead_seconds=86400 * 30,
                max_pages=200,
            )
        return got.objects

    markets = filter_live(asyncio.run(fetch()), datetime.now(UTC)).markets
    markets.sort(key=lambda m: m.end_time_utc, reverse=True)  # the longest-lived first: none ends mid-run
    tokens = [
        TrackedToken(m.market_slug, m.condition_id, t.token_id, t.outcome, m.end_time_utc)
        for m in markets
        for t in m.tokens
    ]
    if len(tokens) < count:
        raise SystemExit(f"simulator offers {len(tokens)} tokens, {count} asked")
    return tokens[:count]


def contender(
    mode: str, ws_url: str, tokens: list[TrackedToken], seconds: float, extra: tuple[str, ...] = ()
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        tokens_file = Path(tmp) / "tokens.json"
        tokens_file.write_text(json.dumps([t.to_json() for t in tokens]))
        out = subprocess.run(
            [
                sys.executable,
                str(HERE / "_contender.py"),
                mode,
                "--ws-url",
                ws_url,
                "--tokens-file",
                str(tokens_file),
                "--seconds",
                str(seconds),
                "--out",
                tmp,
                *extra,
            ],
            capture_output=True,
            text=True,
            check=True,
        )
    return json.loads(out.stdout.strip().splitlines()[-1])


def blaster_tokens(count: int) -> list[TrackedToken]:
    """The blaster's real assets first (so frames concern tracked tokens), then silent fillers."""
    from _blaster import cycle_assets

    real = [
        TrackedToken("btc-updown-bench", market, asset, "Up", "2099-01-01T00:00:00Z")
        for market, asset in cycle_assets()
    ]
    fillers = [
        TrackedToken("btc-updown-filler", "0xfiller", f"filler-{i}", "Up", "2099-01-01T00:00:00Z")
        for i in range(max(0, count - len(real)))
    ]
    return (real + fillers)[:count]


#: contender name → (_contender.py mode, extra arguments)
MODES: dict[str, tuple[str, tuple[str, ...]]] = {
    "floor": ("floor", ()),
    "reference": ("reference", ()),
    "sample": ("record", ()),
    "run": ("run", ()),
    "run-worker": ("run", ("--verify-in-worker",)),
}


def measure(
    seconds: float,
    token_counts: list[int],
    *,
    sender: str = "blaster",
    rounds: int = 1,
    modes: tuple[str, ...] = ("floor", "sample", "run", "run-worker"),
    compresslevel: int | None = None,
) -> list[dict[str, Any]]:
    """Per token count: every contender `rounds` times in turn; each contender's median round kept."""
    rows = []
    with contextlib.ExitStack() as stack:
        if sender == "blaster":
            from _blaster import Blaster

            ws_url = stack.enter_context(Blaster()).ws_url
        else:
            sim = stack.enter_context(
                SimProcess(rate=0, markets_per_window=max(3, max(token_counts) // 8 + 1))
            )
            ws_url = sim.endpoints["ws_url"]
        for count in token_counts:
            if sender == "blaster":
                tokens = blaster_tokens(count)
            else:
                tokens = discover_tokens(sim.endpoints["gamma_url"], count)
            runs: dict[str, list[dict[str, Any]]] = {m: [] for m in modes}
            for _ in range(rounds):
                for mode in modes:
                    kind, extra = MODES[mode]
                    if compresslevel is not None and kind != "floor":
                        extra = (*extra, "--compresslevel", str(compresslevel))
                    runs[mode].append(contender(kind, ws_url, tokens, seconds, extra))
            row: dict[str, Any] = {"tokens": count, "sender": sender}
            row.update({mode: median(got) for mode, got in runs.items()})
            row["rounds"] = runs
            rows.append(row)
    return rows


def rate(run: dict[str, Any]) -> float:
    return float(run["frames"] / run["seconds"])


def median(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The round with the median frames/s (the lower middle one for an even count)."""
    return sorted(runs, key=rate)[(len(runs) - 1) // 2]


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| tokens | contender | frames/s | vs floor | CPU µs/frame | CPU vs floor | receive thread µs/frame "
        "| gz bytes/frame | hashes verified / mismatched |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        floor = row["floor"]
        for mode in MODES:
            got = row.get(mode)
            if got is None:
                continue
            per_frame = got["cpu_seconds"] / got["frames"] * 1e6
            floor_per_frame = floor["cpu_seconds"] / floor["frames"] * 1e6
            size = f"{got['bytes_on_disk'] / max(1, got['lines']):.1f}" if "bytes_on_disk" in got else "—"
            hashes = f"{got['hash_verified']:,} / {got['hash_mismatched']}" if "hash_verified" in got else "—"
            main = "—"
            if "main_cpu_seconds" in got:
                main = f"{got['main_cpu_seconds'] / got['frames'] * 1e6:.2f}"
            lines.append(
                f"| {row['tokens']} | {mode} | {rate(got):,.0f} | {rate(got) / rate(floor):.2f} | "
                f"{per_frame:.2f} | {per_frame / floor_per_frame:.2f}× | {main} | {size} | {hashes} |"
            )
    return "\n".join(lines)


EXAMPLES = Path(__file__).resolve().parents[1] / "tests" / "fixtures"


def real_frames() -> list[bytes]:
    """Captured Polymarket market-channel events (tests/fixtures), one compact frame each."""
    frames = []
    for path in sorted(EXAMPLES.glob("*ws_*.json")):
        data = json.loads(path.read_text())
        events = data if isinstance(data, list) else [data]
        frames += [json.dumps(e, separators=(",", ":")).encode() for e in events if isinstance(e, dict)]
    return frames


def envelope_cost(token_counts: list[int], repeats: int = 5) -> list[dict[str, Any]]:
    """Envelope build time and size for the same real frames with 1/200/1000 tracked tokens (pure CPU)."""
    from pmws.envelope import ConnectionContext, build_envelope

    frames = real_frames()
    ids: list[str] = []
    for frame in frames:
        event = json.loads(frame)
        ids += [str(c.get("asset_id")) for c in event.get("price_changes") or []]
        ids += [str(event["asset_id"])] if "asset_id" in event else []
    ids = list(dict.fromkeys(ids))
    rows = []
    for count in token_counts:
        # the same one real token concerned in every case, the rest subscribed but silent
        wanted = ids[:1] + [f"filler-{i}" for i in range(count - 1)]
        tokens = tuple(
            TrackedToken("btc-updown-5m-1", "0xc", t, "Up", "2026-11-25T00:00:00Z") for t in wanted
        )
        context = ConnectionContext("bench", 1, "wss://example/ws/market", tokens)
        best, size = float("inf"), 0
        for _ in range(repeats):
            start = time.perf_counter()
            lines = [
                build_envelope(
                    f, binary=False, context=context, received_ns=i, message_sequence=i, global_sequence=i
                )[0]
                for i, f in enumerate(frames * 20)
            ]
            best = min(best, (time.perf_counter() - start) / len(lines))
            size = sum(map(len, lines)) // len(lines)
        rows.append(
            {"tokens": count, "us_per_envelope": best * 1e6, "bytes_per_line": size, "frames": len(frames)}
        )
    return rows


def envelope_table(rows: list[dict[str, Any]]) -> str:
    lines = ["| tracked tokens | µs per envelope | bytes per line |", "|---|---|---|"]
    lines += [f"| {r['tokens']} | {r['us_per_envelope']:.1f} | {r['bytes_per_line']:,} |" for r in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--tokens", default="4,200,1000")
    parser.add_argument("--sender", choices=["blaster", "sim"], default="blaster")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--modes", default=",".join(MODES), help="contenders (floor is always first)")
    parser.add_argument("--json", action="store_true", help="also print every round as JSON (stderr)")
    parser.add_argument("--compresslevel", type=int, help="archive.compresslevel (default: pmws's default)")
    args = parser.parse_args()
    counts = [int(t) for t in args.tokens.split(",")]
    modes = tuple(dict.fromkeys(["floor", *args.modes.split(",")]))
    rows = measure(
        args.seconds,
        counts,
        sender=args.sender,
        rounds=args.rounds,
        modes=modes,
        compresslevel=args.compresslevel,
    )
    print(f"sender: {args.sender}, {args.seconds:g} s per contender, median of {args.rounds} round(s)\n")
    print(table(rows))
    if args.json:
        print(json.dumps(rows), file=sys.stderr)
    print(f"\nThe same {len(real_frames())} captured frames enveloped with each token count:\n")
    print(envelope_table(envelope_cost(counts)))


if __name__ == "__main__":
    main()
