"""`pmws replay` speaks the market channel: subscribe first, PING/PONG, operations, initial books, routing.

A small archive written here with the real envelope builder: two tokens of one market, frames spaced
`GAP` apart, replayed at the recorded pace over a real loopback websocket.
"""

from __future__ import annotations

import asyncio
import gzip
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from pmws.book import book_hash
from pmws.envelope import ConnectionContext, TrackedToken, build_envelope, record_line
from pmws.markets import parse_time
from pmws.replay import server
from pmws.replay.load import build_replay
from pmws.replay.server import Replay
from pmws.replay.source import open_replay_archives, replay_records
from tests.conftest import TIME_FACTOR
from tests.e2e.conftest import invoke

A, B, UNKNOWN = "111", "222", "999"
MARKET = "0xabc"
SLUG = "btc-updown-4h-1796090400"
END = "2026-12-01T05:00:00Z"
T0 = 1_796_094_000_000_000_000
GAP = int(0.4e9 * TIME_FACTOR)  # between recorded frames (ns), paced at speed 1
TOKENS = (TrackedToken(SLUG, MARKET, A, "Up", END), TrackedToken(SLUG, MARKET, B, "Down", END))


def book(asset: str, bid: str) -> dict[str, Any]:
    levels = {"bids": [("0.40", "10"), (bid, "5")], "asks": [("0.60", "7"), ("0.55", "3")]}
    event: dict[str, Any] = {"market": MARKET, "asset_id": asset, "timestamp": "1796094000000"}
    event["hash"] = book_hash(
        market=MARKET,
        asset_id=asset,
        timestamp="1796094000000",
        bids=levels["bids"],
        asks=levels["asks"],
        min_order_size="5",
        tick_size="0.01",
        neg_risk=False,
        last_trade_price="0.50",
    )
    event |= {k: [{"price": p, "size": s} for p, s in v] for k, v in levels.items()}
    return event | {"tick_size": "0.01", "event_type": "book", "last_trade_price": "0.50"}


def change(asset: str, price: str) -> dict[str, Any]:
    entry = {"asset_id": asset, "price": price, "size": "20", "side": "BUY", "hash": "x"}
    return {
        "market": MARKET,
        "price_changes": [entry],
        "timestamp": "1796094000500",
        "event_type": "price_change",
    }


#: (frame text, what the test calls it), one every GAP
FRAMES = [
    (orjson.dumps([book(A, "0.45"), book(B, "0.44")]), "books"),
    (b"PONG", "PONG"),  # answered the recorder's PING: never replayed
    (orjson.dumps(change(A, "0.46")), "change A"),
    (orjson.dumps(change(B, "0.43")), "change B"),
    (
        orjson.dumps(
            {
                **change(A, "0.47"),
                "price_changes": [*change(A, "0.47")["price_changes"], *change(B, "0.42")["price_changes"]],
            }
        ),
        "change A+B",
    ),
    (b'{"event_type":"settlement_preview","market":"0xabc","timestamp":"1"}', "market event"),
    (b'{"event_type":"settlement_preview","market":"0xother","timestamp":"1"}', "other market"),
    (
        orjson.dumps({"event_type": "last_trade_price", "asset_id": A, "market": MARKET, "price": "0.5"}),
        "trade A",
    ),
]
NAMES = {text.decode(): name for text, name in FRAMES}


def write_archive(
    root: Path, frames: list[bytes] | None = None, *, session: str = "s1", late_ns: int = 0
) -> Path:
    """One ws_raw file of `session` with `frames` (FRAMES), GAP apart (each received `late_ns` later), and
    one rest_checkpoints file with A's and B's metadata."""
    context = ConnectionContext(session, 1, "ws://x/ws/market", TOKENS, shard="0/1")
    ws_dir, rest_dir = root / "ws_raw" / "date=2026-12-01" / "hour=03", root / "rest_checkpoints"
    ws_dir.mkdir(parents=True, exist_ok=True)
    rest_dir.mkdir(parents=True, exist_ok=True)
    with gzip.open(ws_dir / f"polymarket_ws_raw_{session}_a.jsonl.gz", "wb", compresslevel=1) as fh:
        for i, text in enumerate(frames or [text for text, _ in FRAMES]):
            line, _ = build_envelope(
                text,
                binary=False,
                context=context,
                received_ns=T0 + i * GAP + late_ns,
                message_sequence=i + 1,
                global_sequence=i + 1,
            )
            fh.write(line)
    summaries = [
        {"asset_id": t, "market": MARKET, "min_order_size": "5", "tick_size": "0.01", "neg_risk": False}
        for t in (A, B)
    ]
    row = {
        "record_type": "rest_checkpoint",
        "requested_at_utc": "2026-12-01T03:00:00Z",
        "response": {"raw_response_json": summaries},
    }
    with gzip.open(rest_dir / f"polymarket_rest_checkpoints_{session}_a.jsonl.gz", "wb") as fh:
        fh.write(record_line(row))
    return root


@pytest.fixture
def archive(tmp_path: Path) -> Path:
    return write_archive(tmp_path / "rec")


def run(body: Callable[[Replay], Awaitable[None]], archive: Path, **options: Any) -> None:
    async def main() -> None:
        replay = build_replay([archive], **options)
        await replay.start()
        try:
            await asyncio.wait_for(body(replay), 30 * TIME_FACTOR)
        finally:
            await replay.stop()

    asyncio.run(main())


async def until_played(replay: Replay, ws: ClientConnection) -> list[str]:
    """Every frame the client receives until the replay has played the archive out (names, not bytes)."""
    got: list[str] = []
    while True:
        try:
            message = await asyncio.wait_for(ws.recv(), 0.3 * TIME_FACTOR)
        except TimeoutError:
            if replay.finished.is_set() and not any(c.queue for c in replay.conns):
                return got
            continue
        got.append(NAMES.get(str(message), str(message)))


def subscription(assets: list[str], **extra: Any) -> str:
    return orjson.dumps({"assets_ids": assets, "type": "market", "initial_dump": True, **extra}).decode()


def test_a_ping_before_the_subscription_is_closed_with_1008(archive: Path) -> None:
    async def body(replay: Replay) -> None:
        async with connect(replay.ws_url) as ws:
            await ws.send("PING")
            with pytest.raises(ConnectionClosed) as closed:
                await ws.recv()
        assert closed.value.rcvd is not None
        assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (1008, "invalid subscription payload")
        assert not replay.subscribed.is_set()

    run(body, archive)


def test_only_the_market_path_upgrades(archive: Path) -> None:
    async def body(replay: Replay) -> None:
        with pytest.raises(InvalidStatus) as refused:
            async with connect(replay.ws_url.replace("/ws/market", "/ws/")):
                pass
        assert refused.value.response.status_code == 404

    run(body, archive)


def test_a_subscriber_gets_the_frames_naming_its_token_as_recorded_and_pong(archive: Path) -> None:
    async def body(replay: Replay) -> None:
        async with connect(replay.ws_url) as ws:
            await ws.send(subscription([A]))
            await ws.send("PING")
            got = await until_played(replay, ws)
        assert got.count("PONG") == 1  # the answer to our PING, not the recorded one
        got.remove("PONG")
        # multi-token frames whole, the market's token-less event, never the recorded PONG nor B alone
        assert got == ["books", "change A", "change A+B", "market event", "trade A"]

    run(body, archive)


def test_unsubscribe_stops_a_tokens_frames(archive: Path) -> None:
    async def body(replay: Replay) -> None:
        async with connect(replay.ws_url) as ws:
            await ws.send(subscription([A, B]))
            assert NAMES[str(await ws.recv())] == "books"
            await ws.send(orjson.dumps({"assets_ids": [A], "operation": "unsubscribe"}).decode())
            got = await until_played(replay, ws)
        assert got == ["change B", "change A+B", "market event"]

    run(body, archive)


def test_an_unknown_token_gets_nothing_but_pong(archive: Path) -> None:
    async def body(replay: Replay) -> None:
        async with connect(replay.ws_url) as ws:
            await ws.send(subscription([UNKNOWN]))
            await ws.send("PING")
            assert await until_played(replay, ws) == ["PONG"]

    run(body, archive)


def test_a_subscription_after_the_start_time_gets_the_rebuilt_book_with_the_real_hash(archive: Path) -> None:
    async def body(replay: Replay) -> None:
        async with connect(replay.ws_url) as ws:
            await ws.send(subscription([A, UNKNOWN]))
            first = orjson.loads(await ws.recv())
            later = await until_played(replay, ws)
        assert first == [book(A, "0.45")]  # the recorded book, rebuilt: same levels, same hash
        assert later[0] == "change A"
        async with httpx.AsyncClient() as client:
            books = (
                await client.post(f"{replay.clob_url}/books", json=[{"token_id": A}, {"token_id": UNKNOWN}])
            ).json()
            markets = (await client.get(f"{replay.gamma_url}/markets/keyset")).json()["markets"]
        assert [b["asset_id"] for b in books] == [A]
        assert books[0]["bids"][-1] == {"price": "0.47", "size": "20"} and books[0]["min_order_size"] == "5"
        assert books[0]["hash"] == replay.tracker.books[A].hash()
        assert [(m["slug"], m["clobTokenIds"], m["outcomes"], m["orderMinSize"]) for m in markets] == [
            (SLUG, f'["{A}", "{B}"]', '["Up", "Down"]', 5.0)
        ]

    run(body, archive, start=iso_ns(T0 + GAP))


def iso_ns(ns: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ns / 1e9, tz=UTC).isoformat()


def test_records_merge_by_receive_time_across_files(tmp_path: Path) -> None:
    root = write_archive(tmp_path / "rec")
    records = list(replay_records(open_replay_archives([root]), on_problem=pytest.fail))
    times = [r.received_ns for r in records]
    assert times == sorted(times) and records[0].record_type == "rest_checkpoint"
    assert len(records) == len(FRAMES) + 1


def test_a_damaged_file_is_reported_and_the_rest_replays(tmp_path: Path) -> None:
    root = write_archive(tmp_path / "rec")
    (root / "ws_raw" / "broken.jsonl.gz").write_bytes(b"not gzip at all")
    (root / "ws_raw" / ".polymarket_ws_raw_s9_a.jsonl.gz.open").write_bytes(b"")
    problems: list[str] = []
    records = list(replay_records(open_replay_archives([root]), on_problem=problems.append))
    assert len(records) == len(FRAMES) + 1
    assert len(problems) == 2, problems
    opened, broken = problems  # files left open are named first, damaged ones as the replay reaches them
    assert opened.endswith(
        ".open: still open (being written, or waiting for salvage at the next start) (file skipped)"
    )
    assert "broken.jsonl.gz: " in broken and broken.endswith("(file skipped)")


def test_two_replicas_of_a_shard_side_by_side_send_each_frame_once(tmp_path: Path) -> None:
    """Two recorders of one shard write their sessions side by side (docs/operations.md): the replay merges
    them as `pmws.read` does, so a subscriber gets each recorded frame once, not twice."""
    root = write_archive(tmp_path / "rec")
    write_archive(root, session="s2", late_ns=1_000_000)  # the replica received every frame 1 ms later

    async def body(replay: Replay) -> None:
        async with connect(replay.ws_url) as ws:
            await ws.send(subscription([A, B]))
            got = await until_played(replay, ws)
        assert got == ["books", "change A", "change B", "change A+B", "market event", "trade A"]
        assert replay.stats.frames == len(FRAMES) - 1  # every frame but the recorded PONG, once

    run(body, root, speed="max")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing-dir"], "missing-dir: no such file or directory"),
        (["empty"], "empty: no .jsonl.gz archive in this directory"),
        (["only-open"], "only-open: no .jsonl.gz archive in this directory"),
        (["rec", "notes.txt"], "notes.txt: not a .jsonl.gz archive or a directory of them"),
        (["rec", "--speed", "0"], "--speed must be a positive number or 'max', got '0'"),
        (["rec", "--start", "yesterday"], "--start: not an ISO 8601 time: 'yesterday'"),
        (["rec", "--shift-to", "tomorrow"], "--shift-to: not an ISO 8601 time: 'tomorrow'"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(archive: Path, args: list[str], message: str) -> None:
    Path("empty").mkdir()
    Path("only-open").mkdir()  # a recorder still writing (or killed): nothing closed to replay yet
    Path("only-open/.polymarket_ws_raw_s1_20261201T03.jsonl.gz.open").write_bytes(b"")
    Path("notes.txt").write_text("not an archive")
    result = invoke("replay", *args)
    assert result.exit_code == 2, result.output
    assert result.stderr.strip() == f"error: {message}"


def test_help_names_every_option() -> None:
    result = invoke("replay", "--help")
    assert result.exit_code == 0
    for flag in (
        "--host",
        "--port",
        "--http-port",
        "--speed",
        "--start",
        "--end",
        "--discovery",
        "--shift-to",
    ):
        assert flag in result.output


def test_end_stops_the_replay_at_that_time(archive: Path) -> None:
    async def body(replay: Replay) -> None:
        async with connect(replay.ws_url) as ws:
            await ws.send(subscription([A, B]))
            assert await until_played(replay, ws) == ["books", "change A", "change B"]

    run(body, archive, end=iso_ns(T0 + 3 * GAP))


def test_gamma_answers_from_a_discovery_file_when_given(archive: Path, tmp_path: Path) -> None:
    market = {
        "market_slug": SLUG,
        "condition_id": MARKET,
        "question": "Bitcoin Up or Down - 4h?",
        "end_time_utc": END,
        "tokens": [{"token_id": B, "outcome": "Down"}, {"token_id": A, "outcome": "Up"}],
        "gamma_id": "4242",
    }
    discovery = tmp_path / "polymarket_btc_markets_latest.json"
    discovery.write_bytes(orjson.dumps({"markets": [market]}))

    async def body(replay: Replay) -> None:
        async with httpx.AsyncClient() as client:
            listed = (await client.get(f"{replay.gamma_url}/markets", params={"slug": SLUG})).json()
            missing = await client.get(f"{replay.gamma_url}/markets/slug/btc-updown-4h-1")
        assert [(m["id"], m["question"], m["clobTokenIds"]) for m in listed] == [
            ("4242", "Bitcoin Up or Down - 4h?", f'["{A}", "{B}"]')
        ]
        assert missing.status_code == 404

    run(body, archive, discovery=discovery)


@pytest.mark.parametrize("target", ["2026-12-03T03:00:00.4Z", "now"])
def test_shift_to_moves_gamma_times_so_the_first_record_falls_then(archive: Path, target: str) -> None:
    """Gamma's endDate and eventStartTime move by whole seconds (the first record, at T0, shown at the
    target); a listing asked for before the shift is anchored waits for it; frames are unchanged."""

    async def body(replay: Replay) -> None:
        async with httpx.AsyncClient() as client:
            [market] = (await client.get(f"{replay.gamma_url}/markets", params={"slug": SLUG})).json()
            [keyset] = (await client.get(f"{replay.gamma_url}/markets/keyset")).json()["markets"]
        [archived] = replay.catalog.gamma_markets()
        expected = 2 * 86_400 if target != "now" else round(time.time() - T0 / 1e9)
        assert abs(replay.shift_ns / 1e9 - expected) <= (0 if target != "now" else 5)
        assert replay.shift_ns % 1_000_000_000 == 0
        for key in ("endDate", "eventStartTime"):
            moved = parse_time(market[key]) - parse_time(archived[key])
            assert moved.total_seconds() * 1e9 == replay.shift_ns
            assert keyset[key] == market[key]
        assert market["slug"] == archived["slug"] == SLUG
        async with connect(replay.ws_url) as ws:
            await ws.send(subscription([A, B]))
            assert await until_played(replay, ws) == [
                "books",
                "change A",
                "change B",
                "change A+B",
                "market event",
                "trade A",
            ]

    run(body, archive, shift_to=target)


def test_the_command_serves_until_interrupted(archive: Path) -> None:
    """`pmws replay DIR` as a user runs it: URLs on stdout, frames to a subscriber, exit 0 on Ctrl-C."""
    command = [sys.executable, "-m", "pmws", "replay", str(archive), "--speed", "max"]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        urls = dict(proc.stdout.readline().strip().split(": ", 1) for _ in range(3))

        async def client() -> list[str]:
            async with connect(urls["ws_url"]) as ws:
                await ws.send(subscription([B]))
                return [NAMES[str(await ws.recv())] for _ in range(3)]

        assert asyncio.run(asyncio.wait_for(client(), 20 * TIME_FACTOR)) == [
            "books",
            "change B",
            "change A+B",
        ]
        assert "replay finished: 7 frames" in proc.stdout.readline() + proc.stdout.readline()
    finally:
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=10 * TIME_FACTOR)
    assert proc.returncode == 0, stderr
    assert "Traceback" not in stderr


def test_a_subscription_during_the_fast_forward_waits_for_the_books_at_the_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The books up to --start are rebuilt with pauses for the event loop (here after every record); a
    client that subscribes meanwhile gets the books at the start time, not halfway there."""
    monkeypatch.setattr(server, "FAST_FORWARD_YIELD", 1)
    sizes = range(1, 5001)
    changes = [
        orjson.dumps({**change(A, "0.45"), "price_changes": [{**ENTRY, "size": str(n)}]}) for n in sizes
    ]
    archive = write_archive(tmp_path / "long", [orjson.dumps([book(A, "0.45")]), *changes, b"PONG"])

    async def body(replay: Replay) -> None:
        async with connect(replay.ws_url) as ws:
            await ws.send(subscription([A]))
            [rebuilt] = orjson.loads(await ws.recv())
        assert rebuilt["bids"][-1] == {"price": "0.45", "size": "5000"}
        assert replay.stats.skipped_before_start == 5002  # the book, the changes, the REST checkpoint

    run(body, archive, start=iso_ns(T0 + 5001 * GAP))


ENTRY = change(A, "0.45")["price_changes"][0]


def test_a_busy_port_is_one_line_and_exit_2(archive: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = invoke("replay", str(archive), "--port", str(port))
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(f"error: cannot listen on 127.0.0.1 (--port {port}, --http-port 0): ")
    assert len(result.stderr.strip().splitlines()) == 1
