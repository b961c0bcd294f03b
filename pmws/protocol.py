"""Market-channel messages we send, and classification of frames we receive. Pure: no sockets.

A frame is one JSON object, a JSON array of objects, or plain text (`PONG`, `NO NEW ASSETS`), §2.5.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, NamedTuple

import orjson

PING = "PING"
CONTROL_TEXTS = frozenset({"PONG", "NO NEW ASSETS"})

#: Event types that carry order-book or trade data (PROTOCOL.md §3).
MARKET_DATA_EVENTS = frozenset(
    {"book", "price_change", "last_trade_price", "tick_size_change", "best_bid_ask"}
)
#: Lifecycle events enabled by `custom_feature_enabled` (PROTOCOL.md §3.7, §3.8).
LIFECYCLE_EVENTS = frozenset({"new_market", "market_resolved"})
KNOWN_EVENTS = MARKET_DATA_EVENTS | LIFECYCLE_EVENTS


class FrameShape(StrEnum):
    """What a frame turned out to be."""

    OBJECT = "object"
    ARRAY = "array"
    CONTROL = "control"  # PONG, NO NEW ASSETS
    TEXT = "text"  # other non-JSON text
    JSON_OTHER = "json_other"  # valid JSON, but not an object or array of objects
    BINARY = "binary"


def subscribe_message(asset_ids: list[str], *, custom_feature_enabled: bool = True) -> str:
    """The first frame on a connection (PROTOCOL.md §2.1). Always text: orjson returns bytes.

    `initial_dump: true` is sent explicitly, as Polymarket's own client does: relying on the documented
    default has been reported to leave some assets without a first `book` (§0 item 1).
    """
    body = {
        "assets_ids": asset_ids,
        "type": "market",
        "initial_dump": True,
        "custom_feature_enabled": custom_feature_enabled,
    }
    return orjson.dumps(body).decode()


def operation_message(asset_ids: list[str], operation: str, *, custom_feature_enabled: bool = True) -> str:
    """Dynamic subscribe/unsubscribe on an open connection (PROTOCOL.md §2.2); a subscribe asks for the
    added assets' books with an explicit `initial_dump: true` (§2.1)."""
    if operation not in ("subscribe", "unsubscribe"):
        raise ValueError(f"unknown operation {operation!r}")
    body: dict[str, Any] = {"assets_ids": asset_ids, "operation": operation}
    if operation == "subscribe":
        body["initial_dump"] = True
        body["custom_feature_enabled"] = custom_feature_enabled
    return orjson.dumps(body).decode()


class Classified(NamedTuple):
    """The parsed view of one frame: its shape, event types, the asset ids it concerns.

    A NamedTuple, not a frozen dataclass: one is built per frame, and tuple construction is the cheapest."""

    shape: FrameShape
    parsed: Any
    json_error: str | None
    event_types: tuple[str, ...]
    asset_ids: tuple[str, ...]
    markets: tuple[str, ...]
    #: (event_type, asset ids) per event, in frame order: computed once, reused by stats and trackers.
    events: tuple[tuple[str, tuple[str, ...]], ...] = ()
    is_market_data: bool = False
    #: the frame's bytes when it parsed as JSON (a verifier worker re-parses them: bytes travel cheaply)
    payload: bytes = b""

    @property
    def unknown_event_types(self) -> tuple[str, ...]:
        return tuple(t for t in self.event_types if t not in KNOWN_EVENTS)


_CONTROL = Classified(FrameShape.CONTROL, None, None, (), (), ())


_CONTROL_BYTES = frozenset(t.encode() for t in CONTROL_TEXTS)
_CONTROL_MAX = max(len(t) for t in _CONTROL_BYTES) + 64  # room for surrounding whitespace


def classify_text(payload: bytes) -> Classified:
    """Parse a text frame once and say what it is. Never raises."""
    if len(payload) <= _CONTROL_MAX and payload.strip() in _CONTROL_BYTES:
        return _CONTROL
    try:
        parsed = _loads(payload)
    except orjson.JSONDecodeError as exc:
        return Classified(FrameShape.TEXT, None, str(exc), (), (), ())
    if type(parsed) is dict:  # the common case, one event: no intermediate collections, few calls
        kind = parsed.get("event_type", "<missing>")
        if type(kind) is not str:
            kind = str(kind)
        asset = parsed.get("asset_id")
        ids = (asset,) if type(asset) is str else tuple(event_asset_ids(parsed))
        market = parsed.get("market")
        return _new_classified(  # tuple.__new__: a NamedTuple's own __new__ is Python, twice the cost
            Classified,
            (
                _OBJECT,
                parsed,
                None,
                (kind,),
                ids,
                (market,) if type(market) is str else (),
                ((kind, ids),),
                kind in MARKET_DATA_EVENTS,
                payload,
            ),
        )
    if isinstance(parsed, list) and all(type(e) is dict for e in parsed):
        return _classify_array(parsed)._replace(payload=payload)
    return Classified(FrameShape.JSON_OTHER, parsed, None, (), (), (), payload=payload)


_loads = orjson.loads
_new_classified = tuple.__new__
_OBJECT = FrameShape.OBJECT


def _classify_array(batch: list[dict[str, Any]]) -> Classified:
    events = tuple((_event_type(e), tuple(event_asset_ids(e))) for e in batch)
    types_ = tuple(dict.fromkeys(t for t, _ in events))
    assets = tuple(dict.fromkeys(a for _, ids in events for a in ids))
    markets = tuple(dict.fromkeys(m for e in batch if isinstance(m := e.get("market"), str)))
    market_data = any(t in MARKET_DATA_EVENTS for t in types_)
    return Classified(FrameShape.ARRAY, batch, None, types_, assets, markets, events, market_data)


def _event_type(event: dict[str, Any]) -> str:
    kind = event.get("event_type", "<missing>")
    return kind if type(kind) is str else str(kind)


def event_asset_ids(event: dict[str, Any]) -> list[str]:
    """Token ids an event concerns: `asset_id`, `price_changes[].asset_id`, or `assets_ids` (§3.2, §3.8)."""
    asset = event.get("asset_id")
    if isinstance(asset, str):
        return [asset]
    changes = event.get("price_changes")
    if isinstance(changes, list) and len(changes) > 8:
        ids = [c["asset_id"] for c in changes if isinstance(c, dict) and isinstance(c.get("asset_id"), str)]
        return list(dict.fromkeys(ids))
    if isinstance(changes, list):
        out: list[str] = []
        for change in changes:
            if isinstance(change, dict):
                asset = change.get("asset_id")
                if isinstance(asset, str) and asset not in out:  # at most 8: a list beats a dict
                    out.append(asset)
        return out
    listed = event.get("assets_ids")
    if isinstance(listed, list):
        return [a for a in listed if isinstance(a, str)]
    return []


def iter_events(parsed: Any) -> list[dict[str, Any]]:
    """The event objects of a parsed frame (one object or an array)."""
    if isinstance(parsed, dict):
        return [parsed]
    if isinstance(parsed, list):
        return [e for e in parsed if isinstance(e, dict)]
    return []
