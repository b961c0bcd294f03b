"""Envelopes are a pure function of (frame, context, time, sequences) and round-trip the exact bytes."""

from __future__ import annotations

import hashlib
import json

import orjson
from hypothesis import given
from hypothesis import strategies as st

from pmws.envelope import (
    ConnectionContext,
    TrackedToken,
    build_envelope,
    payload_matches,
    payload_of,
)
from tests.conftest import example_bytes

TOKENS = (
    TrackedToken("btc-updown-5m-1773307200", "0xabc", "111", "Up", "2026-03-12T09:25:00Z"),
    TrackedToken("btc-updown-5m-1773307200", "0xabc", "222", "Down", "2026-03-12T09:25:00Z"),
)
CONTEXT = ConnectionContext("20261124T000000Z-abcdef", 3, "wss://example/ws/market", TOKENS)
SEED_FIELDS = {
    "received_at_utc",
    "session_id",
    "connection_sequence",
    "message_sequence",
    "global_message_sequence",
    "websocket",
    "subscription",
    "tokens_tracked",
    "opcode",
    "payload_length_bytes",
    "payload_sha256",
    "raw_text",
    "json",
    "json_error",
    "classified_event_types",
}


RECEIVED_NS = 1_790_000_000_123_456_789


def envelope_line(
    payload: bytes, binary: bool = False, received_ns: int = RECEIVED_NS, text: str | None = None
) -> bytes:
    """The envelope of `payload` on CONTEXT as message 7, global 42 (`text`: the frame as received text)."""
    line, _ = build_envelope(
        payload,
        binary=binary,
        context=CONTEXT,
        received_ns=received_ns,
        message_sequence=7,
        global_sequence=42,
        text=text,
    )
    return line


def envelope(payload: bytes, binary: bool = False) -> dict:
    line = envelope_line(payload, binary)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    parsed = json.loads(line)  # the standard library agrees it is one JSON object
    assert set(orjson.loads(line)) == set(parsed)  # and so does orjson (numbers beyond 64 bits may differ)
    return parsed


def test_seed_fields_and_values() -> None:
    payload = example_bytes("docs_ws_price_change.json")
    env = envelope(payload)
    assert SEED_FIELDS <= env.keys()
    assert env["received_at_utc"] == "2026-09-21T14:13:20.123456Z"
    assert (
        env["connection_sequence"],
        env["message_sequence"],
        env["global_message_sequence"],
    ) == (3, 7, 42)
    assert env["websocket"] == {"url": "wss://example/ws/market"}
    assert env["subscription"]["assets_ids"] == ["111", "222"]
    assert env["subscription"]["assets_count"] == 2
    assert env["tokens_tracked"] == []  # the example's tokens are not tracked here
    mine = payload.replace(
        b"71321045679252212594626385532706912750332728571942532289631379312455583992563", b"222"
    )
    assert envelope(mine)["tokens_tracked"] == [
        {
            "market_slug": "btc-updown-5m-1773307200",
            "condition_id": "0xabc",
            "token_id": "222",
            "outcome": "Down",
            "end_time_utc": "2026-03-12T09:25:00Z",
        }
    ]
    assert env["opcode"] == "text"
    assert env["payload_length_bytes"] == len(payload)
    assert env["payload_sha256"] == hashlib.sha256(payload).hexdigest()
    assert env["json"] == json.loads(payload)  # multi-line payload: re-serialised, same value
    assert env["json_error"] is None
    assert env["classified_event_types"] == ["price_change"]


def test_raw_text_round_trips_exact_bytes_including_whitespace() -> None:
    payload = example_bytes("ws_book_captured_nautilus.json")
    env = envelope(payload)
    assert payload_of(env) == payload
    assert payload_matches(env)


def test_single_line_json_is_spliced_verbatim() -> None:
    payload = b'[{"event_type":"book","asset_id":"111","price":".48","size":1e2}]'
    env = envelope(payload)
    assert env["json"] == [{"event_type": "book", "asset_id": "111", "price": ".48", "size": 100.0}]


def test_line_breaks_between_tokens_are_reserialised_so_the_envelope_stays_one_line() -> None:
    for brk in (b"\n", b"\r", b"\r\n"):
        payload = b'{"event_type":"book",' + brk + b' "asset_id":"111"}'
        env = envelope(payload)  # asserts exactly one line
        assert env["json"] == {"event_type": "book", "asset_id": "111"}
        assert payload_of(env) == payload


def test_the_received_text_given_beside_its_bytes_gives_the_same_envelope() -> None:
    payload = '{"event_type":"book","asset_id":"111","note":"é✓"}'.encode()
    assert envelope_line(payload, text=payload.decode()) == envelope_line(payload)


def test_control_and_garbage_frames_are_kept() -> None:
    pong = envelope(b"PONG")
    assert pong["raw_text"] == "PONG" and pong["json"] is None and pong["classified_event_types"] == []
    garbage = envelope(b"garbage{not json")
    assert garbage["raw_text"] == "garbage{not json" and garbage["json"] is None and garbage["json_error"]


def test_binary_frames_are_base64_and_hash_the_raw_bytes() -> None:
    payload = b"\x00\x01\xffbinary"
    env = envelope(payload, binary=True)
    assert env["opcode"] == "binary" and env["raw_text"] is None
    assert payload_of(env) == payload and payload_matches(env)


def test_a_flipped_byte_is_detected() -> None:
    env = envelope(b'{"event_type":"book"}')
    env["raw_text"] = env["raw_text"].replace("book", "bool")
    assert not payload_matches(env)


def test_huge_integers_are_kept_verbatim() -> None:
    env = envelope(b'{"size":20000000000000000001}')
    assert env["json"] == {"size": 20000000000000000001}
    assert env["raw_text"] == '{"size":20000000000000000001}'


@given(st.text(min_size=0, max_size=200))
def test_any_text_round_trips(text: str) -> None:
    payload = text.encode("utf-8", "ignore")
    env = envelope(payload)
    assert payload_of(env) == payload
    assert payload_matches(env)


def test_envelope_size_does_not_grow_with_the_tracked_tokens() -> None:
    many = tuple(TrackedToken("s", "0xc", str(i), "Up", "t") for i in range(1000))
    big = ConnectionContext("S", 1, "wss://x", many + TOKENS)
    payload = b'{"event_type":"book","asset_id":"111","market":"0xabc"}'
    small_line, _ = build_envelope(
        payload, binary=False, context=CONTEXT, received_ns=0, message_sequence=1, global_sequence=1
    )
    big_line, _ = build_envelope(
        payload, binary=False, context=big, received_ns=0, message_sequence=1, global_sequence=1
    )
    env = json.loads(big_line)
    assert "assets_ids" not in env["subscription"] and env["subscription"]["assets_count"] == 1002
    assert [t["token_id"] for t in env["tokens_tracked"]] == ["111"]
    assert abs(len(big_line) - len(small_line)) < 200


def test_context_with_tokens_changes_subscription_only() -> None:
    narrowed = CONTEXT.with_tokens(TOKENS[:1])
    line, _ = build_envelope(
        b"PONG",
        binary=False,
        context=narrowed,
        received_ns=0,
        message_sequence=1,
        global_sequence=1,
    )
    env = json.loads(line)
    assert env["subscription"]["assets_ids"] == ["111"] and env["connection_sequence"] == 3


def test_envelope_bytes_are_stable() -> None:
    # The archive format is a contract with every reader: the hot path may change, these bytes may not.
    frame = (
        b'{"event_type":"price_change","market":"0xabc","price_changes":'
        b'[{"asset_id":"111","price":"0.5","size":"10","side":"BUY","hash":"h"}]}'
    )
    line = envelope_line(frame, received_ns=1764000000123456789)
    raw = orjson.dumps(frame.decode()).decode()
    assert line.decode() == (
        '{"record_type":"ws_frame","envelope_version":1,"received_at_utc":"2025-11-24T16:00:00.123456Z",'
        '"received_at_ns":1764000000123456789,"session_id":"20261124T000000Z-abcdef","connection_sequence":3,'
        '"message_sequence":7,"global_message_sequence":42,"websocket":{"url":"wss://example/ws/market"},'
        '"subscription":{"assets_count":2,'
        '"assets_sha256":"9b1cf1e3acc00ff21cd15978c90b7396c816fbea04a67cb08209cfafd3aacdbd",'
        '"assets_ids":["111","222"]},"tokens_tracked":[{"market_slug":"btc-updown-5m-1773307200",'
        '"condition_id":"0xabc","token_id":"111","outcome":"Up","end_time_utc":"2026-03-12T09:25:00Z"}],'
        '"opcode":"text","payload_length_bytes":133,'
        '"payload_sha256":"0dc806e6a6a5bfafe11a1c85f7fed28a717ac59e40578c4fb9c3d0d983410490",'
        f'"raw_text":{raw},"json":{frame.decode()},"json_error":null,"frame_shape":"object",'
        '"classified_event_types":["price_change"]}\n'
    )
