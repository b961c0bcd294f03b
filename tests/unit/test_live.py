"""The live view: per-token counts by event type, age of the last message, link states."""

from __future__ import annotations

import contextlib
import io
import os
import threading
import time

from rich.console import Console

from pmws.envelope import TrackedToken
from pmws.live import MAX_TOKEN_ROWS, LinkView, LiveView, Snapshot, plain_line, render
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


def test_a_terminal_that_stops_draining_never_blocks_the_recorder() -> None:
    """Ctrl-S, a stalled SSH session: nothing reads the terminal. Refreshes (on the event loop) and the exit
    return at once; only the view's own thread waits."""
    read_end, write_end = os.pipe()  # nobody reads `read_end`: the pipe fills, then writes block
    console = Console(file=os.fdopen(write_end, "w"), force_terminal=True, width=200)
    many = [TrackedToken(f"btc-updown-5m-{i}", "0xc", str(10**70 + i), "Up", "t") for i in range(500)]
    shown = Snapshot("title", many, FeedStats(), [], 0, 0, 1.0, {})
    slowest: list[float] = []

    def watch() -> None:
        view = LiveView(lambda: shown, live=True, interval=1, console=console)
        view.__enter__()
        for _ in range(40):  # 2 s of refreshes: the pipe is full long before the end
            began = time.monotonic()
            view.refresh()
            slowest.append(time.monotonic() - began)
            time.sleep(0.05)
        view.EXIT_WAIT_SECONDS = 0.2
        view.__exit__(None, None, None)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    watcher.join(timeout=20)
    assert not watcher.is_alive(), "a refresh or the exit waited for the terminal"
    assert len(slowest) == 40 and max(slowest) < 0.5
    os.close(read_end)  # the blocked write fails (broken pipe) and the view's thread ends
    with contextlib.suppress(OSError):
        console.file.close()


def test_the_table_shows_at_most_max_token_rows() -> None:
    many = [TrackedToken(f"btc-updown-5m-{i}", "0xc", str(i), "Up", "t") for i in range(MAX_TOKEN_ROWS + 7)]
    console = Console(file=io.StringIO(), width=250, record=True)
    console.print(render(Snapshot("title", many, FeedStats(), [], 0, 0, 1.0, {})))
    text = console.export_text()
    assert text.count("btc-updown-5m-") == MAX_TOKEN_ROWS and "7 more tokens" in text
