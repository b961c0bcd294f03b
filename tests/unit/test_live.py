"""The live view: per-token counts by event type, age of the last message, link states."""

from __future__ import annotations

import io

from rich.console import Console

from pmws.envelope import TrackedToken
from pmws.live import LinkView, LiveView, Snapshot, plain_line, render
from pmws.protocol import classify_text
from pmws.stats import FeedStats

TOKENS = [
    TrackedToken("btc-updown-5m-1", "0xc", "111", "Up", "t"),
    TrackedToken("btc-updown-5m-1", "0xc", "222", "Down", "t"),
]


def snapshot() -> Snapshot:
    stats = FeedStats()
    tracked = {"111", "222"}
    for payload in (
        b'{"event_type":"book","asset_id":"111"}',
        b'{"event_type":"book","asset_id":"111"}',
        b'{"event_type":"last_trade_price","asset_id":"222"}',
        b"PONG",
    ):
        stats.observe(classify_text(payload), 1_000_000_000, tracked)
    return Snapshot(
        "title", TOKENS, stats, [LinkView(0, "subscribed", 3, 2, 1, 2)], 4, 1, 12.0, {"file": "x"}
    )


def test_table_shows_counts_per_token_and_event_type() -> None:
    console = Console(file=io.StringIO(), width=250, record=True)
    console.print(render(snapshot(), now_ns=3_500_000_000))
    text = console.export_text()
    up = next(line for line in text.splitlines() if "Up" in line)
    down = next(line for line in text.splitlines() if "Down" in line)
    assert up.split("│")[3].strip() == "2" and "2.5s" in up
    assert down.split("│")[5].strip() == "1"
    assert "subscribed" in text and "REST ok 4 failed 1" in text


def test_plain_lines_off_a_terminal(capsys) -> None:  # type: ignore[no-untyped-def]
    line = plain_line(snapshot())
    assert "frames=4" in line and "market_data=3" in line and "links=0:subscribed" in line
    console = Console(file=io.StringIO())  # not a terminal
    with LiveView(snapshot, live=True, interval=0, console=console) as view:
        view.refresh()
    assert "[pmws]" in capsys.readouterr().out


def test_table_shows_each_tokens_coverage_state() -> None:
    shot = snapshot()
    shot.token_states = {"111": "live", "222": "blind"}
    console = Console(file=io.StringIO(), width=250, record=True)
    console.print(render(shot, now_ns=3_500_000_000))
    text = console.export_text()
    assert "coverage" in text
    assert "live" in next(line for line in text.splitlines() if "Up" in line)
    assert "blind" in next(line for line in text.splitlines() if "Down" in line)
