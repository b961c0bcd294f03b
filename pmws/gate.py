"""`pmws gate`: re-read every output of a sample, recompute every checksum, decide, record the decision.

Nothing is taken from the manifest's own counts: market-data messages are re-classified from each
envelope's `raw_text`, REST successes re-counted from the checkpoint rows, checksums recomputed from bytes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pmws.archive.digest import check_against_manifest
from pmws.archive.files import read_sample_manifest, resolve_output, write_atomic, write_sample_manifest
from pmws.checks import FileCheck, GateCheck, GateFacts, Verdict, checks_as_json, evaluate
from pmws.envelope import payload_of
from pmws.errors import ArchiveError
from pmws.manifest import OutputRecord, SampleManifest
from pmws.protocol import MARKET_DATA_EVENTS, classify_text
from pmws.report import sample_report

REQUIRED_KINDS = ("ws_raw", "rest_checkpoints")


@dataclass
class GateOutcome:
    verdict: Verdict
    checks: list[GateCheck]
    manifest_path: Path
    report_path: Path | None
    manifest: SampleManifest  # with the gate's checks
    not_written: list[str] = field(default_factory=list)  # why the manifest or report kept its old text


def run_gate(manifest_path: Path, *, report_path: Path | None = None) -> GateOutcome:
    """Check a sample's outputs against its manifest; write the checks into the manifest and report.

    The verdict stands on what was read: a manifest or report that cannot be rewritten (read-only data,
    another user's files) is noted in `not_written`, never turned into an error.
    """
    read = read_sample_manifest(manifest_path)
    try:
        return _gate(manifest_path, read, report_path)
    except (AttributeError, TypeError, KeyError, IndexError, ValueError) as exc:  # valid JSON, wrong shapes
        raise ArchiveError(f"{manifest_path}: not a sample manifest pmws can check ({exc})") from exc


def _gate(manifest_path: Path, read: SampleManifest, report_path: Path | None) -> GateOutcome:
    facts = collect_facts(manifest_path, read)
    verdict, checks = evaluate(facts)
    gate = checks_as_json(verdict, checks)
    gate["recomputed"] = {
        "ws_frames": facts.ws_frames,
        "ws_market_data_messages": facts.ws_market_data_messages,
        "rest_ok": facts.rest_ok,
        "rest_failed": facts.rest_failed,
        "files": [vars(f) for f in facts.files],
    }
    manifest = dataclasses.replace(read, gate=gate)
    report = report_path or (Path(manifest.report_path) if manifest.report_path else None)
    outcome = GateOutcome(verdict, checks, manifest_path, report, manifest)
    text = sample_report(manifest.to_json()) if report is not None else ""
    _try_write(outcome, lambda: write_sample_manifest(manifest_path, manifest))
    if report is not None:
        _try_write(outcome, lambda: write_atomic(report, text))
    return outcome


def _try_write(outcome: GateOutcome, write: Callable[[], None]) -> None:
    try:
        write()
    except ArchiveError as exc:
        outcome.not_written.append(str(exc))


def collect_facts(manifest_path: Path, manifest: SampleManifest) -> GateFacts:
    """Re-read every output listed in the manifest."""
    facts = GateFacts(selected_markets=manifest.markets, files=[])
    tracked = {
        str(t.get("token_id"))
        for m in facts.selected_markets
        for t in (m.get("tokens") or [])
        if isinstance(t, dict)
    }
    kinds = {r.kind for r in manifest.outputs}
    facts.missing_kinds = [k for k in REQUIRED_KINDS if k not in kinds]
    checkpoints: dict[Any, _Checkpoint] = {}
    for record in manifest.outputs:
        facts.files.append(_check_file(manifest_path, record, facts, tracked, checkpoints))
    for checkpoint in checkpoints.values():
        if checkpoint.complete:
            facts.rest_ok += 1
        else:
            facts.rest_failed += 1
    return facts


@dataclass
class _Checkpoint:
    """One REST checkpoint, from its attempt rows: every token asked for, and those an attempt answered."""

    requested: set[str] = field(default_factory=set)
    answered: set[str] = field(default_factory=set)

    @property
    def complete(self) -> bool:
        """Every token asked for came back in a successful response (a 200 of `[]` answers nothing)."""
        return bool(self.requested) and self.requested <= self.answered


def _check_file(
    manifest_path: Path,
    record: OutputRecord,
    facts: GateFacts,
    tracked: set[str],
    checkpoints: dict[Any, _Checkpoint],
) -> FileCheck:
    path = resolve_output(manifest_path, record)
    kind = record.kind
    checked = check_against_manifest(
        path,
        sha256=record.sha256,
        size=record.bytes,
        lines=record.lines,
        on_row=lambda row: _observe_row(kind, row, facts, tracked, checkpoints),
    )
    check = FileCheck(kind=kind, path=record.path or str(path), exists=checked.exists, error=checked.error)
    if checked.scan is None:
        return check
    scan = checked.scan
    check.lines, check.unparseable_lines = scan.lines, scan.not_json
    check.payload_checked, check.payload_mismatches = scan.payload_checked, scan.payload_mismatches
    check.gzip_ok = scan.error is None
    check.sha256, check.bytes = scan.digests.sha256, scan.digests.bytes
    check.sha256_matches, check.bytes_match = checked.sha256_matches, checked.bytes_match
    check.lines_match = checked.lines_match
    return check


def _observe_row(
    kind: str, row: dict[str, Any], facts: GateFacts, tracked: set[str], checkpoints: dict[Any, _Checkpoint]
) -> None:
    """Gather the gate's facts from one row (envelopes here already passed their payload hash check)."""
    record_type = row.get("record_type")
    if kind == "ws_raw" and record_type == "ws_frame":
        facts.ws_frames += 1
        if row.get("opcode") != "text":
            return
        classified = classify_text(payload_of(row))
        if not classified.is_market_data:
            return
        facts.ws_market_data_messages += 1
        for event_type, assets in classified.events:
            if event_type in MARKET_DATA_EVENTS:
                for asset in assets:
                    if asset in tracked:
                        facts.market_data_by_token[asset] = facts.market_data_by_token.get(asset, 0) + 1
    elif kind == "rest_checkpoints" and record_type == "rest_checkpoint":
        # one row per POST attempt of one batch: a checkpoint is ok only if every token it asked for came back
        key = (row.get("session_id"), row.get("checkpoint_sequence"))
        checkpoint = checkpoints.setdefault(key, _Checkpoint())
        request = row.get("request")
        asked = request.get("token_ids") if isinstance(request, dict) else None
        checkpoint.requested.update(str(t) for t in asked or () if isinstance(asked, list))
        response = row.get("response")
        books = response.get("raw_response_json") if isinstance(response, dict) else None
        if row.get("ok") is True and isinstance(books, list):
            checkpoint.answered.update(str(b.get("asset_id")) for b in books if isinstance(b, dict))
