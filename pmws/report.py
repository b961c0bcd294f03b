"""The Markdown report of a sample, rendered from its manifest. Pure."""

from __future__ import annotations

from typing import Any


def sample_report(manifest: dict[str, Any]) -> str:
    """Human-readable checkpoint 010b report."""
    gate = manifest.get("gate") or {}
    verdict = gate.get("verdict", "not yet gated")
    lines = [
        "# Checkpoint 010b — Polymarket websocket raw sample",
        "",
        f"**Verdict: `{verdict}`**",
        "",
        f"- session: `{manifest.get('session_id')}`"
        + (" (simulated endpoints)" if manifest.get("simulated") else ""),
        f"- started: {manifest.get('started_at_utc')}, ended: {manifest.get('ended_at_utc')}, "
        f"stopped by: {manifest.get('stopped_by')}",
        f"- websocket: `{(manifest.get('endpoints') or {}).get('ws_url')}`",
        "",
        "## Gate checks",
        "",
        "| check | result | detail |",
        "|---|---|---|",
    ]
    for check in gate.get("checks", []):
        mark = "PASS" if check.get("passed") else ("FAIL" if check.get("required") else "warn")
        lines.append(f"| {check.get('name')} | {mark} | {check.get('detail')} |")
    lines += [
        "",
        "## Selected markets",
        "",
        "| market | window end (UTC) | outcome | token |",
        "|---|---|---|---|",
    ]
    for market in (manifest.get("selection") or {}).get("markets", []):
        for token in market.get("tokens", []):
            lines.append(
                f"| {market.get('market_slug')} | {market.get('end_time_utc')} | "
                f"{token.get('outcome')} | `{token.get('token_id')}` |"
            )
    counts = manifest.get("counts") or {}
    lines += [
        "",
        "## Messages",
        "",
        f"- frames: {counts.get('frames', 0)} "
        f"(market data {counts.get('market_data_messages', 0)}, control {counts.get('control_frames', 0)}, "
        f"binary {counts.get('binary_frames', 0)}, json errors {counts.get('json_errors', 0)}, "
        f"unknown shapes {counts.get('unknown_shapes', 0)})",
    ]
    for event_type, n in sorted((counts.get("events_by_type") or {}).items()):
        lines.append(f"- `{event_type}`: {n}")
    unknown = counts.get("unknown_event_types") or {}
    if unknown:
        lines.append(f"- unknown event types: {unknown}")
    rest = manifest.get("rest") or {}
    lines += [
        "",
        "## REST /books checkpoints",
        "",
        f"- checkpoints: {rest.get('checkpoints', 0)}, ok: {rest.get('ok', 0)}, "
        f"failed: {rest.get('failed', 0)}, failed attempts: {rest.get('failed_attempts', 0)}",
        "",
        "## Connections",
        "",
    ]
    for event in manifest.get("connections", []):
        details = {k: v for k, v in event.items() if k not in ("event", "at_utc", "assets_ids")}
        lines.append(f"- {event.get('at_utc')} `{event.get('event')}` {details}")
    lines += [
        "",
        "## Outputs",
        "",
        "| kind | path | bytes | lines | sha256 |",
        "|---|---|---|---|---|",
    ]
    for output in manifest.get("outputs", []):
        lines.append(
            f"| {output.get('kind')} | `{output.get('path')}` | {output.get('bytes')} | "
            f"{output.get('lines')} | `{output.get('sha256')}` |"
        )
    errors = manifest.get("errors") or []
    if errors:
        lines += ["", "## Errors", ""] + [f"- {e}" for e in errors]
    return "\n".join(lines) + "\n"
