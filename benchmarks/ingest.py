"""Ingest benchmark: pmws's recording hot path vs a bare websockets receive loop, same simulator, same run.

    python benchmarks/ingest.py [--seconds 5] [--tokens 4,200,1000]

Prints frames/s, CPU seconds per 100 k frames and the ratio to the floor for each token count.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
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


def contender(mode: str, ws_url: str, tokens: list[TrackedToken], seconds: float) -> dict[str, Any]:
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
            ],
            capture_output=True,
            text=True,
            check=True,
        )
    return json.loads(out.stdout.strip().splitlines()[-1])


def measure(seconds: float, token_counts: list[int]) -> list[dict[str, Any]]:
    rows = []
    with SimProcess(rate=0, markets_per_window=max(3, max(token_counts) // 8 + 1)) as sim:
        ws_url = sim.endpoints["ws_url"]
        for count in token_counts:
            tokens = discover_tokens(sim.endpoints["gamma_url"], count)
            floor = contender("floor", ws_url, tokens, seconds)
            recorded = contender("record", ws_url, tokens, seconds)
            rows.append({"tokens": count, "floor": floor, "pmws": recorded})
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| tokens | floor frames/s | pmws frames/s | ratio | floor CPU s/100k | pmws CPU s/100k "
        "| gz bytes/frame |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        floor, pmws = row["floor"], row["pmws"]
        f_rate, p_rate = floor["frames"] / floor["seconds"], pmws["frames"] / pmws["seconds"]
        lines.append(
            f"| {row['tokens']} | {f_rate:,.0f} | {p_rate:,.0f} | {p_rate / f_rate:.0%} | "
            f"{floor['cpu_seconds'] / floor['frames'] * 1e5:.2f} | "
            f"{pmws['cpu_seconds'] / pmws['frames'] * 1e5:.2f} | "
            f"{pmws['bytes_on_disk'] / max(1, pmws['lines']):.1f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--tokens", default="4,200,1000")
    args = parser.parse_args()
    rows = measure(args.seconds, [int(t) for t in args.tokens.split(",")])
    print(table(rows))


if __name__ == "__main__":
    main()
