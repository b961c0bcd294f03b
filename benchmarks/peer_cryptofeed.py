"""Peer benchmark: pmws's recorder vs cryptofeed's raw-data recorder on the same wss:// feed, same run.

    python benchmarks/peer_cryptofeed.py [--seconds 8] [--tokens 4] [--rounds 3]

The simulator runs in its own process at full speed, serving its websocket over TLS with a throwaway
self-signed certificate; every contender trusts it through SSL_CERT_FILE and runs in its own process:

- floor: a bare `websockets` receive loop that discards frames (benchmarks/_contender.py floor);
- reference: issue 14's 40-line recorder, the per-frame work that matters and nothing else
  (benchmarks/_contender.py reference);
- pmws: `Link` → envelope with sha256 → gzip JSONL (benchmarks/_contender.py record);
- cryptofeed: `FeedHandler(raw_data_collection=AsyncFileCallback(dir))` with a minimal custom Feed
  (benchmarks/_cryptofeed_peer.py), in a separate venv built once under ~/.cache/pmws-bench (PyPI), once as
  shipped (uvloop, unbounded websocket queue) and once on pmws's settings (stock asyncio loop, max_queue=64).

Rounds run the contenders in turn; the table shows each contender's median round. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from importlib.metadata import version
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _simproc import SimProcess  # noqa: E402
from ingest import discover_tokens  # noqa: E402

from pmws.sim.tls import self_signed_cert  # noqa: E402

#: Newest cryptofeed that installs on Python 3.11 (2.5.0 needs 3.12, 3.x needs 3.13).
CRYPTOFEED = "cryptofeed==2.4.1"
CACHE = Path(os.environ.get("PMWS_BENCH_CACHE", Path.home() / ".cache" / "pmws-bench"))

#: (label, _cryptofeed_peer.py arguments)
CRYPTOFEED_VARIANTS = [
    ("cryptofeed, as shipped (uvloop, max_queue=None)", ["--loop", "uvloop", "--max-queue", "none"]),
    ("cryptofeed, pmws's settings (asyncio, max_queue=64)", ["--loop", "asyncio", "--max-queue", "64"]),
]
RECORDS = {
    "floor": "nothing (frames discarded)",
    "pmws": (
        "an envelope per frame: raw text + sha256, parsed JSON, receive time, sequences, subscription, "
        "tracked tokens, event types; gzip JSONL (zlib-ng level 7), sync-flushed every 1 s"
    ),
    "reference": (
        "issue 14's 40-line yardstick: orjson parse, sha256, a line with the receive time, sequence, "
        "`raw_text` and the spliced `json`; gzip (zlib-ng level 7) in a writer thread"
    ),
    "cryptofeed": "`<receive time>: <raw frame text>` per frame, uncompressed, fsync every 10 000 lines",
}


def requirements() -> list[str]:
    """cryptofeed pinned, and the same websockets as pmws's venv so both sides share the websocket code."""
    ours = version("websockets")
    major_minor = tuple(int(p) for p in ours.split(".")[:2] if p.isdigit())
    return [CRYPTOFEED, f"websockets=={ours}"] if major_minor >= (14, 1) else [CRYPTOFEED]


def cryptofeed_python() -> Path:
    """The cryptofeed venv's interpreter; creates the venv and installs from PyPI on first use."""
    venv = CACHE / "cryptofeed-venv"
    python = venv / "bin" / "python"
    marker = venv / "pmws-requirements.txt"
    wanted = "\n".join(requirements()) + "\n"
    if python.exists() and marker.exists() and marker.read_text() == wanted:
        return python
    print(f"[peer] building {venv} with {' '.join(requirements())} (once)", file=sys.stderr, flush=True)
    shutil.rmtree(venv, ignore_errors=True)
    CACHE.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    log = CACHE / "cryptofeed-pip.log"
    with log.open("w") as fh:
        done = subprocess.run(
            [str(python), "-m", "pip", "install", *requirements()], stdout=fh, stderr=subprocess.STDOUT
        )
    if done.returncode != 0:
        tail = log.read_text().splitlines()[-15:]
        raise SystemExit(f"pip install {' '.join(requirements())} failed (see {log}):\n" + "\n".join(tail))
    marker.write_text(wanted)
    return python


def run_json(args: list[str], env: dict[str, str]) -> dict[str, Any]:
    """Run one contender process; its last stdout line is its JSON result."""
    done = subprocess.run(args, capture_output=True, text=True, env=env, timeout=300)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args[:3])} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def contenders(cf_python: Path) -> list[tuple[str, str, list[str]]]:
    """(label, kind, command prefix) for each contender; '--ws-url …' etc. are appended per run."""
    ours = [sys.executable, str(HERE / "_contender.py")]
    peer = [str(cf_python), str(HERE / "_cryptofeed_peer.py")]
    return [
        ("floor (bare websockets loop)", "floor", [*ours, "floor"]),
        ("issue 14's reference recorder", "reference", [*ours, "reference"]),
        ("pmws record", "pmws", [*ours, "record"]),
        *[(label, "cryptofeed", [*peer, *extra]) for label, extra in CRYPTOFEED_VARIANTS],
    ]


def measure(seconds: float, count: int, rounds: int, cf_python: Path, workdir: Path) -> dict[str, Any]:
    cert, key = self_signed_cert(workdir / "tls")
    env = {**os.environ, "SSL_CERT_FILE": str(cert)}
    runs: dict[str, list[dict[str, Any]]] = {}
    kinds: dict[str, str] = {}
    with SimProcess(rate=0, extra=["--tls-cert", str(cert), "--tls-key", str(key)]) as sim:
        ws_url = sim.endpoints["ws_url"]
        assert ws_url.startswith("wss://"), ws_url
        tokens = discover_tokens(sim.endpoints["gamma_url"], count)  # longest-lived markets first
        tokens_file = workdir / "tokens.json"
        tokens_file.write_text(json.dumps([t.to_json() for t in tokens]))
        for round_no in range(rounds):
            for label, kind, command in contenders(cf_python):
                out = Path(tempfile.mkdtemp(prefix=f"{kind}-", dir=workdir))
                args = [*command, "--ws-url", ws_url, "--tokens-file", str(tokens_file)]
                result = run_json([*args, "--seconds", str(seconds), "--out", str(out)], env)
                shutil.rmtree(out)
                print(f"[peer] round {round_no + 1}/{rounds} {label}: {json.dumps(result)}", file=sys.stderr)
                runs.setdefault(label, []).append(result)
                kinds[label] = kind
    return {"ws_url": ws_url, "tokens": count, "runs": runs, "kinds": kinds}


def rate(run: dict[str, Any]) -> float:
    return float(run["frames"] / run["seconds"])


def cpu_per_100k(run: dict[str, Any]) -> float:
    return float(run["cpu_seconds"] / run["frames"] * 1e5)


def median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The round with the median frames/s (the lower middle one for an even count)."""
    ordered = sorted(runs, key=rate)
    return ordered[(len(ordered) - 1) // 2]


def table(measured: dict[str, Any]) -> str:
    runs, kinds = measured["runs"], measured["kinds"]
    floor = median_run(next(r for label, r in runs.items() if kinds[label] == "floor"))
    lines = [
        "| contender | frames/s | vs floor | CPU s/100k frames | vs floor | bytes on disk/frame | RSS MB "
        "| records |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for label, rounds in runs.items():
        run = median_run(rounds)
        per_frame = f"{run['bytes_on_disk'] / max(1, run['lines']):,.1f}" if "bytes_on_disk" in run else "—"
        lines.append(
            f"| {label} | {rate(run):,.0f} | {rate(run) / rate(floor):.0%} | {cpu_per_100k(run):.2f} | "
            f"{cpu_per_100k(run) / cpu_per_100k(floor):.2f}× | {per_frame} | {run['rss_mb']:.0f} | "
            f"{RECORDS[kinds[label]]} |"
        )
    every = "\n".join(
        f"- {label}: " + ", ".join(f"{rate(r):,.0f} ({cpu_per_100k(r):.2f})" for r in rounds)
        for label, rounds in runs.items()
    )
    return "\n".join(lines) + "\n\nevery round, frames/s (CPU s/100k frames):\n" + every


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--tokens", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    cf_python = cryptofeed_python()
    with tempfile.TemporaryDirectory(prefix="pmws-peer-") as tmp:
        measured = measure(args.seconds, args.tokens, args.rounds, cf_python, Path(tmp))
    peer = next(r for label, r in measured["runs"].items() if measured["kinds"][label] == "cryptofeed")[0]
    print(
        f"{measured['tokens']} tokens, {args.seconds:g} s per run, median of {args.rounds} rounds; "
        f"simulator over wss:// (self-signed, trusted via SSL_CERT_FILE); Python {peer['python']}, "
        f"cryptofeed {peer['cryptofeed']}, websockets {peer['websockets']} on both sides\n"
    )
    print(table(measured))


if __name__ == "__main__":
    main()
