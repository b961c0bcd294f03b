"""Simulator settings, fault switches and the record of every frame sent."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, NamedTuple


@dataclass
class Faults:
    """Misbehaviours to switch on; every field may be flipped on a running simulator."""

    drop_after_frames: int | None = None  # abort TCP (no close frame) after N data frames per connection
    silent: bool = False  # no market data, PING still answered (PROTOCOL.md §0 item 2, [I1][I2])
    frozen: bool = False  # the market moves (/books changes) but the websocket sends no data, PING answered
    blind_tokens: set[str] = field(default_factory=set)  # no events for these until a client subscribes them
    blind_until_reconnect: bool = False  # blind_tokens ignore a resubscribe; only a new connection helps
    pong_only: bool = False  # nothing but PONG: no initial dump, no stream
    ping_unanswered: bool = False  # PING gets no PONG (a half-dead connection); data still flows
    send_non_json_every: int | None = None  # an extra non-JSON text frame every N data frames
    send_binary_every: int | None = None  # an extra binary frame every N data frames
    send_unknown_event_every: int | None = None  # an extra `settlement_preview` event every N data frames
    send_invalid_utf8_every: int | None = None  # an extra text frame that is not valid UTF-8 every N
    books_status: int | None = None  # POST /books and GET /book answer this HTTP status
    books_fail_every: int | None = None  # every Nth /books or /book request answers 503 (the others 200)
    books_retry_after: float | None = None  # Retry-After seconds sent with books_status 429
    books_retry_after_body: float | None = None  # `retry_after_seconds` in the 429 body (§4.4)
    gamma_wrong_shape: bool = False  # /markets/keyset answers 200 with a bare JSON list instead of a page
    books_delay_seconds: float = 0.0  # sleep before answering /books and /book
    ws_reject_status: int | None = None  # answer the websocket upgrade with this HTTP status


@dataclass
class SimConfig:
    """What the simulated Polymarket looks like and how fast it talks."""

    seed: int = 7
    rate_per_second: float = 20.0  # market-data frames per second overall; 0 = as fast as possible
    windows: list[str] = field(default_factory=lambda: ["5m", "15m", "1h", "4h"])
    markets_per_window: int = 3  # the current window and the following ones
    past_markets_per_window: int = 1  # ended windows still listed active/closed=false ("zombies", §6.4)
    filler_markets: int = 0  # extra open non-BTC markets ending over the next 24 h (big listings, §6.1)
    batch_array_every: int = 5  # every Nth data frame is a JSON array of 2 events
    trade_every: int = 7  # every Nth action is a trade: last_trade_price, price_change, book
    tick_change_every: int = 0  # 0 = never; else every Nth action toggles the tick 0.01 <-> 0.001
    custom_events: bool = True  # best_bid_ask / new_market / market_resolved for custom subscribers
    record_frames: bool = True  # keep `Simulator.sent_frames`
    max_recorded_frames: int = 2_000_000  # stop recording beyond this (benchmarks)
    faults: Faults = field(default_factory=Faults)
    tls_cert: str | None = None  # PEM certificate chain: serve the websocket as wss:// (HTTP stays plain)
    tls_key: str | None = None  # its PEM private key (None: the key is inside tls_cert)


class SentFrame(NamedTuple):
    """One frame as it went onto the wire (a tuple: the garbage collector stops tracking millions of them)."""

    connection_id: int
    opcode: Literal["text", "binary"]
    payload: bytes  # exact bytes; UTF-8 for text frames
    is_market_data: bool  # False for PONG and for fault-injected frames
