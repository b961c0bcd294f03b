"""What a Polymarket stand-in reads from its clients: the market channel's subscription first, then
operations and PING, and the `POST /books` body. Pure.

Shared by the simulator (`pmws.sim.ws`) and the replay server (`pmws.replay.server`), so both enforce the
same rules (PROTOCOL.md §2): the first frame must be `{"assets_ids": [...], "type": "market"}` (anything
else is closed with 1008), `{"assets_ids": [...], "operation": "subscribe"|"unsubscribe"}` changes an open
connection, and the text `PING` gets the text `PONG`.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import orjson

PING = "PING"
PONG = "PONG"
INVALID_SUBSCRIPTION = "invalid subscription payload"  # close reason seen in the wild (§2.1, [I17])
MAX_BOOKS = 500  # POST /books body limit (§4.1, [S12])


class Subscription(NamedTuple):
    """What a client asked for: its assets, custom features, whether to send their books now."""

    assets: list[str]
    custom: bool
    initial_dump: bool


class Operation(NamedTuple):
    """A dynamic `subscribe` or `unsubscribe` on an open connection (§2.2)."""

    operation: str
    subscription: Subscription


def parse_subscription(message: str | bytes) -> Subscription | None:
    """The subscription of a valid first frame, else None (§2.1); `initial_dump` defaults to true."""
    body = _object(message)
    if body is None or str(body.get("type", "")).lower() != "market":
        return None
    return _subscription(body)


def parse_operation(message: str | bytes) -> Operation | None:
    """A valid `operation` message on an open connection, else None (anything else is ignored)."""
    body = _object(message)
    if body is None or body.get("operation") not in ("subscribe", "unsubscribe"):
        return None
    sub = _subscription(body)
    return None if sub is None else Operation(str(body["operation"]), sub)


def _object(message: str | bytes) -> dict[str, Any] | None:
    """A text frame's JSON object, else None (binary frames are not subscriptions, §2.4)."""
    if not isinstance(message, str):
        return None
    try:
        body = orjson.loads(message)
    except orjson.JSONDecodeError:
        return None
    return body if isinstance(body, dict) else None


def _subscription(body: dict[str, Any]) -> Subscription | None:
    """`assets_ids` (a list of strings, else None) and the two flags."""
    assets = body.get("assets_ids")
    if not isinstance(assets, list) or not all(isinstance(a, str) for a in assets):
        return None
    return Subscription(
        assets, body.get("custom_feature_enabled") is True, body.get("initial_dump", True) is not False
    )


def parse_books_request(body: bytes) -> list[str]:
    """The token ids of a `POST /books` body `[{"token_id": ...}]` (§4.1); ValueError with the 400 text."""
    try:
        items = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ValueError("Invalid payload") from exc
    if not isinstance(items, list) or not all(
        isinstance(item, dict) and isinstance(item.get("token_id"), str) for item in items
    ):
        raise ValueError('Invalid payload: expected [{"token_id": "..."}]')
    if len(items) > MAX_BOOKS:
        raise ValueError(f"Too many token ids: at most {MAX_BOOKS}")
    return [item["token_id"] for item in items]
