"""pmws.read over small hand-made archives: order, filters, replica merge, gaps, damaged input."""

from __future__ import annotations

import gzip
import hashlib
from pathlib import Path
from typing import Any

import orjson

from pmws.envelope import utc_text as utc
from pmws.read import Filters, open_archives
from pmws.rotation import archive_name

S = 1_000_000_000
T0 = 1_796_094_000 * S  # 2026-12-01T02:20:00Z, an hour boundary minus 20 minutes
HOUR = 3600


def frame(
    ns: int, session: str, payload: str, *, token: str = "T1", slug: str = "btc-a", shard: str = "0/1"
) -> dict[str, Any]:
    event = orjson.loads(payload) if payload.startswith("{") else {}
    return {
        "record_type": "ws_frame",
        "received_at_ns": ns,
        "session_id": session,
        "shard": shard,
        "payload_sha256": hashlib.sha256(payload.encode()).hexdigest(),
        "raw_text": payload,
        "json": event or None,
        "tokens_tracked": [{"token_id": token, "market_slug": slug}],
        "classified_event_types": [event["event_type"]] if event else [],
    }


def life(ns: int, session: str, event: str, **details: Any) -> dict[str, Any]:
    return {
        "record_type": "lifecycle",
        "event": event,
        "at_ns": ns,
        "session_id": session,
        "shard": "0/1",
        "slot": 0,
        **details,
    }


def pc(n: int, token: str = "T1") -> str:
    return orjson.dumps({"event_type": "price_change", "n": n, "asset_id": token}).decode()


def write(
    root: Path,
    session: str,
    start_s: int,
    rows: list[dict[str, Any]],
    *,
    interval: int = HOUR,
    manifest: bool = True,
    kind: str = "ws_raw",
) -> Path:
    name = archive_name(root, kind, session, start_s, interval)
    name.final.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(name.final, "wb") as fh:
        for row in rows:
            fh.write(orjson.dumps(row) + b"\n")
    if manifest:
        manifests = root.parent / f"{root.name}-manifests"
        manifests.mkdir(exist_ok=True)
        data = {"file": name.final.name, "bytes": name.final.stat().st_size, "period_seconds": interval}
        (manifests / f"{name.final.name}.manifest.json").write_bytes(orjson.dumps(data))
    return name.final


def test_records_come_out_in_receive_order_across_sessions_and_hours(tmp_path: Path) -> None:
    root = tmp_path / "rec"
    a, b = "20261201T022000Z-aaaaaa", "20261201T022000Z-bbbbbb"
    start = T0 // S - (T0 // S) % HOUR
    write(root, a, start, [frame(T0 + i * 2 * S, a, pc(i)) for i in range(3)])
    write(root, a, start + HOUR, [frame((start + HOUR) * S + i * S, a, pc(10 + i)) for i in range(2)])
    write(root, b, start, [frame(T0 + S + i * 2 * S, b, pc(100 + i), shard="1/2") for i in range(3)])
    reader = open_archives(root)
    got = list(reader)
    times = [r.received_ns for r in got]
    assert times == sorted(times)
    assert [r.row["json"]["n"] for r in got] == [0, 100, 1, 101, 2, 102, 10, 11]
    assert reader.report.problems == [] and reader.report.frames == 8


def test_a_line_written_before_an_earlier_frame_comes_out_after_it(tmp_path: Path) -> None:
    """`pmws run` writes a new hour's lifecycle lines (stamped at open) before the frame that opened it."""
    root = tmp_path / "rec"
    a = "20261201T022000Z-aaaaaa"
    start = T0 // S - (T0 // S) % HOUR
    ms = 1_000_000
    rows = [
        life(T0 + 5 * ms, a, "file_open"),
        frame(T0, a, pc(0)),
        *(frame(T0 + i * ms, a, pc(i)) for i in (6, 7)),
    ]
    write(root, a, start, rows)
    got = list(open_archives(root))
    assert [r.received_ns - T0 for r in got] == [0, 5 * ms, 6 * ms, 7 * ms]
    assert got[1].record_type == "lifecycle"


def test_filters_by_time_token_slug_and_event_type(tmp_path: Path) -> None:
    root = tmp_path / "rec"
    a = "20261201T022000Z-aaaaaa"
    start = T0 // S - (T0 // S) % HOUR
    rows = [
        frame(T0 + i * S, a, pc(i, "T1" if i % 2 else "T2"), token="T1" if i % 2 else "T2", slug=f"s{i % 2}")
        for i in range(6)
    ]
    rows.append(frame(T0 + 7 * S, a, '{"event_type":"book","n":7}'))
    write(root, a, start, rows)

    def ns(**kw: Any) -> list[int]:
        return [r.row["json"]["n"] for r in open_archives(root, filters=Filters(**kw))]

    assert ns(start_ns=T0 + 2 * S, end_ns=T0 + 4 * S) == [2, 3]
    assert ns(tokens=frozenset({"T2"})) == [0, 2, 4]
    assert ns(slugs=frozenset({"s1"})) == [1, 3, 5]
    assert ns(event_types=frozenset({"book"})) == [7]


def test_two_replicas_merge_into_one_stream_attributed(tmp_path: Path) -> None:
    """Same frames within the tolerance come out once with both sessions; what only one saw is kept."""
    a, b = "20261201T022000Z-aaaaaa", "20261201T022000Z-bbbbbb"
    start = T0 // S - (T0 // S) % HOUR
    write(tmp_path / "ra", a, start, [frame(T0 + i * S, a, pc(i)) for i in (0, 1, 2, 4)])
    write(tmp_path / "rb", b, start, [frame(T0 + i * S + 3_000_000, b, pc(i)) for i in (0, 1, 3, 4)])
    reader = open_archives([tmp_path / "ra", tmp_path / "rb"])
    got = [(r.row["json"]["n"], r.seen_by) for r in reader]
    assert got == [(0, (a, b)), (1, (a, b)), (2, (a,)), (3, (b,)), (4, (a, b))]
    assert reader.report.duplicates == 3


def test_a_repeated_frame_within_one_session_is_not_a_duplicate(tmp_path: Path) -> None:
    a = "20261201T022000Z-aaaaaa"
    start = T0 // S - (T0 // S) % HOUR
    write(tmp_path / "r", a, start, [frame(T0, a, pc(1)), frame(T0 + 1000, a, pc(1))])
    assert len(list(open_archives(tmp_path / "r"))) == 2


def test_disconnect_stale_blind_and_missing_hour_are_gap_records(tmp_path: Path) -> None:
    root = tmp_path / "rec"
    a = "20261201T022000Z-aaaaaa"
    start = T0 // S - (T0 // S) % HOUR
    rows = [
        life(T0, a, "subscribe", initial=True),
        frame(T0 + S, a, pc(1)),
        life(T0 + 10 * S, a, "stale_feed", seconds_without_market_data=9.0),
        life(T0 + 10 * S + 1, a, "disconnect", reason="stale_feed"),
        life(T0 + 12 * S, a, "subscribe", initial=True),
        life(T0 + 20 * S, a, "token_blind", token_id="T1", last_message_age_seconds=5.0),
        frame(T0 + 22 * S, a, pc(2)),
    ]
    write(root, a, start, rows)
    write(root, a, start + 2 * HOUR, [frame((start + 2 * HOUR) * S + S, a, pc(3))])
    gaps = [r.row for r in open_archives(root, filters=Filters(record_types=frozenset({"gap"})))]
    assert [(g["cause"], g["start_ns"], g["end_ns"]) for g in gaps] == [
        ("stale_feed", T0 + S, T0 + 12 * S),
        ("token_blind", T0 + 15 * S, T0 + 22 * S),
        ("missing_file", (start + HOUR) * S, (start + 2 * HOUR) * S),
    ]


def test_a_replica_covering_the_other_leaves_no_disconnect_gap(tmp_path: Path) -> None:
    a, b = "20261201T022000Z-aaaaaa", "20261201T022000Z-bbbbbb"
    start = T0 // S - (T0 // S) % HOUR
    write(
        tmp_path / "ra",
        a,
        start,
        [
            life(T0, a, "subscribe", initial=True),
            life(T0 + 5 * S, a, "disconnect", reason="x"),
            life(T0 + 6 * S, a, "subscribe", initial=True),
        ],
    )
    write(tmp_path / "rb", b, start, [life(T0 + 1, b, "subscribe", initial=True)])
    assert [r for r in open_archives([tmp_path / "ra", tmp_path / "rb"]) if r.record_type == "gap"] == []


def test_killed_session_salvaged_at_the_next_start_is_a_gap(tmp_path: Path) -> None:
    root = tmp_path / "rec"
    a, b = "20261201T022000Z-aaaaaa", "20261201T022100Z-bbbbbb"
    start = T0 // S - (T0 // S) % HOUR
    killed = write(root, a, start, [life(T0, a, "subscribe", initial=True), frame(T0 + S, a, pc(1))])
    recovery = life(T0 + 30 * S, b, "startup_recovery", salvaged=[killed.name])
    write(root, b, start, [recovery, life(T0 + 31 * S, b, "subscribe", initial=True)])
    gaps = [r.row for r in open_archives(root) if r.record_type == "gap"]
    assert [(g["start_ns"], g["end_ns"], g["session_id"]) for g in gaps] == [(T0 + S, T0 + 31 * S, a)]
    assert gaps[0]["cause"].startswith("recorder killed")


def test_damaged_inputs_are_named_counted_and_the_rest_is_read(tmp_path: Path) -> None:
    root = tmp_path / "rec"
    start = T0 // S - (T0 // S) % HOUR
    sessions = [f"20261201T022000Z-{c * 6}" for c in "abcde"]
    good = write(root, sessions[0], start, [frame(T0, sessions[0], pc(0))])
    not_gzip = write(root, sessions[1], start, [])
    not_gzip.write_bytes(b"this is not gzip\n")
    cut = write(root, sessions[2], start, [frame(T0 + i * S, sessions[2], pc(10 + i)) for i in range(200)])
    cut.write_bytes(cut.read_bytes()[:-30])
    bad_line = write(root, sessions[3], start, [frame(T0 + S, sessions[3], pc(20))])
    with gzip.open(bad_line, "ab") as fh:
        fh.write(b"{not json\n")
    no_manifest = write(root, sessions[4], start, [frame(T0 + 2 * S, sessions[4], pc(30))], manifest=False)
    reader = open_archives(root)
    records = list(reader)
    problems = {Path(p.path).name: p for p in reader.report.problems}
    assert set(problems) == {not_gzip.name, cut.name, bad_line.name, no_manifest.name}
    assert problems[not_gzip.name].skipped and "gzip" in problems[not_gzip.name].reason
    assert "truncated" in problems[cut.name].reason and not problems[cut.name].skipped
    assert problems[bad_line.name].lines_skipped == 1
    assert "no manifest" in problems[no_manifest.name].reason
    frames = [r.row["json"]["n"] for r in records if r.record_type == "ws_frame"]
    assert 0 in frames and 20 in frames and 30 in frames and 10 in frames  # the rest was read
    assert any(r.row.get("cause") == "damaged_file" for r in records if r.record_type == "gap")
    assert good.exists() and reader.report.skipped_anything


def test_open_files_and_missing_sources_are_named(tmp_path: Path) -> None:
    root = tmp_path / "rec"
    start = T0 // S - (T0 // S) % HOUR
    name = archive_name(root, "ws_raw", "20261201T022000Z-aaaaaa", start, HOUR)
    name.open.parent.mkdir(parents=True)
    name.open.write_bytes(b"")
    reader = open_archives([root, tmp_path / "nowhere"])
    assert list(reader) == []
    reasons = sorted(p.reason for p in reader.report.problems)
    assert reasons[0] == "no such file or directory" and reasons[1].startswith("still open")


def test_an_hour_with_nothing_readable_is_a_gap_over_its_whole_period(tmp_path: Path) -> None:
    root = tmp_path / "rec"
    a = "20261201T022000Z-aaaaaa"
    start = T0 // S - (T0 // S) % HOUR
    write(root, a, start, [life(T0, a, "subscribe", initial=True), frame(T0 + S, a, pc(1))])
    bad = write(root, a, start + HOUR, [frame((start + HOUR) * S + S, a, pc(2))])
    bad.write_bytes(b"garbage, not gzip")
    write(root, a, start + 2 * HOUR, [frame((start + 2 * HOUR) * S + S, a, pc(3))])
    reader = open_archives(root)
    records = list(reader)
    gaps = [(g.row["cause"], g.row["start_ns"], g.row["end_ns"]) for g in records if g.record_type == "gap"]
    assert gaps == [("damaged_file", (start + HOUR) * S, (start + 2 * HOUR) * S)]
    assert [r.row["json"]["n"] for r in records if r.record_type == "ws_frame"] == [1, 3]
    assert reader.report.skipped_anything


def test_a_gap_that_starts_in_the_hour_before_start_is_kept(tmp_path: Path) -> None:
    """`--start` after a disconnect logged in the previous file: the gap still reaches into the window."""
    root = tmp_path / "rec"
    a = "20261201T022000Z-aaaaaa"
    start = T0 // S - (T0 // S) % HOUR
    h1 = (start + HOUR) * S
    lost = life(h1 - 10 * S, a, "disconnect", reason="connection_lost (no close frame)")
    write(root, a, start - HOUR, [life((start - HOUR) * S, a, "subscribe", initial=True)])
    write(root, a, start, [frame(T0 + S, a, pc(1)), lost])
    write(
        root, a, start + HOUR, [life(h1 + 40 * S, a, "subscribe", initial=True), frame(h1 + 41 * S, a, pc(2))]
    )
    records = list(open_archives(root, filters=Filters(start_ns=h1 + 30 * S)))
    gaps = [(g.row["start_ns"], g.row["end_ns"]) for g in records if g.record_type == "gap"]
    assert gaps == [(h1 - 10 * S, h1 + 40 * S)]
    assert [r.row["json"]["n"] for r in records if r.record_type == "ws_frame"] == [2]


def test_a_pong_timeout_gap_starts_at_the_last_frame_the_link_received(tmp_path: Path) -> None:
    root = tmp_path / "rec"
    a = "20261201T022000Z-aaaaaa"
    start = T0 // S - (T0 // S) % HOUR
    rows = [
        life(T0, a, "subscribe", initial=True),
        frame(T0 + S, a, pc(1)),
        life(T0 + 42 * S, a, "pong_timeout", seconds_without_frames=41.0),
        life(T0 + 42 * S + 5, a, "disconnect", reason="pong_timeout"),
        life(T0 + 45 * S, a, "subscribe", initial=True),
    ]
    write(root, a, start, rows)
    gaps = [
        (g.row["cause"], g.row["start_ns"], g.row["end_ns"])
        for g in open_archives(root)
        if g.record_type == "gap"
    ]
    assert gaps == [("pong_timeout", T0 + S, T0 + 45 * S)]


def test_a_session_whose_last_hours_are_missing_ends_in_a_gap_unless_the_next_file_is_open(
    tmp_path: Path,
) -> None:
    root = tmp_path / "rec"
    a = "20261201T022000Z-aaaaaa"
    start = T0 // S - (T0 // S) % HOUR
    last = write(root, a, start, [life(T0, a, "subscribe", initial=True), frame(T0 + S, a, pc(1))])
    manifest = root.parent / "rec-manifests" / f"{last.name}.manifest.json"
    following = archive_name(root, "ws_raw", a, start + HOUR, HOUR)
    manifest.write_bytes(
        orjson.dumps({**orjson.loads(manifest.read_bytes()), "rotated_to": following.final.name})
    )
    reader = open_archives(root)
    gaps = [(g.row["cause"], g.row["start_ns"], g.row["end_ns"]) for g in reader if g.record_type == "gap"]
    assert gaps == [("missing_file", (start + HOUR) * S, (start + 2 * HOUR) * S)]
    assert any("missing" in p.reason and p.path == following.final.name for p in reader.report.problems)
    following.open.parent.mkdir(parents=True, exist_ok=True)
    following.open.write_bytes(b"")  # being written right now: not lost
    reader = open_archives(root)
    assert [g for g in reader if g.record_type == "gap"] == []
    assert [p.reason[:10] for p in reader.report.problems] == ["still open"]
    following.open.unlink()  # closed: the next file exists, but --end does not read it
    write(root, a, start + HOUR, [frame((start + HOUR) * S + S, a, pc(2))])
    within = open_archives(root, filters=Filters(end_ns=(start + HOUR) * S))
    assert [g for g in within if g.record_type == "gap"] == [] and within.report.problems == []


def test_a_slug_filter_keeps_what_names_its_tokens_but_no_slug(tmp_path: Path) -> None:
    """REST checkpoints, token_blind lines and divergences name token ids only: `--slug` keeps those of its
    tokens (learned from the frames' and manifests' tracked tokens), as `--token` does."""
    root = tmp_path / "rec"
    a = "20261201T022000Z-aaaaaa"
    start = T0 // S - (T0 // S) % HOUR

    def rest(ns: int, tokens: list[str]) -> dict[str, Any]:
        row = {"record_type": "rest_checkpoint", "session_id": a, "completed_at_utc": utc(ns), "ok": True}
        return row | {"request": {"token_ids": tokens}, "response": {"raw_response_json": []}}

    rows = [
        frame(T0, a, pc(1, "T1"), token="T1", slug="btc-a"),
        frame(T0 + S, a, pc(2, "T3"), token="T3", slug="btc-b"),
        life(T0 + 2 * S, a, "token_blind", token_id="T1"),
        life(T0 + 3 * S, a, "token_blind", token_id="T3"),
        {"record_type": "divergence", "at_ns": T0 + 4 * S, "session_id": a, "asset_id": "T1"},
    ]
    write(root, a, start, rows)
    checkpoints = [rest(T0 + 5 * S, ["T1", "T2"]), rest(T0 + 6 * S, ["T3"])]
    write(root, a, start, checkpoints, kind="rest_checkpoints")
    selected = open_archives(root, filters=Filters(slugs=frozenset({"btc-a"})))
    kept = [r for r in selected if r.record_type != "gap"]
    assert [(r.record_type, r.received_ns - T0) for r in kept] == [
        ("ws_frame", 0),
        ("lifecycle", 2 * S),
        ("divergence", 4 * S),
        ("rest_checkpoint", 5 * S),
    ]
