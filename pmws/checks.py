"""Named gate checks over facts re-read from disk → a verdict. Pure: the facts come from `gate.py`.

`WS_RAW_SAMPLE_PASS` needs every required check to pass; anything else is `WS_RAW_SAMPLE_NEEDS_REVIEW` with
the failing checks named. The gate never passes on counts it was told; it passes on what it re-read.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any


class Verdict(StrEnum):
    PASS = "WS_RAW_SAMPLE_PASS"
    NEEDS_REVIEW = "WS_RAW_SAMPLE_NEEDS_REVIEW"


@dataclass
class FileCheck:
    """What re-reading one output file showed."""

    kind: str
    path: str
    exists: bool = False
    gzip_ok: bool = False
    lines: int = 0
    unparseable_lines: int = 0
    sha256: str | None = None
    bytes: int | None = None
    sha256_matches: bool = False
    bytes_match: bool = False
    lines_match: bool = False
    payload_checked: int = 0
    payload_mismatches: int = 0
    error: str | None = None


@dataclass
class GateFacts:
    """Everything the checks look at, all recomputed from the outputs."""

    selected_markets: list[dict[str, Any]]
    files: list[FileCheck]
    ws_frames: int = 0
    ws_market_data_messages: int = 0
    market_data_by_token: dict[str, int] = field(default_factory=dict)
    rest_ok: int = 0
    rest_failed: int = 0
    missing_kinds: list[str] = field(default_factory=list)


@dataclass
class GateCheck:
    name: str
    passed: bool
    detail: str
    required: bool = True


def evaluate(facts: GateFacts) -> tuple[Verdict, list[GateCheck]]:
    """Run every named check; PASS only if all required ones pass."""
    checks = [
        _selected_market(facts),
        _ws_market_data(facts),
        _rest_checkpoints(facts),
        _outputs_parse(facts),
        _checksums(facts),
        _tokens_covered(facts),
    ]
    passed = all(c.passed for c in checks if c.required)
    return (Verdict.PASS if passed else Verdict.NEEDS_REVIEW), checks


def _both_outcomes(market: dict[str, Any]) -> bool:
    tokens = market.get("tokens") or []
    labels = {str(t.get("outcome", "")).lower() for t in tokens if isinstance(t, dict)}
    return len(tokens) == 2 and labels == {"up", "down"}


def _selected_market(facts: GateFacts) -> GateCheck:
    good = [m for m in facts.selected_markets if _both_outcomes(m)]
    return GateCheck(
        "selected_btc_market_with_both_outcomes",
        bool(good),
        f"{len(good)} of {len(facts.selected_markets)} selected markets have Up and Down tokens",
    )


def _ws_market_data(facts: GateFacts) -> GateCheck:
    selected = sum(facts.market_data_by_token.values())
    return GateCheck(
        "ws_market_data_received",
        facts.ws_market_data_messages > 0 and selected > 0,
        f"{facts.ws_market_data_messages} parseable market-data messages in {facts.ws_frames} frames, "
        f"{selected} event(s) for the selected tokens (PONG and other control text do not count)",
    )


def _rest_checkpoints(facts: GateFacts) -> GateCheck:
    return GateCheck(
        "rest_checkpoints_ok",
        facts.rest_ok >= 2,
        f"{facts.rest_ok} successful, {facts.rest_failed} failed REST /books checkpoints (need >= 2)",
    )


def _outputs_parse(facts: GateFacts) -> GateCheck:
    bad = [
        f"{f.path}: {f.error or f'{f.unparseable_lines} unparseable lines'}"
        for f in facts.files
        if not (f.exists and f.gzip_ok and f.unparseable_lines == 0)
    ]
    bad += [f"no {kind} output recorded" for kind in facts.missing_kinds]
    detail = "; ".join(bad) if bad else f"{len(facts.files)} gzip JSONL files read completely"
    return GateCheck("outputs_parse", not bad and bool(facts.files), detail)


def _checksums(facts: GateFacts) -> GateCheck:
    bad = []
    for f in facts.files:
        if not (f.sha256_matches and f.bytes_match and f.lines_match):
            bad.append(f"{f.path}: file sha256/bytes/lines differ from the manifest")
        if f.payload_mismatches:
            bad.append(f"{f.path}: {f.payload_mismatches} envelopes whose payload_sha256 differs")
    checked = sum(f.payload_checked for f in facts.files)
    detail = "; ".join(bad) if bad else f"file checksums match; {checked} payload_sha256 recomputed"
    return GateCheck("checksums_match", not bad and bool(facts.files), detail)


def _tokens_covered(facts: GateFacts) -> GateCheck:
    tokens = [
        str(t.get("token_id"))
        for m in facts.selected_markets
        for t in (m.get("tokens") or [])
        if isinstance(t, dict)
    ]
    silent = [t for t in tokens if facts.market_data_by_token.get(t, 0) == 0]
    detail = (
        f"every selected token ({len(tokens)}) has market data"
        if not silent
        else f"{len(silent)} of {len(tokens)} selected tokens have no market data"
    )
    return GateCheck("every_token_has_market_data", not silent, detail, required=False)


def checks_as_json(verdict: Verdict, checks: list[GateCheck]) -> dict[str, Any]:
    return {
        "verdict": verdict.value,
        "checks": [asdict(c) for c in checks],
        "failing_checks": [c.name for c in checks if c.required and not c.passed],
    }
