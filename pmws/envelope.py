"""Raw websocket frame + connection context + receive time + sequences → one JSONL envelope. Pure.

`tokens_tracked` lists the tracked tokens the frame concerns, so an envelope costs the same whatever the
number of tokens recorded. The envelope keeps the exact frame: `raw_text` is the frame text,
`payload_sha256` the SHA-256 of its UTF-8 bytes (binary frames: `raw_base64`), so
`payload_of(parse(line))` gives back the original bytes. `json` is the parsed frame: when the text parsed
as JSON and holds no line break we splice the received bytes verbatim (same value, no re-serialisation);
otherwise a re-serialisation, or null. Constant parts are serialised once per connection.

Record types in one stream: `ws_frame` (this module), `lifecycle` and `divergence` (run), `rest_checkpoint`.
"""

from __future__ import annotations

import base64
import hashlib
from binascii import b2a_hex
from dataclasses import dataclass, field
from datetime import UTC, datetime
from hashlib import sha256
from typing import Any

import orjson

from pmws.protocol import Classified, FrameShape, classify_text

ENVELOPE_VERSION = 1


@dataclass(frozen=True, slots=True)
class TrackedToken:
    """A token this connection records, with the market it belongs to."""

    market_slug: str
    condition_id: str
    token_id: str
    outcome: str
    end_time_utc: str

    def to_json(self) -> dict[str, str]:
        return {
            "market_slug": self.market_slug,
            "condition_id": self.condition_id,
            "token_id": self.token_id,
            "outcome": self.outcome,
            "end_time_utc": self.end_time_utc,
        }


#: Connections with more assets than this carry `assets_count`/`assets_sha256` instead of the list in each
#: envelope (the list is in the stream's `subscribe`/`subscription_state` lifecycle records), so an
#: envelope's size and cost do not grow with the number of tracked tokens.
SUBSCRIPTION_LIST_MAX_ASSETS = 20
TOKENS_CACHE_MAX = 4096  # distinct asset-id combinations remembered per connection


@dataclass(frozen=True)
class ConnectionContext:
    """What is constant for every frame of one connection's current subscription, serialised once."""

    session_id: str
    connection_sequence: int
    ws_url: str
    tokens: tuple[TrackedToken, ...]
    shard: str | None = None
    list_max_assets: int = SUBSCRIPTION_LIST_MAX_ASSETS
    _head: bytes = field(init=False, repr=False, compare=False)
    _middle: bytes = field(init=False, repr=False, compare=False)
    _token_json: dict[str, bytes] = field(init=False, repr=False, compare=False)
    _tokens_cache: dict[tuple[str, ...], bytes] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        head = orjson.dumps({"session_id": self.session_id, "connection_sequence": self.connection_sequence})
        assets = list(self.assets_ids)
        subscription: dict[str, Any] = {
            "assets_count": len(assets),
            "assets_sha256": hashlib.sha256(",".join(assets).encode()).hexdigest(),
        }
        if len(assets) <= self.list_max_assets:
            subscription["assets_ids"] = assets
        context: dict[str, Any] = {"websocket": {"url": self.ws_url}, "subscription": subscription}
        if self.shard is not None:
            context["shard"] = self.shard
        object.__setattr__(self, "_head", head[1:-1] + b",")
        object.__setattr__(self, "_middle", b"," + orjson.dumps(context)[1:-1] + b",")
        object.__setattr__(self, "_token_json", {t.token_id: orjson.dumps(t.to_json()) for t in self.tokens})
        object.__setattr__(self, "_tokens_cache", {})

    @property
    def assets_ids(self) -> tuple[str, ...]:
        return tuple(t.token_id for t in self.tokens)

    def tokens_json(self, asset_ids: tuple[str, ...]) -> bytes:
        """`[...]` of the tracked tokens among `asset_ids` (the tokens a frame concerns)."""
        cached = self._tokens_cache.get(asset_ids)
        if cached is None:
            known = self._token_json
            cached = b"[" + b",".join([known[a] for a in asset_ids if a in known]) + b"]"
            if len(self._tokens_cache) < TOKENS_CACHE_MAX:  # ids come from the server: bound the cache
                self._tokens_cache[asset_ids] = cached
        return cached

    def with_tokens(self, tokens: tuple[TrackedToken, ...]) -> ConnectionContext:
        """Same connection, new subscription (after a dynamic subscribe/unsubscribe)."""
        return ConnectionContext(
            self.session_id, self.connection_sequence, self.ws_url, tokens, self.shard, self.list_max_assets
        )


_FRAME = (
    b'{"record_type":"ws_frame","envelope_version":1,"received_at_utc":"%b.%06dZ","received_at_ns":%d,%b'
    b'"message_sequence":%d,"global_message_sequence":%d%b"tokens_tracked":%b,"opcode":"text",'
    b'"payload_length_bytes":%d,"payload_sha256":"%b","raw_text":%b,"json":%b%b'
)
_BINARY_FRAME = (
    b'{"record_type":"ws_frame","envelope_version":1,"received_at_utc":"%b.%06dZ","received_at_ns":%d,%b'
    b'"message_sequence":%d,"global_message_sequence":%d%b"tokens_tracked":[],"opcode":"binary",'
    b'"payload_length_bytes":%d,"payload_sha256":"%b","raw_text":null,"raw_base64":"%b","json":null%b'
)
_TAIL = b',"json_error":%b,"frame_shape":"%b","classified_event_types":%b}\n'
#: (second, its `YYYY-MM-DDTHH:MM:SS` text): frames of the same second share the date part
_second_cache: tuple[int, bytes] = (-1, b"")


def _second_text(seconds: int) -> bytes:
    global _second_cache
    cached_second, stamp = _second_cache
    if seconds != cached_second:
        stamp = datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S").encode()
        _second_cache = (seconds, stamp)
    return stamp


def utc_bytes(received_ns: int) -> bytes:
    """Epoch nanoseconds → `2026-11-24T01:50:00.123456Z` as bytes (the date part is cached per second)."""
    seconds, nanos = divmod(received_ns, 1_000_000_000)
    return b"%b.%06dZ" % (_second_text(seconds), nanos // 1000)


def utc_text(received_ns: int) -> str:
    """`utc_bytes` as text, for records other than frames."""
    return utc_bytes(received_ns).decode()


def build_envelope(
    payload: bytes,
    *,
    binary: bool,
    context: ConnectionContext,
    received_ns: int,
    message_sequence: int,
    global_sequence: int,
    classified: Classified | None = None,
    text: str | None = None,
) -> tuple[bytes, Classified]:
    """The envelope line (with trailing newline) for one received frame, and its classification.

    The hot path: one parse (in `classify_text`), one SHA-256, one escape of the text, one `%` format; the
    parts that repeat (context, tracked tokens, shape and event types) come from caches. `text` is the
    frame as received text when the caller has it (`payload` decoded), so it is not decoded again.
    """
    if binary:
        return _binary_envelope(payload, context, received_ns, message_sequence, global_sequence)
    if classified is None:
        classified = classify_text(payload)
    error = classified.json_error
    if error is None and classified.shape is not FrameShape.CONTROL:
        # the received JSON spliced verbatim when it fits on one line (same value, no re-serialisation)
        json_part = (  # `10 in` is a memchr: a fraction of `b"\n" in`
            orjson.dumps(classified.parsed) if 10 in payload or 13 in payload else payload.strip()
        )
    else:
        json_part = b"null"
    seconds, nanos = divmod(received_ns, 1_000_000_000)
    stamp = _second_cache[1] if seconds == _second_cache[0] else _second_text(seconds)
    line = _FRAME % (
        stamp,
        nanos // 1000,
        received_ns,
        context._head,
        message_sequence,
        global_sequence,
        context._middle,
        context.tokens_json(classified.asset_ids),
        len(payload),
        b2a_hex(sha256(payload).digest()),
        orjson.dumps(payload.decode("utf-8") if text is None else text),
        json_part,
        _tail(classified) if error is None else _tail_text(orjson.dumps(error), classified),
    )
    return line, classified


def _binary_envelope(
    payload: bytes, context: ConnectionContext, received_ns: int, message_sequence: int, global_sequence: int
) -> tuple[bytes, Classified]:
    classified = Classified(FrameShape.BINARY, None, "binary frame", (), (), ())
    seconds, nanos = divmod(received_ns, 1_000_000_000)
    line = _BINARY_FRAME % (
        _second_text(seconds),
        nanos // 1000,
        received_ns,
        context._head,
        message_sequence,
        global_sequence,
        context._middle,
        len(payload),
        b2a_hex(sha256(payload).digest()),
        base64.b64encode(payload),
        _tail_text(b'"binary frame"', classified),
    )
    return line, classified


_tails: dict[tuple[FrameShape, tuple[str, ...]], bytes] = {}


def _tail(classified: Classified) -> bytes:
    """`,"json_error":null,"frame_shape":…,"classified_event_types":[…]}` and newline, cached."""
    key = (classified.shape, classified.event_types)
    cached = _tails.get(key)
    if cached is None:
        cached = _tail_text(b"null", classified)
        if len(_tails) < 1024:  # event types come from the server: bound the cache
            _tails[key] = cached
    return cached


def _tail_text(error: bytes, classified: Classified) -> bytes:
    return _TAIL % (error, classified.shape.value.encode(), orjson.dumps(list(classified.event_types)))


def payload_of(envelope: dict[str, Any]) -> bytes:
    """The exact frame bytes an envelope holds."""
    if envelope.get("opcode") == "binary":
        return base64.b64decode(envelope["raw_base64"])
    return str(envelope["raw_text"]).encode("utf-8")


def payload_matches(envelope: dict[str, Any]) -> bool:
    """True when `payload_sha256` and `payload_length_bytes` match the stored payload."""
    try:
        payload = payload_of(envelope)
    except (KeyError, TypeError, ValueError):
        return False
    return hashlib.sha256(payload).hexdigest() == envelope.get("payload_sha256") and len(
        payload
    ) == envelope.get("payload_length_bytes")


def record_line(record: dict[str, Any]) -> bytes:
    """Any non-frame record (lifecycle, rest_checkpoint, divergence) as one JSONL line."""
    return orjson.dumps(record) + b"\n"
